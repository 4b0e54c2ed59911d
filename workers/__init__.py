"""Background jobs run by RQ workers."""
