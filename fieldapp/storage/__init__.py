"""The only package that talks SQL: connections, migrations and queries (via sqlite-utils)."""
