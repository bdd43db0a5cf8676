"""AutoSeq: enroll HubSpot contacts into sequences from any workflow.

``create_app`` builds the app; nothing happens at import.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from flask import Flask
from redis import Redis

from . import config as config_module
from .extensions import csrf, db, htmx, login_manager, migrate


def redis_tls(config) -> dict:
    """Connection options for a ``rediss://`` URL whose certificate cannot be verified."""
    if config["REDIS_URL"].startswith("rediss://") and not config["REDIS_TLS_VERIFY"]:
        return {"ssl_cert_reqs": "none"}
    return {}


def create_app(config: Mapping | None = None) -> Flask:
    """Build the Flask app. ``config`` overrides what the environment says (tests use it)."""
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    # Overrides of the settings that decide validation (environment, secrets) apply before it.
    environ = dict(os.environ)
    for key in ("AUTOSEQ_ENV", "SECRET_KEY", "TOKEN_ENCRYPTION_KEY"):
        if config and isinstance(config.get(key), str):
            environ[key] = config[key]
    settings = config_module.load(app.instance_path, environ)
    if config:
        settings.update(config)
    app.config.update(settings)
    if app.config["AUTOSEQ_ENV"] == "development":
        app.config.setdefault("TEMPLATES_AUTO_RELOAD", True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    from . import models  # noqa: F401  (register every table with the metadata)
    from .services.analytics import rollups  # noqa: F401  (rollups kept with every enrollment write)

    db.init_app(app)
    migrate.init_app(
        app,
        db,
        render_as_batch=True,
        directory=os.path.join(os.path.dirname(app.root_path), "migrations"),
    )
    login_manager.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    app.extensions["redis"] = Redis.from_url(
        app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5, **redis_tls(app.config)
    )

    from . import security
    from .views import register_views

    security.init_app(app)

    register_views(app)

    from .cli import register_cli

    register_cli(app)
    return app
