"""Persistence: the only package with SQL. SQLite by default; PostgreSQL through the same schema."""
