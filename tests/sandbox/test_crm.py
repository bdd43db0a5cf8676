"""Deals, companies and tickets, their associations with contacts, and sequences that end.

What deal, company and ticket workflows and "wait until the current sequence ends" need from
HubSpot, served the way HubSpot's associations API (2026-03) answers.
"""

from __future__ import annotations

import time

import pytest

from .conftest import ALL_SCOPES
from .receiver import Receiver
from .test_actions_runner import create_definition, definition_body

DEALS = f"{ALL_SCOPES} crm.objects.deals.read crm.objects.companies.read tickets"


@pytest.fixture
def crm_token(demo, portal):
    return demo.token(portal.id, scope=DEALS)["access_token"]


def _deal(demo, portal, contacts, name="Big deal", kind="deals"):
    resp = demo.admin(
        "POST",
        f"/portals/{portal.id}/records",
        json={"objectType": kind, "name": name, "contacts": contacts},
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def _contact_ids(portal, n):
    return sorted(portal.contacts, key=int)[:n]


def test_a_deals_contacts_with_their_labels_on_the_dated_path(demo, portal, crm_token):
    a, b, c = _contact_ids(portal, 3)
    deal = _deal(demo, portal, [a, {"id": b, "labels": ["Decision maker"]}, {"id": c}])
    resp = demo.api(
        "GET", f"/crm/objects/2026-03/deals/{deal['id']}/associations/contacts", crm_token
    )
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["toObjectId"] for r in results] == [a, b, c]  # strings on the dated path
    unlabeled = {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}
    assert results[0]["associationTypes"] == [unlabeled]
    types = results[1]["associationTypes"]
    assert types[0] == unlabeled
    assert types[1]["category"] == "USER_DEFINED" and types[1]["label"] == "Decision maker"
    assert "paging" not in resp.json()
    # the legacy v4 path answers numbers, as its models say
    legacy = demo.api("GET", f"/crm/v4/objects/deal/{deal['id']}/associations/contact", crm_token)
    assert [r["toObjectId"] for r in legacy.json()["results"]] == [int(a), int(b), int(c)]


def test_associations_page_with_a_cursor(demo, portal, crm_token):
    ids = _contact_ids(portal, 5)
    deal = _deal(demo, portal, ids)
    path = f"/crm/objects/2026-03/0-3/{deal['id']}/associations/contacts"
    seen, after = [], None
    while True:
        params = {"limit": 2} if after is None else {"limit": 2, "after": after}
        body = demo.api("GET", path, crm_token, params=params).json()
        seen += [r["toObjectId"] for r in body["results"]]
        after = body.get("paging", {}).get("next", {}).get("after")
        if not after:
            break
    assert seen == ids


@pytest.mark.parametrize(
    ("path", "status", "expect"),
    [
        ("/crm/objects/2026-03/widgets/1/associations/contacts", 400, "Unable to infer"),
        ("/crm/objects/2026-03/deals/424242/associations/contacts", 404, "No deals record"),
        ("/crm/objects/2026-03/deals/{deal}/associations/contacts?limit=many", 400, "limit"),
    ],
)
def test_associations_refuse_what_hubspot_refuses(demo, portal, crm_token, path, status, expect):
    deal = _deal(demo, portal, _contact_ids(portal, 1))
    resp = demo.api("GET", path.format(deal=deal["id"]), crm_token)
    assert resp.status_code == status, resp.text
    assert expect in resp.text


def test_reading_a_deals_associations_needs_the_deals_scope(demo, portal, demo_token):
    deal = _deal(demo, portal, _contact_ids(portal, 1))
    resp = demo.api(
        "GET", f"/crm/objects/2026-03/deals/{deal['id']}/associations/contacts", demo_token
    )
    assert resp.status_code == 403
    assert resp.json()["category"] == "MISSING_SCOPES"
    assert "crm.objects.deals.read" in resp.json()["message"]


def test_labels_between_object_types(demo, portal, crm_token):
    _deal(demo, portal, [{"id": _contact_ids(portal, 1)[0], "labels": ["Billing contact"]}])
    deals = demo.api("GET", "/crm/associations/2026-03/deals/contacts/labels", crm_token).json()
    assert {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None} in deals["results"]
    assert any(r["label"] == "Billing contact" for r in deals["results"])
    companies = demo.api(
        "GET", "/crm/associations/2026-03/companies/contacts/labels", crm_token
    ).json()
    assert {"category": "HUBSPOT_DEFINED", "typeId": 2, "label": "Primary"} in companies["results"]


def test_a_record_needs_known_contacts_and_a_record_type(demo, portal):
    bad = demo.admin(
        "POST", f"/portals/{portal.id}/records", json={"objectType": "deals", "contacts": ["0"]}
    )
    assert bad.status_code == 400 and "unknown contacts" in bad.text
    contact = demo.admin(
        "POST", f"/portals/{portal.id}/records", json={"objectType": "contacts", "contacts": []}
    )
    assert contact.status_code == 400


# -- sequences that end -----------------------------------------------------------


