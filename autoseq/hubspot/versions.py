"""HubSpot's API versions AutoSeq calls: one name per API family, nowhere else.

HubSpot versions its APIs by date and labels the ``v1``/``v4`` paths legacy; the OAuth ``v1``
endpoints are sunset on 2027-02-16 (hubspot-api.md section 8). Each family uses the newest date
version HubSpot publishes for it, read from HubSpot's OpenAPI documents (mirrored in the public
repository ``api-evangelist/hubspot``, folder ``openapi/_original/``):

- OAuth: ``hubspot-auth-oauth-openapi.json`` (info.version ``2026-09``): ``POST
  /oauth/2026-09/token``, ``/token/introspect``, ``/token/revoke``, all form encoded.
- Sequences: ``hubspot-automation-sequences-openapi.json`` (info.version ``2026-03``, the newest
  published for this family): ``/automation/sequences/2026-03``...
- Workflow action definitions and callbacks: ``hubspot-automation-actions-v4-openapi.json``
  (info.version ``2026-09``): ``/automation/actions/2026-09/{appId}`` (OAuth scope
  ``developers-write``) and ``/automation/actions/callbacks/2026-09/...`` (scope ``automation``).
- Associations (v4 semantics, labels): ``hubspot-crm-associations-openapi.json`` (``2026-03``):
  ``GET /crm/objects/2026-03/{objectType}/{objectId}/associations/{toObjectType}`` (paged,
  ``toObjectId`` a string, ``associationTypes`` with labels) and ``GET
  /crm/associations/2026-03/{from}/{to}/labels``; scope: the from-type's read scope.
"""

from __future__ import annotations

OAUTH_API = "/oauth/2026-09"
SEQUENCES_API = "/automation/sequences/2026-03"
ACTIONS_API = "/automation/actions/2026-09"
CALLBACKS_API = "/automation/actions/callbacks/2026-09"

# The legacy path of action definitions, for apps still published with a developer API key
# (``?hapikey=``): the dated path takes a developer OAuth token only (security ``oauth2``
# ``developers-write`` in the spec above).
LEGACY_ACTIONS_API = "/automation/v4/actions"

CRM_OBJECTS_API = "/crm/objects/2026-03"
ASSOCIATIONS_API = "/crm/associations/2026-03"
