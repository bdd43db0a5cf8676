"""Every setting AutoSeq reads, from the environment, in one place.

Heroku-style names are accepted as they are (``DATABASE_URL``, ``REDIS_URL``); ``postgres://`` is
rewritten for SQLAlchemy; booleans are parsed strictly; secrets are required outside development,
where a development secret is generated once into the instance folder, never written in code.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ENVIRONMENTS = ("development", "testing", "production")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(RuntimeError):
    """A setting is missing or malformed; raised at start-up, never later."""


def parse_bool(name: str, value: str) -> bool:
    """Parse a boolean setting strictly: a typo is an error, not a silent False."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {value!r}")


def parse_rate_limit(value: str) -> tuple[int, float]:
    """Parse ``"110/10s"`` into (requests, window seconds)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", value)
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(f"HUBSPOT_RATE_LIMIT must look like '110/10s', got {value!r}")
    window = float(match.group(2)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[match.group(3)]
    if window <= 0:
        raise ConfigError("HUBSPOT_RATE_LIMIT window must be positive")
    return int(match.group(1)), window


def database_url(value: str | None, instance_path: str) -> str:
    """The SQLAlchemy URL: SQLite in the instance folder by default, ``postgres://`` rewritten."""
    if not value:
        return "sqlite:///" + os.path.join(instance_path, "autoseq.db")
    if value.startswith("postgres://"):
        value = "postgresql://" + value[len("postgres://") :]
    if value.startswith("postgresql://"):
        # psycopg 3 is the driver we ship.
        value = "postgresql+psycopg://" + value[len("postgresql://") :]
    return value


# A secret that is not itself a Fernet key (Heroku's ``"generator": "secret"`` gives 64 hex
# characters) is stretched into one with HKDF-SHA256; it must be at least 32 characters long.
DERIVED_KEY_MIN_LENGTH = 32
_DERIVED_KEY_INFO = b"autoseq token encryption key v1"


def fernet_key(value: str) -> str:
    """``value`` as a Fernet key: itself when it is one, else derived from it (HKDF-SHA256)."""
    try:
        Fernet(value)
        return value
    except ValueError:
        pass
    if len(value) < DERIVED_KEY_MIN_LENGTH:
        raise ConfigError(
            "TOKEN_ENCRYPTION_KEY holds a key that is neither a Fernet key nor a secret of at "
            f"least {DERIVED_KEY_MIN_LENGTH} characters"
        )
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DERIVED_KEY_INFO).derive(
        value.encode("utf-8")
    )
    return base64.urlsafe_b64encode(derived).decode("ascii")


def _instance_secret(instance_path: str, filename: str, make) -> str:
    """Read a development secret from the instance folder, creating it once."""
    path = Path(instance_path) / filename
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


# Tuning knobs: read here when the environment sets them; otherwise the code that uses them keeps
# its documented default (named beside it there and in the README).
TUNING = {
    "HUBSPOT_TIMEOUT": float,  # read timeout of a HubSpot call, seconds (20; connect 3.05)
    "HUBSPOT_MAX_RETRIES": int,  # retries of 5xx / timeouts / dropped connections (default 4)
    "HUBSPOT_RETRY_BACKOFF": float,  # first backoff in seconds, doubling (0.5)
    "HUBSPOT_RETRY_BACKOFF_MAX": float,  # backoff ceiling in seconds (8)
    "HUBSPOT_429_RETRIES": int,  # 429s waited out before giving up (3)
    "HUBSPOT_RATE_LIMIT_MAX_WAIT": float,  # longest wait for a rate-limit slot, seconds (60)
    "HUBSPOT_TOKEN_REFRESH_MARGIN": float,  # refresh this many seconds before expiry (300)
    "CALLBACK_FLUSH_DELAY": float,  # seconds completions wait to be sent in one batch (3.0)
    "SYNC_STALE_AFTER": int,  # seconds after which the editor's options ask for a sync (900)
    "SYNC_FETCH_THREADS": int,  # users' sequence listings fetched at once by one sync (2)
    "SYNC_MAX_PER_TICK": int,  # workspaces the hourly tick may start (200)
    "SYNC_JOB_TIMEOUT": int,  # seconds one sync may run (14400)
}


def _tuning(env: Mapping[str, str]) -> dict:
    settings = {}
    for name, kind in TUNING.items():
        if env.get(name, "").strip():
            try:
                value = kind(env[name])
            except ValueError as exc:
                raise ConfigError(f"{name} must be a {kind.__name__}, got {env[name]!r}") from exc
            if value < 0:
                raise ConfigError(f"{name} must not be negative")
            settings[name] = value
    return settings


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ConfigError(f"{name} must be a whole number, got {raw!r}")
    return int(raw)


