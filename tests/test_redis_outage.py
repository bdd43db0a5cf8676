"""A Redis outage is survivable: worker and scheduler reconnect with backoff; the schedule returns.

The outage is real: a private ``redis-server`` on a free port, stopped and started again while
``worker.py`` and ``scheduler.py`` run against it as separate processes.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from autoseq.jobs.reconnect import run_reconnecting
from autoseq.jobs.schedule import PERIODIC_JOBS, ReconcilingScheduler, missing, reconcile

ROOT = Path(__file__).resolve().parents[1]
REDIS_SERVER = shutil.which("redis-server")


def test_the_scheduler_puts_a_missing_schedule_back(redis):
    reconcile(redis)
    assert missing(redis) == []
    redis.flushdb()  # Redis restarted empty
    assert sorted(missing(redis)) == sorted(j.name for j in PERIODIC_JOBS)
    ReconcilingScheduler(connection=redis, interval=1).run(burst=True)
    assert missing(redis) == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    def __init__(self, port: int):
        self.port, self.process = port, None

    def start(self):
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis(port=self.port)
        wait_for(lambda: _pings(client), "redis-server to start")
        return self

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


def _pings(client) -> bool:
    try:
        return client.ping()
    except Exception:
        return False


def wait_for(predicate, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def private_redis():
    if REDIS_SERVER is None:
        pytest.skip("no redis-server binary on PATH: the outage test needs one to stop and start")
    server = PrivateRedis(_free_port()).start()
    yield server
    if server.process.poll() is None:
        server.stop()


def _spawn(app, script: str, redis_port: int, log_path: Path):
    env = dict(
        os.environ,
        AUTOSEQ_ENV="testing",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        SECRET_KEY="test-secret",
        TOKEN_ENCRYPTION_KEY=app.config["TOKEN_ENCRYPTION_KEYS"][0],
    )
    log = open(log_path, "w")  # noqa: SIM115 (closed by the test)
    process = subprocess.Popen(
        [sys.executable, script], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    return process, log


def test_worker_and_scheduler_outlive_a_redis_outage(app, private_redis, tmp_path):
    client = Redis(port=private_redis.port)
    worker, worker_log = _spawn(app, "worker.py", private_redis.port, tmp_path / "worker.log")
    scheduler, sched_log = _spawn(app, "scheduler.py", private_redis.port, tmp_path / "sched.log")
    try:
        wait_for(lambda: missing(client) == [], "the scheduler to reconcile")
        wait_for(lambda: client.scard("rq:workers") == 1, "the worker to register")

        private_redis.stop()  # the outage
        time.sleep(12)  # the issue saw both processes exit for good on a 10-second outage
        assert worker.poll() is None and scheduler.poll() is None, "a process exited"
        private_redis.start()  # Redis is back, empty

        wait_for(lambda: missing(client) == [], "the schedule to be reconciled again", 60)
        job = Queue("default", connection=client).enqueue("autoseq.jobs.system.record_heartbeat")
        wait_for(lambda: job.get_status(refresh=True) == "finished", "the job to run", 60)
        assert worker.poll() is None and scheduler.poll() is None
    finally:
        for process in (worker, scheduler):
            process.terminate()
            process.wait(20)
        worker_log.close()
        sched_log.close()
    worker_text = (tmp_path / "worker.log").read_text()
    sched_text = (tmp_path / "sched.log").read_text()
    # An idle RQ worker waits out an outage in its own dequeue loop; elsewhere (a heartbeat, the
    # registries) the loss reaches run_reconnecting. Either way it is logged and survived.
    assert "could not connect to Redis" in worker_text or "worker lost Redis" in worker_text
    assert "scheduler lost Redis" in sched_text and "scheduler reconnected" in sched_text
    assert "schedule reconciled" in sched_text.split("scheduler reconnected")[1]


def test_run_reconnecting_waits_for_redis_then_runs_again(private_redis, caplog):
    client = Redis(port=private_redis.port, socket_connect_timeout=0.5)
    calls = []

    def step():
        calls.append(time.monotonic())
        return client.incr("runs")

    private_redis.stop()
    restart = threading.Timer(2.0, private_redis.start)
    restart.start()
    with caplog.at_level(logging.INFO, logger="autoseq.jobs.reconnect"):
        result = run_reconnecting("test-process", client, step, first_wait=0.2, max_wait=1.0)
    restart.join()
    assert result == 1 and len(calls) == 2
    assert calls[1] - calls[0] >= 2.0  # not before Redis was back
    assert "test-process lost Redis" in caplog.text
    assert "test-process reconnected to Redis" in caplog.text


def test_a_page_that_needs_redis_answers_503_while_it_is_down(app, logged_in, workspace):
    live = app.extensions["redis"]
    token = logged_in.csrf_token()
    # A configured app, so that connecting reaches Redis (it keeps the OAuth state there).
    app.config.update(HUBSPOT_CLIENT_ID="id", HUBSPOT_CLIENT_SECRET="secret")
    app.extensions["redis"] = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        response = logged_in.post(
            f"/w/{workspace.id}/settings/hubspot/connect", data={"csrf_token": token}
        )
    finally:
        app.extensions["redis"] = live
        app.config.update(HUBSPOT_CLIENT_ID=None, HUBSPOT_CLIENT_SECRET=None)
    assert response.status_code == 503
    assert "Try again shortly" in response.get_data(as_text=True)
