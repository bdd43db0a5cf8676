"""The shared per-portal rate limiter: callers wait, never refused; HubSpot sees no 429."""

from __future__ import annotations

import math
import multiprocessing
import os
import threading
import time

import pytest

from autoseq import create_app
from autoseq.extensions import db
from autoseq.hubspot import RateLimited
from autoseq.hubspot.client import PAGING_AHEAD
from autoseq.hubspot.ratelimit import BACKGROUND_SHARE, RateLimiter, priority
from autoseq.services.connections import for_workspace


def test_callers_within_the_budget_do_not_wait(redis):
    limiter = RateLimiter(redis, 5, 5.0)
    started = time.monotonic()
    for _ in range(5):
        limiter.release("p", limiter.acquire("p"))
    assert time.monotonic() - started < 1.0
    assert limiter.used("p") == 5


def test_a_caller_over_the_budget_waits_for_the_window(redis):
    limiter = RateLimiter(redis, 5, 1.0)
    for _ in range(5):
        limiter.release("p", limiter.acquire("p"))
    started = time.monotonic()
    limiter.acquire("p")
    assert 0.85 <= time.monotonic() - started < 3.0


def test_portals_have_separate_budgets(redis):
    limiter = RateLimiter(redis, 2, 5.0)
    for _ in range(2):
        limiter.acquire("a")
    started = time.monotonic()
    limiter.acquire("b")
    assert time.monotonic() - started < 1.0


def test_waiting_is_bounded_by_max_wait(redis):
    limiter = RateLimiter(redis, 1, 10.0, max_wait=0.3)
    limiter.acquire("p")
    started = time.monotonic()
    with pytest.raises(RateLimited):
        limiter.acquire("p")
    assert time.monotonic() - started < 3.0


def test_slot_counts_from_the_end_of_its_call(redis):
    # A slow call keeps its slot a window past its answer, as HubSpot counted it on arrival.
    limiter = RateLimiter(redis, 1, 0.5)
    with limiter.slot("p"):
        time.sleep(0.4)
    started = time.monotonic()
    limiter.acquire("p")
    assert time.monotonic() - started >= 0.4


# -- many threads and processes against one sandbox portal -------------------------------------


def _call_until(app, workspace_id, start, deadline, results, paging=False):
    """From ``start`` to ``deadline`` (time.time()), call HubSpot in a loop; note completions.

    ``paging``: page through the owners one per page (rate slots taken several at a time)."""
    with app.app_context():
        client = None
        try:
            client = for_workspace(workspace_id)
            time.sleep(max(0.0, start - time.time()))
            while time.time() < deadline:
                if paging:
                    for _ in client.pages("/crm/v3/owners", limit=1, ahead=PAGING_AHEAD):
                        results.append(time.time())  # one owner a page: one per call
                else:
                    client.get("/crm/v3/owners", {"limit": 1})
                    results.append(time.time())
        except Exception as exc:  # noqa: BLE001 (the test asserts there were none)
            results.append(exc)
        finally:
            if client is not None:
                client.close()  # slots taken ahead and never used are given back
            db.session.remove()


