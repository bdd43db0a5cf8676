"""WSGI entry point: ``gunicorn wsgi:app`` and ``flask --app wsgi ...``."""

from autoseq import create_app
from autoseq.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:  # one readable line for a command or a server, not a traceback
    raise SystemExit(f"AutoSeq configuration error: {exc}") from None
