"""HTTP API (Flask + flask-smorest)."""
