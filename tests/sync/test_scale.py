"""No limit on the number of sequences: 10,000 over 50 users arrive exactly once."""

from __future__ import annotations

import pytest

from autoseq.extensions import db
from autoseq.models import Sequence, SyncRun


@pytest.fixture
def portal_id(app, sandbox, sandbox_admin) -> int:
    """A generated portal: 10,000 sequences (about 70 % shared) over 50 users, no rate limit."""
    state = sandbox.state
    spec = state.seed_spec  # the per-test reset must keep seeding the demo portal
    (portal,) = state.seed_generated(sequences=10_000, users=50, contacts=0)
    state.seed_spec = spec
    sandbox_admin.patch(f"/portals/{portal.id}/settings", {"rate_limit": "off"})
    app.config["HUBSPOT_RATE_LIMIT"] = (1_000_000, 10.0)  # put back by the sandbox fixture
    return portal.id


def test_ten_thousand_sequences_over_fifty_users_all_arrive_exactly_once(
    sandbox, portal_id, ws_id, run_jobs
):
    portal = sandbox.state.portals[portal_id]
    run_jobs(["sync"])  # the first sync, requested by the connect flow
    run = db.session.scalar(db.select(SyncRun).filter_by(workspace_id=ws_id))
    assert run.status == "succeeded", run.error
    assert (run.added, run.users) == (10_000, 50)

    rows = db.session.execute(
        db.select(Sequence.hubspot_id, Sequence.sharing, Sequence.sender_user_ids).filter_by(
            workspace_id=ws_id
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