def _enroll(demo, token, user, contact_id, seq_id):
    return demo.api(
        "POST",
        "/automation/sequences/2026-03/enrollments",
        token,
        params={"userId": user.id},
        json={"contactId": contact_id, "sequenceId": seq_id, "senderEmail": user.email},
    )


def _ready(portal):
    user = next(u for u in portal.users.values() if u.active and u.seat)
    seq = next(s for s in portal.sequences.values() if s.shared)
    contact = next(c for c in portal.contacts.values() if not c.unsubscribed and not c.bounced)
    return user, seq, contact


def test_a_sequence_that_ends_frees_the_contact(demo, portal, demo_token):
    user, seq, contact = _ready(portal)
    settings = demo.admin("PATCH", f"/portals/{portal.id}/settings", json={"enrollment_length": 1})
    assert settings.status_code == 200 and settings.json()["enrollment_length"] == 1
    assert _enroll(demo, demo_token, user, contact.id, seq.id).status_code == 200
    again = _enroll(demo, demo_token, user, contact.id, seq.id)
    assert again.status_code == 400 and again.json()["subCategory"] == "ALREADY_ENROLLED"
    listed = demo.admin("GET", f"/portals/{portal.id}/enrollments").json()["results"]
    assert listed[0]["endsAt"]
    time.sleep(1.1)
    lookup = f"/automation/sequences/2026-03/enrollments/contact/{contact.id}"
    assert demo.api("GET", lookup, demo_token).status_code == 404
    assert _enroll(demo, demo_token, user, contact.id, seq.id).status_code == 200


def test_ending_a_sequence_from_the_admin_api(demo, portal, demo_token):
    user, seq, contact = _ready(portal)
    assert _enroll(demo, demo_token, user, contact.id, seq.id).status_code == 200
    path = f"/portals/{portal.id}/enrollments/{contact.id}"
    assert demo.admin("PATCH", path, json={"endsIn": "soon"}).status_code == 400
    assert demo.admin("PATCH", path, json={"endsIn": 0}).status_code == 200
    assert demo.admin("DELETE", path).status_code == 404  # already ended
    assert _enroll(demo, demo_token, user, contact.id, seq.id).status_code == 200
    assert demo.admin("DELETE", path).status_code == 204
    bad = demo.admin("PATCH", f"/portals/{portal.id}/settings", json={"enrollment_length": -1})
    assert bad.status_code == 400


# -- record workflows ---------------------------------------------------------------


def _fire_deal(demo, portal, did, deal_id):
    return demo.admin(
        "POST",
        "/workflows/fire",
        json={
            "portalId": portal.id,
            "definitionId": did,
            "workflowId": 77,
            "objectType": "DEAL",
            "objectIds": [deal_id],
            "inputFields": {"sequence": "2000001"},
            "wait": True,
        },
    )


def test_a_deal_workflow_runs_an_action_offered_on_deals(demo, portal, crm_token):
    deal = _deal(demo, portal, _contact_ids(portal, 2), name="Acme renewal")
    with Receiver(lambda req, n: (200, {"outputFields": {"ok": "1"}}, None)) as rx:
        contact_only = create_definition(demo, rx.url + "/a")
        refused = _fire_deal(demo, portal, contact_only, deal["id"])
        assert refused.status_code == 400 and "not offered in DEAL workflows" in refused.text
        body = definition_body(rx.url + "/a")
        body["objectTypes"] = ["CONTACT", "DEAL"]
        resp = demo.http.post(
            f"{demo.url}/automation/actions/2026-09/{demo.app.app_id}",
            headers={"Authorization": f"Bearer {demo.app.developer_token}"},
            json=body,
        )
        assert resp.status_code == 201, resp.text
        fired = _fire_deal(demo, portal, resp.json()["id"], deal["id"])
        assert fired.status_code == 200, fired.text
        assert fired.json()["results"][0]["status"] == "succeeded"
        sent = rx.requests[-1]["json"]["object"]
        assert sent["objectType"] == "DEAL" and str(sent["objectId"]) == deal["id"]
        unknown = _fire_deal(demo, portal, resp.json()["id"], "1")
        assert unknown.status_code == 400 and "no deals record" in unknown.text
    flows = demo.api("GET", "/automation/v4/flows", crm_token).json()["results"]
    assert next(f for f in flows if f["id"] == "77")["objectTypeId"] == "0-3"


def test_an_options_request_from_a_deal_workflow_names_the_deal_type(demo, portal):
    with Receiver(lambda req, n: (200, {"options": []}, None)) as rx:
        did = create_definition(demo, rx.url + "/a", options_url=rx.url + "/options")
        for kind, type_id in (("CONTACT", "0-1"), ("DEAL", "0-3"), ("TICKET", "0-5")):
            resp = demo.admin(
                "POST",
                "/workflows/options",
                json={
                    "portalId": portal.id,
                    "definitionId": did,
                    "fieldName": "sequence",
                    "objectType": kind,
                },
            )
            assert resp.status_code == 200 and resp.json()["statusCode"] == 200, resp.text
            assert rx.requests[-1]["json"]["objectTypeId"] == type_id
