"""Alembic migrations of the service tables (`bs_*`); run them with `service.db.migrate(url)`."""
