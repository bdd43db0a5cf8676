"""The one claim idiom of the drains: enrollment rows, waiting rows and record executions."""

from __future__ import annotations

from ...extensions import db


def claim_rows(model, due, still, order_by, job_id: str, limit: int, now) -> list:
    """Claim up to ``limit`` unclaimed ``model`` rows matching ``due`` for ``job_id``.

    Two statements in one transaction: the ids are locked first (``FOR UPDATE SKIP LOCKED`` on
    PostgreSQL, so concurrent drains never wait on each other; SQLite serialises writers), then
    claimed by an UPDATE guarded by ``job_id IS NULL`` and ``still`` (the row is still what was
    selected). One ``UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`` is not
    safe: PostgreSQL may run the subquery more than once and claim more than ``n`` rows
    (bench_action.py saw 300 claimed for 50).
    """
    ids = db.session.scalars(
        db.select(model.id)
        .where(*due, model.job_id.is_(None))
        .order_by(*order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        db.session.commit()
        return []
    rows = db.session.scalars(
        db.update(model)
        .where(model.id.in_(ids), model.job_id.is_(None), *still)
        .values(job_id=job_id, updated_at=now)
        .returning(model),
        execution_options={"synchronize_session": False},
    ).all()
    db.session.commit()
    return sorted(rows, key=lambda row: row.id)
