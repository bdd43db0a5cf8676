"""Helpers for the sync tests, on top of the shared ``sandbox``/``connected_workspace`` fixtures."""

from __future__ import annotations

import pytest


class Portal:
    """One sandbox portal through the admin API (``/_sandbox/portals/<id>/...``)."""

    def __init__(self, admin, portal_id: int):
        self.admin = admin
        self.id = portal_id
        self.base = f"/portals/{portal_id}"

    def users(self) -> list[dict]:
        return self.admin.get(self.base)["users"]

    def user_id(self, email_start: str) -> int:
        return next(u["id"] for u in self.users() if u["email"].startswith(email_start))

    def add_user(self, email: str, **fields) -> dict:
        return self.admin.post(self.base + "/users", {"email": email, **fields})

    def patch_user(self, user_id, **fields) -> dict:
        return self.admin.patch(f"{self.base}/users/{user_id}", fields)

    def sequences(self) -> list[dict]:
        return self.admin.get(self.base + "/sequences")["results"]

    def add_sequence(self, name: str, user_id, shared: bool = True, **fields) -> dict:
        body = {"name": name, "userId": int(user_id), "shared": shared, **fields}
        return self.admin.post(self.base + "/sequences", body)

    def patch_sequence(self, sequence_id, **fields) -> dict:
        return self.admin.patch(f"{self.base}/sequences/{sequence_id}", fields)

    def delete_sequence(self, sequence_id) -> None:
        self.admin.delete(f"{self.base}/sequences/{sequence_id}")

    def settings(self, **fields) -> dict:
        return self.admin.patch(self.base + "/settings", fields)

    def faults(self, **fields) -> dict:
        return self.admin.patch(self.base + "/faults", fields)

    def stats(self) -> dict:
        return self.admin.get(self.base + "/stats")

    def visible_to_senders(self) -> set[str]:
        """Ids of the sequences some active user sees (what a sync must bring: sequences are
        listed for every active user, seat or not)."""
        senders = {u["id"] for u in self.users() if u["active"]}
        return {s["id"] for s in self.sequences() if s["shared"] or int(s["userId"]) in senders}


@pytest.fixture
def portal(sandbox_admin, portal_id) -> Portal:
    return Portal(sandbox_admin, portal_id)


@pytest.fixture
def ws_id(connected_workspace) -> int:
    """The connected workspace's id (the worker fixture detaches ORM objects)."""
    return connected_workspace.id
