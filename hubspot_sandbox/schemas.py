"""What HubSpot accepts, per endpoint: one JSON Schema each, checked before a route acts.

Adding an endpoint's checks is adding a schema here and calling :func:`check` with its name.
The shapes are HubSpot's published OpenAPI documents (mirrored in the public repository
``api-evangelist/hubspot``, folder ``openapi/_original/``), not this sandbox's own idea:

- action definitions, callback completions: ``hubspot-automation-actions-v4-openapi.json``
  (version 2026-09: ``PublicActionDefinitionEgg``, ``PublicActionDefinitionPatch``,
  ``PublicInputFieldDefinition``, ``OutputFieldDefinition``/``FieldTypeDefinition``,
  ``PublicSingleFieldDependency``, ``PublicConditionalSingleFieldDependency``,
  ``CallbackCompletionRequest``, ``BatchInputCallbackCompletionBatchRequest``); the legacy v4
  completion shape (``outputFields`` only) is that of the ``hubspot-api-client`` models;
- sequences: ``hubspot-automation-sequences-openapi.json`` (version 2026-03:
  ``PublicSequenceEnrollmentRequest``; ``userId`` a required query parameter);
- OAuth forms: ``hubspot-auth-oauth-openapi.json`` (version 2026-09: token, introspect, revoke);
- owners: ``hubspot-crm-crm-owners-openapi.json`` (``email``, ``after``, ``limit``, ``archived``);
- users: ``/settings/v3/users`` (``limit``, ``after``).

Where HubSpot is strict (its Java models refuse unknown properties of a request object), the
top level says ``additionalProperties: false``. Query strings and forms arrive as strings, so their
schemas say which strings are allowed. Unknown query parameters are ignored, as HubSpot does.

The library is ``jsonschema`` (Draft 2020-12): a schema is plain data anyone can read against the
spec, and the error it reports carries the path of the offending field.
"""

from __future__ import annotations

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from .errors import ApiError

INT_TEXT = {"type": "string", "pattern": "^[0-9]+$"}
BOOL_TEXT = {"type": "string", "enum": ["true", "false"]}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

_OPTION = {
    "type": "object",
    "required": ["label", "value"],
    "properties": {
        "label": {"type": "string"},
        "value": {"type": "string"},
        "description": {"type": "string"},
        "displayOrder": {"type": "integer"},
        "doubleData": {"type": "number"},
        "hidden": {"type": "boolean"},
        "readOnly": {"type": "boolean"},
    },
}

_INPUT_FIELD = {
    "type": "object",
    "required": ["isRequired", "typeDefinition"],
    "properties": {
        "isRequired": {"type": "boolean"},
        "supportedValueTypes": {
            "type": "array",
            "items": {"enum": ["STATIC_VALUE", "OBJECT_PROPERTY"]},
        },
        "typeDefinition": {
            # PublicFieldTypeDefinition
            "type": "object",
            "required": ["name", "options", "type"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "type": {
                    "enum": [
                        "bool",
                        "date",
                        "datetime",
                        "enumeration",
                        "json",
                        "number",
                        "object_coordinates",
                        "phone_number",
                        "string",
                    ]
                },
                "fieldType": {
                    "enum": [
                        "booleancheckbox",
                        "calculation_equation",
                        "checkbox",
                        "date",
                        "file",
                        "html",
                        "number",
                        "phonenumber",
                        "radio",
                        "select",
                        "text",
                        "textarea",
                    ]
                },
                "options": {"type": "array", "items": _OPTION},
                "optionsUrl": {"type": "string"},
                "referencedObjectType": {"enum": ["OWNER"]},
                "label": {"type": "string"},
                "description": {"type": "string"},
                "helpText": {"type": "string"},
            },
        },
    },
}

_FIELD_SCHEMA_TYPES = [
    "INTEGER",
    "LONG",
    "DOUBLE",
    "STRING",
    "BOOLEAN",
    "ARRAY",
    "OBJECT",
    "UNKNOWN",
]

_OUTPUT_FIELD = {
    # OutputFieldDefinition: typeDefinition only (no supportedValueTypes, no isRequired)
    "type": "object",
    "required": ["typeDefinition"],
    "additionalProperties": False,
    "properties": {
        "typeDefinition": {
            # FieldTypeDefinition
            "type": "object",
            "required": ["externalOptions", "name", "options", "schema", "type", "useChirp"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "type": {
                    "enum": [
                        "bool",
                        "currency_number",
                        "date",
                        "datetime",
                        "enumeration",
                        "json",
                        "number",
                        "object_coordinates",
                        "phone_number",
                        "string",
                        "time_range",
                    ]
                },
                "fieldType": {
                    "enum": [
                        "booleancheckbox",
                        "calculation_equation",
                        "calculation_read_time",
                        "calculation_rollup",
                        "calculation_score",
                        "checkbox",
                        "date",
                        "file",
                        "html",
                        "number",
                        "phonenumber",
                        "radio",
                        "select",
                        "text",
                        "textarea",
                        "unknown",
                    ]
                },
                "options": {"type": "array", "items": _OPTION},
                "externalOptions": {"type": "boolean"},
                "useChirp": {"type": "boolean"},
                "schema": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {"type": {"enum": _FIELD_SCHEMA_TYPES}},
                },
            },
        }
    },
}

