"""Users, workspaces and memberships."""

from __future__ import annotations

from redis import Redis

from ..extensions import db
from ..models import Membership, Role, User, Workspace


def create_user(email: str, password: str, name: str = "") -> User:
    """Create a user with a hashed password, and commit."""
    user = User(email=email.strip().lower(), name=name or "")
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def create_workspace(owner: User, name: str, timezone: str = "UTC") -> Workspace:
    """Create a workspace owned by ``owner``, make it their current one, and commit."""
    workspace = Workspace(name=name, timezone=timezone)
    db.session.add(workspace)
    db.session.flush()
    db.session.add(Membership(user=owner, workspace=workspace, role=Role.OWNER.value))
    owner.last_workspace_id = workspace.id
    db.session.commit()
    return workspace


def add_member(workspace: Workspace, user: User, role: Role | str) -> Membership:
    """Add ``user`` to ``workspace`` (or change their role), and commit."""
    membership = db.session.scalar(
        db.select(Membership).filter_by(workspace_id=workspace.id, user_id=user.id)
    )
    if membership is None:
        membership = Membership(workspace=workspace, user=user)
        db.session.add(membership)
    membership.role = Role(role).value
    db.session.commit()
    return membership


def owner_count(workspace_id: int) -> int:
    return db.session.scalar(
        db.select(db.func.count())
        .select_from(Membership)
        .filter_by(workspace_id=workspace_id, role=Role.OWNER.value)
    )


class LoginLimiter:
    """Counts failed logins per key in a fixed Redis window; blocks past ``limit``."""

    def __init__(self, redis: Redis, limit: int = 5, window: int = 900):
        self.redis, self.limit, self.window = redis, limit, window

    def _key(self, key: str) -> str:
        return f"autoseq:login-failures:{key}"

    def blocked_for(self, key: str) -> int:
        """Seconds until ``key`` may try again (0 when it may now)."""
        count = int(self.redis.get(self._key(key)) or 0)
        if count < self.limit:
            return 0
        return max(int(self.redis.ttl(self._key(key))), 1)

    def fail(self, key: str) -> None:
        pipe = self.redis.pipeline()
        pipe.incr(self._key(key))
        pipe.expire(self._key(key), self.window, nx=True)
        pipe.execute()

    def clear(self, key: str) -> None:
        self.redis.delete(self._key(key))
