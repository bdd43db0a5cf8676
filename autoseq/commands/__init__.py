"""CLI commands, one module per area, each with ``register_cli(app)`` (see autoseq/cli.py)."""
