"""The FastAPI app, settings, the service's own tables, the nightly scheduler and the CLI."""
