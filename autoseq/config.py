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


# Tuning knobs (type, default): every one is in the config, with its default when the environment
# does not set it. The code reads them there and keeps no default of its own (README lists them).
TUNING = {
    "HUBSPOT_TIMEOUT": (float, 20.0),  # read timeout of a HubSpot call, seconds (connect 3.05)
    "HUBSPOT_MAX_RETRIES": (int, 4),  # retries of 5xx / timeouts / dropped connections
    "HUBSPOT_RETRY_BACKOFF": (float, 0.5),  # first backoff in seconds, doubling
    "HUBSPOT_RETRY_BACKOFF_MAX": (float, 8.0),  # backoff ceiling in seconds
    "HUBSPOT_429_RETRIES": (int, 3),  # 429s waited out before giving up
    "HUBSPOT_RATE_LIMIT_MAX_WAIT": (float, 60.0),  # longest wait for a rate-limit slot, seconds
    "HUBSPOT_TOKEN_REFRESH_MARGIN": (float, 300.0),  # refresh this many seconds before expiry
    "CALLBACK_FLUSH_DELAY": (float, 3.0),  # seconds completions wait for a fuller batch; 0: at once
    # The workflow editor asking for sequences while the last successful sync is older than this
    # (seconds) asks for a background sync; checked at most once a minute per workspace.
    "SYNC_STALE_AFTER": (int, 15 * 60),
    # Users' sequence listings fetched at once by one sync. Two keep a real portal's 110/10 s
    # budget busy at HubSpot's latency; more would only crowd out the enrollments sharing it.
    "SYNC_FETCH_THREADS": (int, 2),
    "SYNC_MAX_PER_TICK": (int, 200),  # workspaces the hourly tick may start
    # Seconds one sync may run. A sync makes 3 + sum over users of ceil(sequences they see / 100)
    # calls at 11 a second (HubSpot's 110/10 s): 10,000 sequences over 50 users is about 3,600
    # calls, 6 minutes. Far larger portals need longer than the sync queue's 30-minute default.
    "SYNC_JOB_TIMEOUT": (int, 4 * 3600),
    # "Already in a sequence: wait": the share of a portal's rate budget its waiting rows' checks
    # (one contact-enrollment read each) may take; checks only ever use slots fresh rows left.
    "WAIT_CHECK_SHARE": (float, 0.1),
    # Seconds before a waiting row's first check, doubling (jittered) up to the cap.
    "WAIT_CHECK_FIRST": (float, 60.0),
    "WAIT_CHECK_MAX": (float, 3600.0),
}


def _tuning(env: Mapping[str, str]) -> dict:
    settings = {}
    for name, (kind, default) in TUNING.items():
        if not env.get(name, "").strip():
            settings[name] = default
            continue
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
