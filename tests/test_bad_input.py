"""Bad input is a 400 or 404 with a reason, never a 500; HubSpot gets 4xx only for what can never
succeed. Named cases from the issue's fuzzer first, then a Hypothesis property over the execution,
options, login and filter inputs (``make test`` runs it; it prints what it tried).
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoseq.hubspot.signatures import sign_v2, sign_v3
from autoseq.services.analytics import FILTER_KEYS

from .conftest import PASSWORD

SECRET = "test-client-secret"
BASE = "http://localhost:5000"


@pytest.fixture
def signed(app):
    """``signed(path, body)``: POST ``body`` (bytes or JSON-able) to ``path`` signed v3."""
    saved = app.config.get("HUBSPOT_CLIENT_SECRET")
    app.config["HUBSPOT_CLIENT_SECRET"] = SECRET
    client = app.test_client()

    def post(path: str, body, version: str = "v3"):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        if version == "v3":
            ts = str(int(time.time() * 1000))
            headers = {
                "X-HubSpot-Signature-v3": sign_v3(SECRET, "POST", BASE + path, raw, ts),
                "X-HubSpot-Request-Timestamp": ts,
            }
        else:
            headers = {"X-HubSpot-Signature": sign_v2(SECRET, "POST", BASE + path, raw)}
        return client.post(path, data=raw, headers=headers, content_type="application/json")

    yield post
    app.config["HUBSPOT_CLIENT_SECRET"] = saved


def execution(**overrides) -> dict:
    body = {
        "callbackId": "cb-1",
        "origin": {"portalId": 12345, "actionDefinitionId": "1"},
        "context": {"workflowId": 9},
        "object": {"objectType": "CONTACT", "objectId": 101},
        "inputFields": {"sequence": "1", "send_from": "mailbox", "mailbox": "1"},
    }
    body.update(overrides)
    return body


# -- the six causes the fuzzer found --------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/w/99999999999999999999/sequences/",
        "/w/2147483648/settings",
        "/w/{ws}/mailboxes/rotations/99999999999999999999999",
        "/w/{ws}/sequences/9223372036854775808",
    ],
)
def test_ids_beyond_the_integer_range_are_404(logged_in, workspace, path):
    assert logged_in.get(path.format(ws=workspace.id)).status_code == 404


@pytest.mark.parametrize(
    "query",
    ["q=%00", "owner=a%00b", "state=%00", "page=%00"],
)
def test_nul_bytes_in_query_parameters_are_400(logged_in, workspace, query):
    response = logged_in.get(f"/w/{workspace.id}/sequences/?{query}")
    assert response.status_code == 400
    assert "NUL" in response.get_data(as_text=True)


def test_nul_bytes_in_a_form_are_400(client, user):
    response = client.post_form("/login", {"email": user.email, "password": "a\x00b"})
    assert response.status_code == 400


@pytest.mark.parametrize("value", ["²", "¹²³", "٣", "99999999999999999999"])
def test_unicode_and_huge_digits_in_filters_are_not_500(logged_in, workspace, value):
    for name in ("sequence", "mailbox", "rotation"):
        response = logged_in.get(f"/w/{workspace.id}/analytics/?{name}={value}")
        assert response.status_code < 500, (name, value)
    response = logged_in.get(f"/w/{workspace.id}/sequences/?page={value}")
    assert response.status_code < 500


def test_unicode_digits_in_an_execution_are_400(signed):
    body = execution(origin={"portalId": "²"})
    response = signed("/hubspot/actions/enroll", body)
    assert response.status_code == 400, response.get_data(as_text=True)
    body = execution(inputFields={"sequence": "1", "send_from": "mailbox", "mailbox": "²"})
    assert signed("/hubspot/actions/enroll", body).status_code == 400


def test_deeply_nested_json_is_400(signed):
    deep = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for path in ("/hubspot/actions/enroll", "/hubspot/actions/options"):
        response = signed(path, deep)
        # 413 when the body is over the HubSpot endpoints' limit, 400 when under it.
        assert response.status_code in (400, 413), response.get_data(as_text=True)
    nested = b'{"a":' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    assert signed("/hubspot/actions/enroll", nested).status_code == 400


@pytest.mark.parametrize("portal", [10**30, 2**63, -1, 1e308, "Infinity"])
def test_portal_ids_beyond_bigint_are_400(signed, portal):
    body = {"origin": {"portalId": portal}, "inputFieldName": "sequence"}
    response = signed("/hubspot/actions/options", body)
    assert response.status_code == 400, response.get_data(as_text=True)
    response = signed("/hubspot/actions/enroll", execution(origin={"portalId": portal}))
    assert response.status_code == 400, response.get_data(as_text=True)


def test_nan_and_infinity_are_not_json(signed):
    response = signed("/hubspot/actions/options", b'{"origin": {"portalId": NaN}}')
    assert response.status_code == 400


def test_a_value_the_database_refuses_is_400_not_503(signed):
    # PostgreSQL refuses NUL in text (a DataError); SQLite would store it. Either way it can never
    # succeed, so HubSpot must not retry it for three days.
    response = signed("/hubspot/actions/enroll", execution(callbackId="cb\u0000x"))
    assert response.status_code == 400, response.get_data(as_text=True)


# -- the property: no input earns a 5xx -------------------------------------------------------

TRIED: Counter = Counter()
SERVER_ERRORS: list = []

# What broke things before: Unicode digits, NUL bytes, numbers past int32/int64, empty strings.
NASTY = ["²", "٣", "1\u0000", "\u0000", "12345", "9" * 25, "", " ", "-1", "1e3", "2147483648"]
json_scalars = st.one_of(
    st.sampled_from(NASTY),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False)),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)


def _record(kind: str, response, data) -> None:
    TRIED[kind] += 1
    if response.status_code >= 500:
        SERVER_ERRORS.append((kind, response.status_code, data))


@st.composite
def executions(draw):
    body = execution()
    for key in ("callbackId", "origin", "object", "inputFields", "context"):
        if draw(st.booleans()):
            body[key] = draw(json_values)
    if isinstance(body.get("origin"), dict) and draw(st.booleans()):
        body["origin"]["portalId"] = draw(json_scalars)
    if isinstance(body.get("inputFields"), dict) and draw(st.booleans()):
        body["inputFields"][draw(st.sampled_from(["mailbox", "rotation", "sequence"]))] = draw(
            json_values
        )
    return body


@st.composite
def option_requests(draw):
    cursor = base64.urlsafe_b64encode(json.dumps(draw(json_values)).encode()).decode()
    return {
        "origin": {"portalId": draw(st.one_of(st.just(12345), json_scalars))},
        "inputFieldName": draw(st.one_of(st.sampled_from(["sequence", "mailbox", "rotation"]))),
        "fetchOptions": draw(
            st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {"q": st.one_of(st.none(), st.text(max_size=20)), "after": st.just(cursor)}
                ),
            )
        ),
        "inputFields": draw(json_values),
    }


query_text = st.one_of(
    st.sampled_from([*NASTY, "0", "2024-02-30", "99999-01-01", "custom", "enrolled"]),
    st.text(max_size=20),
)
# The analytics filters (the product's own list, so a new one is fuzzed too) and the Sequences
# page's parameters.
FILTER_NAMES = (
    *FILTER_KEYS,
    "q",
    "state",
    "sharing",
    "owner",
    "sort",
    "page",
    "after",
    "before",
)


@st.composite
def cursors(draw):
    return base64.urlsafe_b64encode(json.dumps(draw(json_values)).encode()).decode()


FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def connected_portal(workspace):
    """A portal connected to ``workspace``, so executions and options reach the database."""
    from autoseq.extensions import db
    from autoseq.models import HubSpotConnection

    db.session.add(HubSpotConnection(workspace_id=workspace.id, portal_id=12345))
    db.session.commit()
    return 12345


@FUZZ
@given(body=executions())
def test_no_execution_input_earns_a_5xx(signed, connected_portal, body):
    _record("execution", signed("/hubspot/actions/enroll", body), body)


@FUZZ
@given(body=option_requests())
def test_no_options_input_earns_a_5xx(signed, connected_portal, body):
    _record("options", signed("/hubspot/actions/options", body), body)


@settings(FUZZ, max_examples=150)
@given(
    params=st.dictionaries(
        st.sampled_from(FILTER_NAMES), st.one_of(query_text, cursors()), min_size=1, max_size=4
    )
)
def test_no_filter_input_earns_a_5xx(logged_in, workspace, params):
    for page in ("sequences/", "analytics/", "analytics/log", "analytics/export.csv"):
        response = logged_in.get(f"/w/{workspace.id}/{page}", query_string=params)
        _record("filters", response, (page, params))


@settings(FUZZ, max_examples=60)
@given(
    email=st.one_of(st.emails(), st.text(max_size=40)),
    password=st.one_of(st.just(PASSWORD), st.text(max_size=40)),
    next_url=st.text(max_size=30),
    remember=st.sampled_from(["", "y", "\u0000", "²"]),
)
def test_no_login_input_earns_a_5xx(app, client, user, email, password, next_url, remember):
    app.extensions["redis"].flushdb()  # the limiter would answer 429 before the checks
    data = {"email": email, "password": password, "next": next_url, "remember": remember}
    _record("login", client.post_form("/login", data), data)


def test_zz_fuzz_report():
    """Runs after the properties above (file order): what they tried and how many 5xx."""
    total = sum(TRIED.values())
    print(f"\nfuzz: {total} inputs tried {dict(TRIED)}, {len(SERVER_ERRORS)} answered 5xx")
    assert not SERVER_ERRORS, SERVER_ERRORS[:5]