_DEPENDENCY = {
    "type": "object",
    "required": ["dependencyType", "controllingFieldName", "dependentFieldNames"],
    "properties": {
        "dependencyType": {"enum": ["SINGLE_FIELD", "CONDITIONAL_SINGLE_FIELD"]},
        "controllingFieldName": {"type": "string"},
        "controllingFieldValue": {"type": "string"},
        "dependentFieldNames": {"type": "array", "items": {"type": "string"}},
    },
    "if": {"properties": {"dependencyType": {"const": "CONDITIONAL_SINGLE_FIELD"}}},
    "then": {"required": ["controllingFieldValue"]},
}

_LABELS = {
    "type": "object",
    "additionalProperties": {
        # PublicActionLabels
        "type": "object",
        "required": ["actionName"],
        "properties": {
            "actionName": {"type": "string"},
            "actionDescription": {"type": "string"},
            "actionCardContent": {"type": "string"},
            "appDisplayName": {"type": "string"},
            "inputFieldLabels": STRING_MAP,
            "inputFieldDescriptions": STRING_MAP,
            "outputFieldLabels": STRING_MAP,
            "executionRules": STRING_MAP,
            "inputFieldOptionLabels": {"type": "object", "additionalProperties": STRING_MAP},
        },
    },
}

_DEFINITION_PROPERTIES = {
    "actionUrl": {"type": "string", "pattern": "^https?://"},
    "published": {"type": "boolean"},
    "archivedAt": {"type": "integer"},
    "objectTypes": {"type": "array", "items": {"type": "string"}},
    "objectRequestOptions": {
        "type": "object",
        "required": ["properties"],
        "properties": {"properties": {"type": "array", "items": {"type": "string"}}},
    },
    "inputFields": {"type": "array", "items": _INPUT_FIELD},
    "outputFields": {"type": "array", "items": _OUTPUT_FIELD},
    "inputFieldDependencies": {"type": "array", "items": _DEPENDENCY},
    "executionRules": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["conditions", "labelName"],
            "properties": {"labelName": {"type": "string"}, "conditions": {"type": "object"}},
        },
    },
    "labels": _LABELS,
    "functions": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["functionSource", "functionType"],
            "properties": {
                "functionSource": {"type": "string"},
                "functionType": {
                    "enum": [
                        "POST_ACTION_EXECUTION",
                        "POST_FETCH_OPTIONS",
                        "PRE_ACTION_EXECUTION",
                        "PRE_FETCH_OPTIONS",
                    ]
                },
            },
        },
    },
}

_SEQUENCE_LIST_QUERY = {
    "type": "object",
    "required": ["userId"],
    "properties": {"userId": INT_TEXT, "limit": INT_TEXT, "after": {"type": "string"}},
}

