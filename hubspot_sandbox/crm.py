"""CRM records other than contacts (companies, deals, tickets) and their associations.

What deal, company and ticket workflows need: a record, the contacts associated with it, and
the labels of those associations. The shapes are HubSpot's CRM associations API
(``hubspot-crm-associations-openapi.json`` and ``hubspot-crm-associations-schema-openapi.json``,
version 2026-03, mirrored in ``api-evangelist/hubspot``):

- ``GET /crm/objects/2026-03/{objectType}/{objectId}/associations/{toObjectType}?after=&limit=``
  (legacy: ``/crm/v4/objects/...``) answers ``CollectionResponseMultiAssociatedObjectWithLabel
  ForwardPaging``: ``results[]`` of ``{toObjectId, associationTypes: [{category, typeId,
  label}]}`` and ``paging.next.after``; ``limit`` defaults to and is capped at 500.
  ``toObjectId`` is a string on the dated path and a number on the legacy v4 path (the v4 client
  models say int64).
- ``GET /crm/associations/2026-03/{fromObjectType}/{toObjectType}/labels`` (legacy:
  ``/crm/v4/associations/...``) answers ``results[]`` of ``{category, typeId, label}``;
  HubSpot's own unlabeled type has ``label: null``.

An object type is named as HubSpot accepts it in a path: ``deals``, ``deal``, ``DEAL`` or its
type id ``0-3``; anything else is a 400 "Unable to infer object type". Reading a record's
associations needs the read scope of the record's object type (``crm.objects.deals.read``,
``crm.objects.companies.read``, ``tickets``; contacts: ``crm.objects.contacts.read``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .errors import ApiError, validation_error

# HubSpot's object type ids (``objectTypeId``) by the plural name its paths use.
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "tickets": "0-5"}
READ_SCOPES = {
    "contacts": "crm.objects.contacts.read",
    "companies": "crm.objects.companies.read",
    "deals": "crm.objects.deals.read",
    "tickets": "tickets",
}
# HubSpot-defined association types toward contacts (HubSpot's association type id table):
# company→contact 280 (unlabeled) and 2 ("Primary"), deal→contact 3, ticket→contact 16.
HUBSPOT_DEFINED = {
    "companies": [(280, None), (2, "Primary")],
    "deals": [(3, None)],
    "tickets": [(16, None)],
}
FIRST_USER_TYPE_ID = 100  # user-defined labels get ids from here, per portal


def object_type(raw: str) -> str:
    """The plural name of an object type given as HubSpot accepts it; 400 otherwise."""
    text = (raw or "").strip().lower()
    for name, type_id in OBJECT_TYPE_IDS.items():
        if text in (name, name[:-1], type_id) or (name == "companies" and text == "company"):
            return name
    raise ApiError(400, f"Unable to infer object type from: {raw}", "VALIDATION_ERROR")


@dataclass
class CrmRecord:
    """A company, deal or ticket, with the contacts associated with it (in association order)."""

    id: str
    object_type: str  # plural name: companies, deals, tickets
    name: str
    created_at: float
    # contact id -> association type ids (HubSpot-defined and labelled), in association order
    contacts: dict[str, list[int]] = field(default_factory=dict)

    def to_admin(self, labels: dict[int, str | None]) -> dict:
        return {
            "id": self.id,
            "objectType": self.object_type,
            "objectTypeId": OBJECT_TYPE_IDS[self.object_type],
            "name": self.name,
            "contacts": [
                {"id": cid, "labels": [labels.get(t) for t in types if labels.get(t)]}
                for cid, types in self.contacts.items()
            ],
        }


@dataclass
class CrmData:
    """A portal's records and its association labels toward contacts."""

    records: dict[str, dict[str, CrmRecord]] = field(default_factory=dict)
    # from-object type -> [(typeId, label)] of user-defined labels toward contacts
    user_labels: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    next_type_id: int = FIRST_USER_TYPE_ID

    def types(self, from_type: str) -> list[dict]:
        """Every association type from ``from_type`` to contacts, HubSpot's first."""
        out = [
            {"category": "HUBSPOT_DEFINED", "typeId": tid, "label": label}
            for tid, label in HUBSPOT_DEFINED.get(from_type, [])
        ]
        out += [
            {"category": "USER_DEFINED", "typeId": tid, "label": label}
            for tid, label in self.user_labels.get(from_type, [])
        ]
        return out

    def label_names(self, from_type: str) -> dict[int, str | None]:
        return {t["typeId"]: t["label"] for t in self.types(from_type)}

    def label_id(self, from_type: str, label: str) -> int:
        """The type id of a label from ``from_type`` to contacts, created when new."""
        wanted = label.strip()
        for t in self.types(from_type):
            if t["label"] and t["label"].lower() == wanted.lower():
                return t["typeId"]
        tid = self.next_type_id
        self.next_type_id += 1
        self.user_labels.setdefault(from_type, []).append((tid, wanted))
        return tid

    def add_record(
        self, record_id: str, from_type: str, name: str, contacts: list[tuple[str, list[str]]]
    ) -> CrmRecord:
        """A record associated with ``contacts`` ([(contact id, [label, ...])]), each with
        HubSpot's unlabeled type plus one type per label."""
        base = HUBSPOT_DEFINED[from_type][0][0]
        record = CrmRecord(id=record_id, object_type=from_type, name=name, created_at=time.time())
        for cid, labels in contacts:
            types = [base] + [self.label_id(from_type, lab) for lab in labels if lab.strip()]
            record.contacts[str(cid)] = list(dict.fromkeys(types))
        self.records.setdefault(from_type, {})[record_id] = record
        return record


def parse_contacts(raw) -> list[tuple[str, list[str]]]:
    """``[{"id": "12", "labels": ["Decision maker"]} | "12", ...]`` for the admin API; 400 else."""
    if not isinstance(raw, list):
        raise validation_error("contacts must be a list", "contacts")
    out = []
    for item in raw:
        if isinstance(item, (str, int)) and not isinstance(item, bool):
            out.append((str(item), []))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("id"), (str, int)):
            raise validation_error("each contact is an id or {id, labels}", "contacts")
        labels = item.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise validation_error("labels must be a list of strings", "contacts")
        out.append((str(item["id"]), labels))
    return out
