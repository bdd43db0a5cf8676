"""Users, workspaces and memberships."""

from __future__ import annotations

import functools
import hashlib
import secrets

from redis import Redis
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import Membership, Role, User, Workspace
from ..models.base import utcnow


def create_user(email: str, password: str, name: str = "", verified: bool = False) -> User:
    """Create a user with a hashed password, and commit.

    ``verified``: the address is known to be theirs (an operator made the account); sign-ups
    confirm theirs through a mailed link first.
    """
    user = User(email=email.strip().lower(), name=name or "")
    if verified:
        user.email_verified_at = utcnow()
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
    """Limits login attempts per client address and per account, separately, in Redis.

    Every attempt is counted (one atomic INCR + EXPIRE in a MULTI) *before* the password is
    checked, so concurrent tries cannot slip past the limit between the check and the count.

    - An address past ``address_limit`` attempts in the window is refused until the window ends:
      one address spraying many emails is stopped.
    - An account past ``account_limit`` attempts is *slowed down*, not locked: from then on one
      attempt per ``slow_interval`` seconds gets a password check (whoever takes the slot first;
      a Redis ``SET NX EX``), so a guesser gets a handful of checks an hour while the owner, who
      keeps trying, still gets in. A browser that logged into the account before (``trusted``:
      the signed device cookie the login view sets) skips the slow-down, with its own limit.
    """

    def __init__(
        self,
        redis: Redis,
        account_limit: int = 5,
        address_limit: int = 50,
        window: int = 900,
        slow_interval: int = 10,
    ):
        self.redis = redis
        self.account_limit, self.address_limit = account_limit, address_limit
        self.window, self.slow_interval = window, slow_interval

    @staticmethod
    def _digest(value: str) -> str:
        # Keys carry a digest, not the email or address itself.
        return hashlib.sha256(value.encode()).hexdigest()[:32]

    def _count(self, key: str) -> tuple[int, int]:
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, self.window, nx=True)
        pipe.ttl(key)
        count, _, ttl = pipe.execute()
        return int(count), max(int(ttl), 1)

    def admit(self, address: str, email: str, device: str | None = None) -> int:
        """Count this attempt; return 0 when its password may be checked, else seconds to wait.

        ``device`` is the id of a trusted device cookie for this account (None when absent).
        """
        count, ttl = self._count("autoseq:login:address:" + self._digest(address or "-"))
        if count > self.address_limit:
            return ttl
        if device:
            count, ttl = self._count("autoseq:login:device:" + self._digest(device))
            if count <= self.account_limit:
                return 0
        account = self._digest(email)
        count, _ = self._count("autoseq:login:account:" + account)
        if count <= self.account_limit:
            return 0
        slot = "autoseq:login:slot:" + account
        if self.redis.set(slot, 1, nx=True, ex=self.slow_interval):
            return 0
        return max(int(self.redis.ttl(slot)), 1)

    def succeeded(self, email: str, device: str | None = None) -> None:
        """The right password: the account's and this device's counts start again."""
        keys = ["autoseq:login:account:" + self._digest(email)]
        if device:
            keys.append("autoseq:login:device:" + self._digest(device))
        self.redis.delete(*keys)


@functools.cache
def _throwaway_hash() -> str:
    return generate_password_hash(secrets.token_hex(16))


def check_login(email: str, password: str) -> User | None:
    """The user whose email and password these are, else None, in the same time either way.

    An unknown email still pays for one password hash check (against a throwaway hash), so the
    answer's timing does not tell who has an account.
    """
    user = db.session.scalar(db.select(User).filter_by(email=email))
    if user is None:
        check_password_hash(_throwaway_hash(), password)
        return None
    return user if user.check_password(password) else None
