"""Days are the workspace's local days, also across a daylight-saving change."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from autoseq.extensions import db
from autoseq.services import analytics
from autoseq.services.analytics import Filters


@pytest.mark.parametrize(
    "zone, today",
    [
        ("America/New_York", date(2026, 11, 10)),  # clocks back on Nov 1
        ("Europe/Paris", date(2026, 4, 10)),  # clocks forward on Mar 29
        ("Australia/Lord_Howe", date(2026, 4, 20)),  # a half-hour change on Apr 5
        ("Asia/Kolkata", date(2026, 4, 20)),  # +05:30, no change
    ],
)
def test_per_day_buckets_in_the_workspace_zone(workspace, make_enrollment, zone, today):
    workspace.timezone = zone
    db.session.commit()
    tz = ZoneInfo(zone)
    filters = Filters.parse({"period": "30"}, workspace, today=today)
    rng = random.Random(zone)
    span = int((filters.end - filters.start).total_seconds())
    instants = [filters.start + timedelta(seconds=rng.randrange(span)) for _ in range(200)]
    # Right at and around each local midnight, where a wrong offset would misplace them.
    for i in range(31):
        midnight = analytics.local_midnight(filters.start_date + timedelta(days=i), tz)
        instants += [midnight, midnight - timedelta(microseconds=1)]
    for instant in instants:
        make_enrollment(workspace, created_at=instant, commit=False)
    db.session.commit()

    expected = Counter(
        i.astimezone(tz).date() for i in instants if filters.start <= i < filters.end
    )
    got = {d.day: d.counts.total for d in analytics.per_day(filters) if d.counts.total}
    assert got == dict(expected)


def test_new_york_day_boundaries_around_the_fall_back(workspace, make_enrollment):
    workspace.timezone = "America/New_York"
    db.session.commit()
    at = [
        datetime(2026, 11, 1, 3, 59, 59, tzinfo=UTC),  # Oct 31, 23:59:59 EDT
        datetime(2026, 11, 1, 4, 0, 0, tzinfo=UTC),  # Nov 1, 00:00 EDT
        datetime(2026, 11, 2, 4, 30, 0, tzinfo=UTC),  # Nov 1, 23:30 EST
        datetime(2026, 11, 2, 5, 0, 0, tzinfo=UTC),  # Nov 2, 00:00 EST
    ]
    for instant in at:
        make_enrollment(workspace, created_at=instant)
    filters = Filters.parse(
        {"period": "custom", "from": "2026-10-31", "to": "2026-11-02"}, workspace
    )
    days = {d.day.isoformat(): d.counts.total for d in analytics.per_day(filters)}
    assert days == {"2026-10-31": 1, "2026-11-01": 2, "2026-11-02": 1}


def test_offset_segments_find_the_exact_change(workspace):
    tz = ZoneInfo("Europe/Paris")
    start = datetime(2026, 3, 20, tzinfo=UTC)
    segments = analytics.offset_segments(tz, start, start + timedelta(days=20))
    assert segments == [(start, 3600), (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 7200)]
