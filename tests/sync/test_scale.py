"""No limit on the number of sequences: 10,000 over 50 users arrive exactly once."""

from __future__ import annotations

import pytest

from autoseq.extensions import db
from autoseq.models import Sequence, SyncRun
from autoseq.services.sync import request_sync


@pytest.fixture
def portal_id(sandbox) -> int:
    """A generated portal: 10,000 sequences (about 70 % shared) over 50 users, no rate limit."""
    (portal,) = sandbox.state.seed_generated(sequences=10_000, users=50, contacts=0)
    return portal.id


def test_ten_thousand_sequences_over_fifty_users_all_arrive_exactly_once(
    sandbox, portal_id, connected_workspace, run_jobs
):
    ws = connected_workspace.id
    portal = sandbox.state.portals[portal_id]
    run = request_sync(ws, "manual")
    run_jobs(["sync"])
    run = db.session.get(SyncRun, run.id)
    assert run.status == "succeeded", run.error
    assert (run.added, run.users) == (10_000, 50)

    rows = db.session.execute(
        db.select(Sequence.hubspot_id, Sequence.sharing, Sequence.sender_user_ids).filter_by(
            workspace_id=ws
        )
    ).all()
    assert len(rows) == 10_000
    assert {r.hubspot_id for r in rows} == set(portal.sequences)
    everyone = sorted(str(u) for u in portal.users)
    for row in rows:
        source = portal.sequences[row.hubspot_id]
        assert row.sharing == ("team" if source.shared else "private")
        expected = everyone if source.shared else [str(source.user_id)]
        assert sorted(row.sender_user_ids) == expected
