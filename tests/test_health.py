"""``/healthz`` reports database and Redis reachability."""

from __future__ import annotations

from redis import Redis


def test_health_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_health_is_503_when_redis_is_down(app, client):
    real = app.extensions["redis"]
    # A port nothing listens on: a real refused connection, not a stub.
    app.extensions["redis"] = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    try:
        response = client.get("/healthz")
    finally:
        app.extensions["redis"] = real
    assert response.status_code == 503
    assert response.json["checks"] == {"database": "ok", "redis": "unreachable"}
