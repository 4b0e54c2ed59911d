"""What a running process wires together, shared by the web app, the workers and the CLI
without their importing each other: the wall clock, the database engine and sessions, the
Redis connection and the RQ delivery of timers, telemetry, and the embedded Redis and
PostgreSQL servers for development and tests."""
