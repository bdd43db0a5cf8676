"""Connect HubSpot through the real OAuth dance against the sandbox."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from autoseq.extensions import db
from autoseq.hubspot import oauth
from autoseq.models import HubSpotConnection, Role, SyncRun
from autoseq.services import tokens


def _connection(workspace_id):
    db.session.expire_all()
    return db.session.scalar(db.select(HubSpotConnection).filter_by(workspace_id=workspace_id))


def test_connect_button_sends_admin_to_consent_with_every_scope(logged_in, workspace, sandbox):
    response = logged_in.post_form(f"/w/{workspace.id}/settings/hubspot/connect")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["scope"][0].split() == list(oauth.SCOPES)
    assert query["redirect_uri"] == ["http://localhost:5000/hubspot/oauth/callback"]
    assert query["client_id"] == [sandbox.state.app.client_id]
    assert len(query["state"][0]) >= 32


def test_approving_consent_stores_the_connection(
    logged_in, workspace, user, sandbox, portal_id, oauth_dance
):
    response = oauth_dance(logged_in, workspace.id, portal_id)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/w/{workspace.id}/settings/hubspot/")
    connection = _connection(workspace.id)
    assert connection.portal_id == portal_id
    assert connection.status == "connected"
    assert connection.hub_domain == "demo-company.hubspot.com"
    assert connection.installed_by_email == "alice.martin@demo-company.com"
    assert connection.connected_by_id == user.id
    assert set(oauth.SCOPES) <= set(connection.scopes)
    assert connection.expires_at is not None


def test_connected_page_shows_portal_connector_scopes_and_status(connected_workspace, logged_in):
    page = logged_in.get(f"/w/{connected_workspace.id}/settings/hubspot/").get_data(as_text=True)
    connection = _connection(connected_workspace.id)
    assert str(connection.portal_id) in page
    assert "demo-company.hubspot.com" in page
    assert "Olivia Owner" in page
    assert "alice.martin@demo-company.com" in page
    assert "automation.sequences.enrollments.write" in page
    assert "badge badge-connected" in page
    assert connection.connected_at.strftime("%Y-%m-%d") in page


def test_connecting_requests_the_first_sync(connected_workspace):
    run = db.session.scalar(db.select(SyncRun).filter_by(workspace_id=connected_workspace.id))
    assert run is not None
    assert run.trigger == "connect"


def test_tokens_never_appear_on_the_page(connected_workspace, logged_in):
    connection = _connection(connected_workspace.id)
    page = logged_in.get(f"/w/{connected_workspace.id}/settings/hubspot/").get_data(as_text=True)
    assert tokens.decrypt(connection.access_token_enc) not in page
    assert tokens.decrypt(connection.refresh_token_enc) not in page
    assert connection.access_token_enc not in page


def test_denied_consent_stores_nothing_and_says_so(logged_in, workspace, oauth_dance):
    response = oauth_dance(logged_in, workspace.id, decision="deny")
    assert response.status_code == 302
    assert _connection(workspace.id) is None
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "You declined the connection in HubSpot" in page


def test_replayed_state_is_refused(logged_in, workspace, sandbox, portal_id, oauth_dance):
    # The first answer consumes the state; the same URL again must not be accepted.
    first = oauth_dance(logged_in, workspace.id, portal_id)
    assert first.status_code == 302
    assert _connection(workspace.id) is not None
    start = logged_in.post_form(f"/w/{workspace.id}/settings/hubspot/connect")
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    assert logged_in.get(f"/hubspot/oauth/callback?code=x&state={state}").status_code == 302
    again = logged_in.get(f"/hubspot/oauth/callback?code=x&state={state}")
    assert again.status_code == 400
    assert "expired or was already used" in again.get_data(as_text=True)


def test_state_from_another_session_is_refused(app, logged_in, workspace, user, sandbox, portal_id):
    from tests.conftest import login

    start = logged_in.post_form(f"/w/{workspace.id}/settings/hubspot/connect")
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    other_browser = app.test_client()
    assert login(other_browser, user.email).status_code == 302
    response = other_browser.get(f"/hubspot/oauth/callback?code=abc&state={state}")
    assert response.status_code == 403
    assert "another session" in response.get_data(as_text=True)
    assert _connection(workspace.id) is None


def test_state_of_another_user_is_refused(
    app, logged_in, workspace, make_user, sandbox, member_client
):
    start = logged_in.post_form(f"/w/{workspace.id}/settings/hubspot/connect")
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    admin = member_client(Role.ADMIN)
    response = admin.get(f"/hubspot/oauth/callback?code=abc&state={state}")
    assert response.status_code == 403
    assert _connection(workspace.id) is None


def test_state_after_losing_admin_role_is_refused(
    app, workspace, make_user, sandbox, portal_id, oauth_dance
):
    from autoseq.services import accounts
    from tests.conftest import login

    admin = make_user()
    accounts.add_member(workspace, admin, Role.ADMIN)
    browser = app.test_client()
    login(browser, admin.email)
    start = browser.post_form(f"/w/{workspace.id}/settings/hubspot/connect")
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    accounts.add_member(workspace, admin, Role.MEMBER)
    response = browser.get(f"/hubspot/oauth/callback?code=abc&state={state}")
    assert response.status_code == 403
    assert "Only an admin" in response.get_data(as_text=True)


def test_code_hubspot_refuses_ends_on_a_message(logged_in, workspace, sandbox):
    start = logged_in.post_form(f"/w/{workspace.id}/settings/hubspot/connect")
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    response = logged_in.get(f"/hubspot/oauth/callback?code=forged&state={state}")
    assert response.status_code == 302
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "HubSpot refused the authorization" in page
    assert _connection(workspace.id) is None


def test_portal_connected_elsewhere_is_refused(
    app, connected_workspace, make_user, sandbox, portal_id, oauth_dance
):
    from autoseq.services import accounts
    from tests.conftest import login

    other_owner = make_user()
    other = accounts.create_workspace(other_owner, "Other Co")
    browser = app.test_client()
    login(browser, other_owner.email)
    response = oauth_dance(browser, other.id, portal_id)
    assert response.status_code == 302
    page = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "already connected to another AutoSeq workspace" in page
    assert _connection(other.id) is None


def test_garbage_at_the_callback_ends_on_readable_pages(logged_in, workspace, sandbox):
    for query in (
        "",
        "code=abc",
        "state=",
        "state=nope&code=abc",
        "error=access_denied",
        "error=server_error&state=zzz",
        "state=" + "x" * 5000,
        "state=%00%ff&code=%ff",
        "code=a&code=b&state=c&state=d",
    ):
        response = logged_in.get(f"/hubspot/oauth/callback?{query}")
        assert response.status_code == 400, query
        assert "Connect HubSpot again" in response.get_data(as_text=True)


def test_callback_garbage_with_a_good_state_never_500s(logged_in, workspace, sandbox):
    for query in ("error=weird&error_description=<b>x</b>", "code=", "code=" + "c" * 3000):
        start = logged_in.post_form(f"/w/{workspace.id}/settings/hubspot/connect")
        state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
        response = logged_in.get(f"/hubspot/oauth/callback?{query}&state={state}")
        assert response.status_code == 302, query
        page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
        assert "<b>x</b>" not in page
    assert _connection(workspace.id) is None


def test_callback_asks_a_logged_out_browser_to_log_in(client, sandbox):
    response = client.get("/hubspot/oauth/callback?code=a&state=b")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_members_see_the_page_read_only(connected_workspace, member_client):
    member = member_client(Role.MEMBER)
    page = member.get(f"/w/{connected_workspace.id}/settings/hubspot/").get_data(as_text=True)
    assert "badge badge-connected" in page
    assert "disconnect-form" not in page
    assert "reconnect-form" not in page


def test_members_cannot_start_oauth(workspace, member_client, sandbox):
    member = member_client(Role.MEMBER)
    response = member.post_form(f"/w/{workspace.id}/settings/hubspot/connect")
    assert response.status_code == 302
    assert "oauth/authorize" not in response.headers["Location"]


def test_connect_form_requires_csrf(logged_in, workspace, sandbox):
    response = logged_in.post(f"/w/{workspace.id}/settings/hubspot/connect")
    assert response.status_code == 400


def test_without_a_hubspot_app_connect_explains_instead_of_redirecting(app, logged_in, workspace):
    saved = app.config.get("HUBSPOT_CLIENT_ID")
    app.config["HUBSPOT_CLIENT_ID"] = None
    try:
        page = logged_in.get(f"/w/{workspace.id}/settings/hubspot/").get_data(as_text=True)
        assert "No HubSpot app is configured" in page
        response = logged_in.post_form(f"/w/{workspace.id}/settings/hubspot/connect")
        assert response.status_code == 302
        assert response.headers["Location"].endswith(f"/w/{workspace.id}/settings/hubspot/")
    finally:
        app.config["HUBSPOT_CLIENT_ID"] = saved
