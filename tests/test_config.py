"""Settings come from the environment, fail fast, and keep secrets out of code."""

from __future__ import annotations

import pytest

from autoseq.config import (
    TUNING,
    ConfigError,
    database_url,
    load,
    parse_bool,
    parse_rate_limit,
)


def test_postgres_url_is_rewritten():
    assert database_url("postgres://u:p@h/db", "/x") == "postgresql+psycopg://u:p@h/db"
    assert database_url(None, "/inst").endswith("/inst/autoseq.db")


def test_secrets_are_required_outside_development(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load(str(tmp_path), {"AUTOSEQ_ENV": "production"})
    with pytest.raises(ConfigError, match="TOKEN_ENCRYPTION_KEY"):
        load(str(tmp_path), {"AUTOSEQ_ENV": "production", "SECRET_KEY": "s"})


def test_development_secret_is_generated_once_into_instance(tmp_path):
    first = load(str(tmp_path), {"AUTOSEQ_ENV": "development"})
    second = load(str(tmp_path), {"AUTOSEQ_ENV": "development"})
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and len(first["SECRET_KEY"]) == 64
    assert (tmp_path / "secret_key").exists() and (tmp_path / "token_key").exists()
    assert first["SESSION_COOKIE_SECURE"] is False


def test_production_cookies_are_secure(tmp_path):
    from cryptography.fernet import Fernet

    env = {"SECRET_KEY": "s", "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode()}
    settings = load(str(tmp_path), env)
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["SESSION_COOKIE_HTTPONLY"] is True


def test_bad_values_fail_fast(tmp_path):
    with pytest.raises(ConfigError):
        parse_bool("X", "maybe")
    with pytest.raises(ConfigError):
        parse_rate_limit("lots")
    assert parse_rate_limit("110/10s") == (110, 10.0)
    with pytest.raises(ConfigError, match="Fernet"):
        load(str(tmp_path), {"AUTOSEQ_ENV": "development", "TOKEN_ENCRYPTION_KEY": "nope"})


def test_tuning_knobs_have_their_defaults_unless_set(tmp_path):
    base = {"AUTOSEQ_ENV": "development"}
    defaults = load(str(tmp_path), base)
    assert defaults["SYNC_FETCH_THREADS"] == 2 and defaults["HUBSPOT_TIMEOUT"] == 20.0
    assert all(defaults[name] == default for name, (_, default) in TUNING.items())
    settings = load(
        str(tmp_path), {**base, "SYNC_FETCH_THREADS": "4", "HUBSPOT_RETRY_BACKOFF": "0.1"}
    )
    assert settings["SYNC_FETCH_THREADS"] == 4 and settings["HUBSPOT_RETRY_BACKOFF"] == 0.1
    with pytest.raises(ConfigError, match="SYNC_MAX_PER_TICK"):
        load(str(tmp_path), {**base, "SYNC_MAX_PER_TICK": "many"})


def test_a_generated_secret_is_accepted_as_token_key_and_derives_a_stable_fernet_key(tmp_path):
    """app.json's ``"generator": "secret"`` gives 64 hex characters, not a Fernet key."""
    import secrets

    from cryptography.fernet import Fernet

    from autoseq.hubspot import tokens

    generated = secrets.token_hex(32)
    env = {"SECRET_KEY": "s", "TOKEN_ENCRYPTION_KEY": generated}
    first = load(str(tmp_path), env)["TOKEN_ENCRYPTION_KEYS"]
    again = load(str(tmp_path), env)["TOKEN_ENCRYPTION_KEYS"]
    assert first == again and first != [generated]
    Fernet(first[0])  # a real Fernet key
    stored = tokens.encrypt("access-token", first)
    assert tokens.decrypt(stored, again) == "access-token"
    other = load(str(tmp_path), {**env, "TOKEN_ENCRYPTION_KEY": secrets.token_hex(32)})
    assert other["TOKEN_ENCRYPTION_KEYS"] != first
    # A real Fernet key is used as it is, so existing deployments keep their keys.
    fernet = Fernet.generate_key().decode()
    assert load(str(tmp_path), {**env, "TOKEN_ENCRYPTION_KEY": f"{generated},{fernet}"})[
        "TOKEN_ENCRYPTION_KEYS"
    ] == [first[0], fernet]


def test_whole_number_settings_are_parsed_strictly(tmp_path):
    env = {"AUTOSEQ_ENV": "development", "TRUSTED_PROXY_HOPS": "1", "HUBSPOT_MAX_BODY": "4096"}
    config = load(str(tmp_path), env)
    assert config["TRUSTED_PROXY_HOPS"] == 1 and config["HUBSPOT_MAX_BODY"] == 4096
    assert config["MAX_CONTENT_LENGTH"] == 1024 * 1024  # the default
    for bad in ("²", "1.5", "-1", "two"):
        with pytest.raises(ConfigError, match="TRUSTED_PROXY_HOPS"):
            load(str(tmp_path), {"AUTOSEQ_ENV": "development", "TRUSTED_PROXY_HOPS": bad})


def test_sessions_and_remember_me_last_14_days(tmp_path):
    from datetime import timedelta

    config = load(str(tmp_path), {"AUTOSEQ_ENV": "development"})
    assert config["REMEMBER_COOKIE_DURATION"] == timedelta(days=14)


def test_every_setting_the_code_reads_is_declared_with_its_default(tmp_path):
    """A setting read anywhere in ``autoseq/`` (``config["X"]``, ``config.get("X"...)``) is a key of
    :func:`load`'s answer: declared once, in config.py, with its default."""
    import pathlib
    import re

    import autoseq

    read = re.compile(r"""config(?:\[|\.get\()\s*["']([A-Z][A-Z0-9_]+)["']""")
    root = pathlib.Path(autoseq.__file__).parent
    names = {
        name
        for path in root.rglob("*.py")
        if path.name != "config.py"
        for name in read.findall(path.read_text())
    }
    assert {"HUBSPOT_TIMEOUT", "SYNC_FETCH_THREADS", "PUBLIC_BASE_URL"} <= names  # it finds them
    flask_own = {"SERVER_NAME", "TESTING", "DEBUG"}
    declared = set(load(str(tmp_path), {"AUTOSEQ_ENV": "development"}))
    assert sorted(names - declared - flask_own) == []