SCHEMAS: dict[str, dict] = {
    # POST /automation/actions/2026-09/{appId} (and the legacy v4 path)
    "definition_create": {
        "type": "object",
        "required": ["actionUrl", "functions", "inputFields", "labels", "objectTypes", "published"],
        "additionalProperties": False,
        "properties": _DEFINITION_PROPERTIES,
    },
    # PATCH /automation/actions/2026-09/{appId}/{definitionId}
    "definition_patch": {
        "type": "object",
        "additionalProperties": False,
        "properties": {k: v for k, v in _DEFINITION_PROPERTIES.items() if k != "archivedAt"},
    },
    # GET /automation/actions/2026-09/{appId}
    "definition_list_query": {
        "type": "object",
        "properties": {"limit": INT_TEXT, "after": {"type": "string"}, "archived": BOOL_TEXT},
    },
    # POST /automation/actions/callbacks/2026-09/{callbackId}/complete
    "callback_complete": {
        "type": "object",
        "required": ["outputFields", "typedOutputs"],
        "additionalProperties": False,
        "properties": {
            "outputFields": STRING_MAP,
            "typedOutputs": {"type": "object"},
            "failureReasonType": {"type": "string"},
            "requestContext": {"type": "object"},
        },
    },
    # POST /automation/actions/callbacks/2026-09/complete
    "callback_complete_batch": {
        "type": "object",
        "required": ["inputs"],
        "additionalProperties": False,
        "properties": {
            "inputs": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["callbackId", "outputFields", "typedOutputs"],
                    "additionalProperties": False,
                    "properties": {
                        "callbackId": {"type": "string"},
                        "outputFields": STRING_MAP,
                        "typedOutputs": {"type": "object"},
                        "failureReasonType": {"type": "string"},
                        "requestContext": {"type": "object"},
                    },
                },
            }
        },
    },
    # POST /automation/v4/actions/callbacks/{callbackId}/complete (legacy: typedOutputs not
    # required; no spec of the legacy path is left to say which extra keys it refuses)
    "callback_complete_v4": {
        "type": "object",
        "required": ["outputFields"],
        "properties": {"outputFields": STRING_MAP, "typedOutputs": {"type": "object"}},
    },
    # POST /automation/v4/actions/callbacks/complete (legacy)
    "callback_complete_batch_v4": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "inputs": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["callbackId", "outputFields"],
                    "properties": {"callbackId": {"type": "string"}, "outputFields": STRING_MAP},
                },
            }
        },
    },
    # POST /automation/sequences/2026-03/enrollments?userId=
    "enrollment": {
        "type": "object",
        "required": ["contactId", "senderEmail", "sequenceId"],
        "additionalProperties": False,
        "properties": {
            "contactId": {"type": "string", "minLength": 1},
            "sequenceId": {"type": "string", "minLength": 1},
            "senderEmail": {"type": "string", "minLength": 1},
            "senderAliasAddress": {"type": "string"},
        },
    },
    # GET /crm/objects/2026-03/{objectType}/{objectId}/associations/{toObjectType}
    "associations_query": {
        "type": "object",
        "properties": {"after": {"type": "string"}, "limit": INT_TEXT},
    },
    "enrollment_query": {
        "type": "object",
        "required": ["userId"],
        "properties": {"userId": INT_TEXT},
    },
    # GET /automation/sequences/2026-03?userId=&limit=&after=&name=
    "sequence_list_query": {
        **_SEQUENCE_LIST_QUERY,
        "properties": {**_SEQUENCE_LIST_QUERY["properties"], "name": {"type": "string"}},
    },
    # GET /automation/sequences/2026-03/{sequenceId}?userId=
    "sequence_get_query": {
        "type": "object",
        "required": ["userId"],
        "properties": {"userId": INT_TEXT},
    },
    # GET /crm/v3/owners
    "owners_query": {
        "type": "object",
        "properties": {
            "email": {"type": "string"},
            "after": {"type": "string"},
            "limit": INT_TEXT,
            "archived": BOOL_TEXT,
        },
    },
    # GET /automation/v4/flows (developers.hubspot.com, automation/workflows: get-workflows)
    "flows_query": {
        "type": "object",
        "properties": {"limit": INT_TEXT, "after": {"type": "string"}},
    },
    # GET /settings/v3/users
    "users_query": {
        "type": "object",
        "properties": {"limit": INT_TEXT, "after": {"type": "string"}},
    },
    # POST /oauth/2026-09/token (form)
    "oauth_token_form": {
        "type": "object",
        "required": ["grant_type", "client_id", "client_secret"],
        "properties": {
            "grant_type": {"enum": ["authorization_code", "client_credentials", "refresh_token"]},
            "client_id": {"type": "string", "minLength": 1},
            "client_secret": {"type": "string", "minLength": 1},
            "code": {"type": "string", "minLength": 1},
            "redirect_uri": {"type": "string", "minLength": 1},
            "refresh_token": {"type": "string", "minLength": 1},
        },
        "allOf": [
            {
                "if": {"properties": {"grant_type": {"const": "authorization_code"}}},
                "then": {"required": ["code", "redirect_uri"]},
            },
            {
                "if": {"properties": {"grant_type": {"const": "refresh_token"}}},
                "then": {"required": ["refresh_token"]},
            },
        ],
    },
    # POST /oauth/2026-09/token/introspect and /token/revoke (form)
    "oauth_token_hint_form": {
        "type": "object",
        "required": ["client_id", "client_secret", "token"],
        "properties": {
            "client_id": {"type": "string", "minLength": 1},
            "client_secret": {"type": "string", "minLength": 1},
            "token": {"type": "string", "minLength": 1},
            "token_type_hint": {"enum": ["access_token", "refresh_token"]},
        },
    },
}

_VALIDATORS = {name: Draft202012Validator(schema) for name, schema in SCHEMAS.items()}
for _validator in _VALIDATORS.values():
    Draft202012Validator.check_schema(_validator.schema)


def _field(error) -> str:
    """The dotted path of the offending field (``inputFields[2].typeDefinition.type``)."""
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if error.validator == "required":
        missing = next((n for n in error.validator_value if n not in error.instance), None)
        if missing:
            path = f"{path}.{missing}" if path else missing
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {})
        extra = next((k for k in error.instance if k not in allowed), None)
        if extra:
            path = f"{path}.{extra}" if path else extra
    return path or "(body)"


def problem(name: str, instance) -> tuple[str, str] | None:
    """``(field, message)`` of the first way ``instance`` breaks schema ``name``, or None."""
    error = best_match(_VALIDATORS[name].iter_errors(instance))
    if error is None:
        return None
    return _field(error), error.message


def check(name: str, instance) -> None:
    """Raise HubSpot's 400 VALIDATION_ERROR naming the field when ``instance`` breaks ``name``."""
    found = problem(name, instance)
    if found is None:
        return
    field, message = found
    raise ApiError(
        400,
        f"Invalid input JSON on field '{field}': {message}",
        "VALIDATION_ERROR",
        context={"field": [field]},
        extra={"errors": [{"message": message, "in": field, "code": "INVALID_INPUT"}]},
    )


def check_query(name: str, args) -> None:
    """:func:`check` a query string (a werkzeug ``MultiDict``; the first value of each key)."""
    check(name, {k: args.get(k) for k in args})
