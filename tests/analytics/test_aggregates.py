"""Each figure of the analytics page against counts computed here from the rows inserted."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from autoseq.services import analytics
from autoseq.services.analytics import Filters
from autoseq.views import charts


def _in_period(rows, filters):
    return [r for r in rows if filters.start <= r.created_at < filters.end]


def _expected(rows):
    return (
        len(rows),
        sum(r.status == "enrolled" for r in rows),
        sum(r.status == "failed" for r in rows),
    )


def _as_tuple(counts):
    return counts.total, counts.succeeded, counts.failed


def test_headline_counts_the_period_by_status(workspace, scattered):
    filters = Filters.parse({"period": "30"}, workspace)
    current, _ = analytics.headline(filters)
    assert _as_tuple(current) == _expected(_in_period(scattered, filters))
    assert 0 < current.total < len(scattered)


def test_headline_previous_period_has_equal_length(workspace, scattered):
    filters = Filters.parse({"period": "30"}, workspace)
    _, previous = analytics.headline(filters)
    prev_start = analytics.local_midnight(filters.previous_start_date, filters.tz)
    rows = [r for r in scattered if prev_start <= r.created_at < filters.start]
    assert (filters.start - prev_start) == timedelta(days=30)
    assert _as_tuple(previous) == _expected(rows)
    assert previous.total > 0


def test_success_rate_leaves_queued_out(workspace, make_enrollment):
    for status in ("enrolled", "enrolled", "enrolled", "failed", "queued", "queued"):
        make_enrollment(workspace, status=status)
    current, _ = analytics.headline(Filters.parse({}, workspace))
    assert (current.total, current.queued) == (6, 2)
    assert current.rate == pytest.approx(0.75)


@pytest.mark.parametrize(
    "breakdown, key",
    [
        (analytics.by_sequence, lambda r: (r.sequence_id, r.sequence_name)),
        (analytics.by_workflow, lambda r: r.workflow_id),
        (analytics.by_mailbox, lambda r: r.mailbox_id),
        (analytics.by_rotation, lambda r: r.rotation_id),
    ],
    ids=["sequence", "workflow", "mailbox", "rotation"],
)
def test_breakdown_matches_rows(workspace, scattered, breakdown, key):
    filters = Filters.parse({"period": "90"}, workspace)
    rows = _in_period(scattered, filters)
    groups = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    got = {}
    for row in breakdown(filters):
        group_key = row.key
        if breakdown is analytics.by_sequence:
            group_key = (row.key, row.label)
        got[group_key] = _as_tuple(row.counts)
    assert got == {k: _expected(v) for k, v in groups.items()}
    assert len(got) >= 2


def test_failures_by_reason_matches_rows(workspace, scattered):
    filters = Filters.parse({"period": "90"}, workspace)
    expected = Counter(
        r.failure_code for r in _in_period(scattered, filters) if r.status == "failed"
    )
    got = {row.key: row.counts.failed for row in analytics.by_reason(filters)}
    assert got == dict(expected)
    assert set(got) == {"UNSUBSCRIBED", "BOUNCED", "PERMISSION_DENIED"}


def test_dimension_filters_narrow_every_figure(workspace, scattered):
    seq_id = scattered[0].sequence_id
    mailbox_id = scattered[0].mailbox_id
    filters = Filters.parse(
        {"period": "90", "sequence": str(seq_id), "mailbox": str(mailbox_id), "status": "failed"},
        workspace,
    )
    assert filters.ok, filters.errors
    rows = [
        r
        for r in _in_period(scattered, filters)
        if r.sequence_id == seq_id and r.mailbox_id == mailbox_id and r.status == "failed"
    ]
    current, _ = analytics.headline(filters)
    assert _as_tuple(current) == _expected(rows)
    assert sum(d.counts.total for d in analytics.per_day(filters)) == len(rows)
    assert [row.key for row in analytics.by_workflow(filters)]
    assert sum(row.counts.total for row in analytics.by_workflow(filters)) == len(rows)


def test_per_day_covers_every_day_and_sums_to_total(workspace, scattered):
    filters = Filters.parse({"period": "30"}, workspace)
    days = analytics.per_day(filters)
    assert [d.day for d in days] == [filters.start_date + timedelta(days=i) for i in range(30)]
    expected = Counter(r.created_at.date() for r in _in_period(scattered, filters))
    assert {d.day: d.counts.total for d in days if d.counts.total} == dict(expected)


def test_sequence_keeps_the_name_it_had_when_renamed(workspace, make_sequence, make_enrollment):
    seq = make_sequence(workspace, "Old name")
    make_enrollment(workspace, sequence=seq)
    make_enrollment(workspace, sequence=seq, sequence_name="New name")
    make_enrollment(workspace, sequence=seq, sequence_name="New name")
    rows = analytics.by_sequence(Filters.parse({}, workspace))
    assert {(r.label, r.counts.total) for r in rows} == {("Old name", 1), ("New name", 2)}


def test_removed_sequence_keeps_its_history_with_a_badge(workspace, make_sequence, make_enrollment):
    gone = make_sequence(workspace, "Event Follow-up - Q4 2025", removed=True)
    make_enrollment(workspace, sequence=gone)
    (row,) = analytics.by_sequence(Filters.parse({}, workspace))
    assert (row.label, row.badge, row.counts.total) == ("Event Follow-up - Q4 2025", "removed", 1)


def test_chart_bars_stack_to_each_days_total(workspace, scattered):
    filters = Filters.parse({"period": "30"}, workspace)
    chart = charts.chart(analytics.per_day(filters))
    plot_h = chart.height - chart.top - chart.bottom
    ymax = chart.ticks[-1][1]
    for bar in chart.bars:
        expected = plot_h * bar.day.counts.total / ymax
        assert bar.h_ok + bar.h_failed + bar.h_queued == pytest.approx(expected, abs=0.05)
    assert ymax >= max(b.day.counts.total for b in chart.bars)


def test_report_matches_the_separate_queries(workspace, scattered):
    # On PostgreSQL the report reads every breakdown in one GROUPING SETS scan.
    filters = Filters.parse({"period": "90"}, workspace)
    report = analytics.report(filters)

    def flat(rows):
        return sorted((str(r.key), r.label, _as_tuple(r.counts), r.detail) for r in rows)

    assert flat(report.sequences) == flat(analytics.by_sequence(filters))
    assert flat(report.workflows) == flat(analytics.by_workflow(filters))
    assert flat(report.mailboxes) == flat(analytics.by_mailbox(filters))
    assert flat(report.rotations) == flat(analytics.by_rotation(filters))
    assert flat(report.reasons) == flat(analytics.by_reason(filters))
    assert report.days == analytics.per_day(filters)
    assert (report.current, report.previous) == analytics.headline(filters)
    assert sum(d.counts.total for d in report.days) == report.current.total
