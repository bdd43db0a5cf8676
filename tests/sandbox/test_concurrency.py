"""The state stays consistent under concurrent requests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests


def test_parallel_enrollments_of_one_contact_one_wins(demo, demo_token, portal):
    alice = min(portal.users.values(), key=lambda u: u.id)
    team = next(s for s in portal.sequences.values() if s.shared)
    contact = next(c for c in portal.contacts.values() if not c.unsubscribed and not c.bounced)

    def enroll(_):
        return requests.post(
            f"{demo.url}/automation/sequences/2026-03/enrollments",
            params={"userId": alice.id},
            headers={"Authorization": f"Bearer {demo_token}"},
            json={"contactId": contact.id, "sequenceId": team.id, "senderEmail": alice.email},
            timeout=10,
        ).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(enroll, range(32)))
    assert codes.count(200) == 1
    assert codes.count(400) == 31


def test_parallel_requests_respect_the_budget(demo, demo_token):
    def call(_):
        return requests.get(
            f"{demo.url}/crm/v3/owners",
            headers={"Authorization": f"Bearer {demo_token}"},
            timeout=10,
        ).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(call, range(150)))
    assert codes.count(200) == 110
    assert codes.count(429) == 40
