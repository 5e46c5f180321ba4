"""Persistence: engine, tables, Alembic migrations (SQLite in WAL mode or PostgreSQL via asyncpg)."""
