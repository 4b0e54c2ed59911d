"""Services: the engine's operations on a database session. They never commit."""