def load(instance_path: str, environ: Mapping[str, str] | None = None) -> dict:
    """Build the Flask config mapping from the environment."""
    env = os.environ if environ is None else environ
    app_env = env.get("AUTOSEQ_ENV", "production").strip().lower()
    if app_env not in ENVIRONMENTS:
        raise ConfigError(f"AUTOSEQ_ENV must be one of {', '.join(ENVIRONMENTS)}, got {app_env!r}")
    development = app_env != "production"

    secret_key = env.get("SECRET_KEY")
    if not secret_key:
        if not development:
            raise ConfigError("SECRET_KEY is required outside development")
        secret_key = _instance_secret(instance_path, "secret_key", lambda: secrets.token_hex(32))

    token_keys = env.get("TOKEN_ENCRYPTION_KEY")
    if not token_keys:
        if not development:
            raise ConfigError("TOKEN_ENCRYPTION_KEY is required outside development")
        token_keys = _instance_secret(
            instance_path, "token_key", lambda: Fernet.generate_key().decode()
        )
    keys = [fernet_key(k.strip()) for k in token_keys.split(",") if k.strip()]

    rate_limit = parse_rate_limit(env.get("HUBSPOT_RATE_LIMIT", "110/10s"))
    public_base_url = env.get("PUBLIC_BASE_URL", "http://localhost:5000").rstrip("/")
    secure_cookies = parse_bool(
        "SESSION_COOKIE_SECURE", env.get("SESSION_COOKIE_SECURE", str(not development))
    )

    return {
        "AUTOSEQ_ENV": app_env,
        "DEBUG": False,
        "TESTING": app_env == "testing",
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url(env.get("DATABASE_URL"), instance_path),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": env.get("REDIS_URL", "redis://localhost:6379/0"),
        # Heroku Redis serves ``rediss://`` with a self-signed certificate: there the chain cannot
        # be verified (Heroku's "Connecting to Heroku Key-Value Store" page says to turn it off).
        "REDIS_TLS_VERIFY": parse_bool("REDIS_TLS_VERIFY", env.get("REDIS_TLS_VERIFY", "true")),
        "PUBLIC_BASE_URL": public_base_url,
        "HUBSPOT_CLIENT_ID": env.get("HUBSPOT_CLIENT_ID"),
        "HUBSPOT_CLIENT_SECRET": env.get("HUBSPOT_CLIENT_SECRET"),
        "HUBSPOT_APP_ID": env.get("HUBSPOT_APP_ID"),
        "HUBSPOT_DEVELOPER_API_KEY": env.get("HUBSPOT_DEVELOPER_API_KEY"),
        "HUBSPOT_DEVELOPER_TOKEN": env.get("HUBSPOT_DEVELOPER_TOKEN"),
        "HUBSPOT_API_BASE": env.get("HUBSPOT_API_BASE", "https://api.hubapi.com").rstrip("/"),
        "HUBSPOT_AUTHORIZE_URL": env.get(
            "HUBSPOT_AUTHORIZE_URL", "https://app.hubspot.com/oauth/authorize"
        ),
        "HUBSPOT_APP_BASE": env.get("HUBSPOT_APP_BASE", "https://app.hubspot.com").rstrip("/"),
        "HUBSPOT_RATE_LIMIT": rate_limit,
        "TOKEN_ENCRYPTION_KEYS": keys,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_DURATION": timedelta(days=14),
        "PERMANENT_SESSION_LIFETIME": timedelta(days=14),
        "WTF_CSRF_TIME_LIMIT": None,
        "LOGIN_FAILURE_LIMIT": _int(env, "LOGIN_FAILURE_LIMIT", 5),
        "LOGIN_FAILURE_WINDOW": _int(env, "LOGIN_FAILURE_WINDOW", 900),
        "LOGIN_ADDRESS_LIMIT": _int(env, "LOGIN_ADDRESS_LIMIT", 50),
        "LOGIN_SLOW_INTERVAL": _int(env, "LOGIN_SLOW_INTERVAL", 10),
        # Proxies in front of the app whose X-Forwarded-For/-Proto we believe (Heroku's router: 1).
        "TRUSTED_PROXY_HOPS": _int(env, "TRUSTED_PROXY_HOPS", 0),
        "MAX_CONTENT_LENGTH": _int(env, "MAX_CONTENT_LENGTH", 1024 * 1024),
        "HUBSPOT_MAX_BODY": _int(env, "HUBSPOT_MAX_BODY", 64 * 1024),
        "HUBSPOT_SIGNATURE_V3_ONLY": parse_bool(
            "HUBSPOT_SIGNATURE_V3_ONLY", env.get("HUBSPOT_SIGNATURE_V3_ONLY", "false")
        ),
        "MAIL_FROM": env.get("MAIL_FROM", "AutoSeq <no-reply@localhost>"),
        "MAIL_SMTP_HOST": env.get("MAIL_SMTP_HOST") or None,
        "MAIL_SMTP_PORT": _int(env, "MAIL_SMTP_PORT", 587),
        "MAIL_SMTP_USERNAME": env.get("MAIL_SMTP_USERNAME") or None,
        "MAIL_SMTP_PASSWORD": env.get("MAIL_SMTP_PASSWORD") or None,
        "MAIL_SMTP_STARTTLS": parse_bool(
            "MAIL_SMTP_STARTTLS", env.get("MAIL_SMTP_STARTTLS", "true")
        ),
        "INVITATION_MAX_AGE": _int(env, "INVITATION_MAX_AGE", 7 * 24 * 3600),
        **_tuning(env),
    }