def _threads(app, workspace_id, start, deadline, count, paging=False) -> list:
    results: list = []
    threads = [
        threading.Thread(
            target=_call_until, args=(app, workspace_id, start, deadline, results, paging)
        )
        for _ in range(count)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _process_main(config, workspace_id, start, deadline, count, queue, paging):
    # A forked child builds its own app: its own database engine and Redis connections.
    try:
        app = create_app(config)
        results = _threads(app, workspace_id, start, deadline, count, paging)
        queue.put([r if isinstance(r, float) else repr(r) for r in results])
    except BaseException as exc:  # noqa: BLE001 (reported to the parent as an error)
        queue.put([f"child failed: {exc!r}"])
    finally:
        queue.close()
        queue.join_thread()  # the queue's feeder thread must flush before the hard exit
        os._exit(0)


def _drive(app, workspace_id, duration, threads, processes, threads_per_process, paging=False):
    """Run callers in this process and in forked ones; return (completion times, errors)."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start = time.time() + 1.5  # forked processes get time to build their app; then all go
    deadline = start + duration
    db.session.remove()
    children = [
        ctx.Process(
            target=_process_main,
            args=(
                dict(app.config),
                workspace_id,
                start,
                deadline,
                threads_per_process,
                queue,
                paging,
            ),
        )
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    results = _threads(app, workspace_id, start, deadline, threads, paging)
    for _ in children:
        results.extend(queue.get(timeout=duration + 60))
    for child in children:
        child.join(10)
    times = [r for r in results if isinstance(r, float)]
    errors = [r for r in results if not isinstance(r, float)]
    return start, times, errors


def _budget_share(start, times, duration, limit, window) -> float:
    """Calls answered within the run / the most a rolling window lets through in that time."""
    inside = [t for t in times if start <= t <= start + duration]
    most = limit * math.ceil(duration / window)
    return len(inside) / most


@pytest.mark.slow
@pytest.mark.parametrize(
    ("limit", "callers", "paging", "least_share"),
    [
        (20, (4, 2, 3), False, 0.9),
        # Paging takes slots ahead; those not used hold the budget for a moment: a little less
        # of it is used.
        (40, (3, 2, 2), True, 0.8),
    ],
    ids=["one-slot-a-call", "paging-slots-ahead"],
)
def test_threads_and_processes_share_a_short_budget_without_a_429(
    app, connected_workspace, sandbox_admin, portal_id, limit, callers, paging, least_share
):
    window, duration = 2.0, 5.0
    sandbox_admin.patch(f"/portals/{portal_id}/settings", {"rate_limit": f"{limit}/{window:g}s"})
    app.config["HUBSPOT_RATE_LIMIT"] = (limit, window)
    sandbox_admin.delete(f"/portals/{portal_id}/stats")
    start, times, errors = _drive(app, connected_workspace.id, duration, *callers, paging=paging)
    assert errors == []
    stats = sandbox_admin.get(f"/portals/{portal_id}/stats")
    assert stats["rate_limited"] == 0
    assert stats["requests"] == len(times)
    assert _budget_share(start, times, duration, limit, window) >= least_share


@pytest.mark.slow
def test_real_budget_110_per_10s_is_used_without_a_429(
    app, connected_workspace, sandbox_admin, portal_id
):
    # Two windows' bursts (at 0 s and 10 s) land inside 11 s; the callers then wait for the third
    # window before they notice the end, so the test takes about 22 s.
    limit, window, duration = 110, 10.0, 11.0
    app.config["HUBSPOT_RATE_LIMIT"] = (limit, window)
    sandbox_admin.delete(f"/portals/{portal_id}/stats")
    start, times, errors = _drive(app, connected_workspace.id, duration, 4, 2, 4)
    assert errors == []
    stats = sandbox_admin.get(f"/portals/{portal_id}/stats")
    assert stats["rate_limited"] == 0
    assert _budget_share(start, times, duration, limit, window) >= 0.9


def test_enrollments_keep_priority_over_background_calls_while_they_wait(redis):
    limiter = RateLimiter(redis, 10, 60.0)
    background_share = int(10 * BACKGROUND_SHARE)
    limiter.mark_busy("p", 30)
    taken = [limiter.try_acquire("p")[0] for _ in range(5)]  # a sync's calls
    assert sum(1 for t in taken if t) == background_share
    with priority():  # the drain's calls take what is left of the window
        assert all(limiter.try_acquire("p")[0] for _ in range(10 - background_share))
        assert limiter.try_acquire("p")[0] is None
    assert limiter.headroom("p") == (0, pytest.approx(60.0, abs=1.0))
    limiter.clear_busy("p")


def test_background_calls_take_the_whole_budget_when_no_enrollment_waits(redis):
    limiter = RateLimiter(redis, 10, 60.0)
    assert all(limiter.try_acquire("p")[0] for _ in range(10))
    free, wait = limiter.headroom("p", 3)
    assert free == 0 and 59.0 <= wait <= 60.0


# -- slots taken ahead (a paging loop) -----------------------------------------------------------


def test_a_paging_caller_takes_slots_ahead_and_gives_back_those_it_did_not_use(redis):
    limiter = RateLimiter(redis, 100, 10.0)
    limiter.acquire("p", ahead=8)
    assert limiter.used("p") == 8  # one round trip for eight calls
    for _ in range(2):
        limiter.acquire("p", ahead=8)
    assert limiter.used("p") == 8  # the kept slots were used: nothing more taken
    limiter.flush()
    assert limiter.used("p") == 3  # the five never used are given back


def test_slots_taken_ahead_are_at_most_a_quarter_of_those_free(redis):
    limiter = RateLimiter(redis, 10, 60.0)
    limiter.acquire("p", ahead=8)
    assert limiter.used("p") == 2
    for _ in range(9):
        limiter.acquire("p", ahead=8)
    assert limiter.used("p") == 10  # ten calls, ten slots: the last free ones one at a time
    assert limiter.try_acquire("p")[0] is None


def test_a_slot_kept_too_long_is_given_back_not_used(redis):
    limiter = RateLimiter(redis, 100, 1.0)  # kept at most a tenth of the window
    limiter.acquire("p", ahead=8)
    time.sleep(limiter.reserve_ttl + 0.05)
    limiter.acquire("p")  # a new slot; the seven stale ones given back (this trip or the stamper)
    assert limiter.used("p") == 2


def test_slots_kept_by_a_priority_caller_are_not_used_by_a_background_one(redis):
    limiter = RateLimiter(redis, 100, 10.0)
    with priority():
        limiter.acquire("p", ahead=4)
    limiter.acquire("p")
    assert limiter.used("p") == 5
    limiter.flush()
    assert limiter.used("p") == 2


def test_stamps_of_several_calls_go_in_one_script_call(redis):
    limiter = RateLimiter(redis, 3, 0.5)
    members = [limiter.acquire("p") for _ in range(3)]
    stamp_calls = []
    real_stamp = limiter._stamp

    def counted_stamp(**kwargs):  # the real script, counted
        stamp_calls.append(kwargs["args"])
        return real_stamp(**kwargs)

    limiter._stamp = counted_stamp
    time.sleep(0.4)
    for member in members:
        limiter.release_later("p", member)
    limiter.flush()
    assert len(stamp_calls) == 1 and stamp_calls[0][:2] == [3, 0]  # three stamps, one trip
    # Counted from the end of their calls (0.4 s after they were taken): still in the window.
    time.sleep(0.2)
    assert limiter.used("p") == 3
