"""The Sequences page, a sequence's page, and the Sync Data button."""

from __future__ import annotations

import itertools
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import insert

from autoseq.extensions import db
from autoseq.models import (
    Enrollment,
    HubSpotConnection,
    HubSpotUser,
    Mailbox,
    Sequence,
    SyncRun,
)
from autoseq.models.base import utcnow
from autoseq.services import accounts

_n = itertools.count(1)
HX = {"HX-Request": "true"}


def add_sequence(ws_id, name, **fields) -> Sequence:
    n = next(_n)
    seq = Sequence(
        workspace_id=ws_id,
        hubspot_id=fields.pop("hubspot_id", str(9000 + n)),
        name=name,
        last_synced_at=utcnow(),
        **fields,
    )
    db.session.add(seq)
    db.session.commit()
    return seq


def enroll(seq: Sequence, status="enrolled", workflow="77", **fields):
    n = next(_n)
    db.session.add(
        Enrollment(
            workspace_id=seq.workspace_id,
            callback_id=f"cb-{n}",
            portal_id=1,
            contact_id=str(n),
            sequence_id=seq.id,
            sequence_hubspot_id=seq.hubspot_id,
            sequence_name=seq.name,
            workflow_id=workflow,
            status=status,
            **fields,
        )
    )
    db.session.commit()


def names(html: str) -> list[str]:
    return re.findall(r'<td class="seq-name"><a [^>]*>(.*?)</a>', html)


def test_empty_state_tells_a_new_user_to_connect_hubspot(logged_in, workspace):
    html = logged_in.get(f"/w/{workspace.id}/sequences/").get_data(as_text=True)
    assert "No sequences yet" in html
    assert f"/w/{workspace.id}/settings/hubspot/" in html


def test_list_shows_synced_sequences_by_name_case_insensitively_without_removed(
    logged_in, workspace
):
    for name in ("beta", "Alpha", "gamma", "Delta"):
        add_sequence(workspace.id, name)
    add_sequence(workspace.id, "Aardvark removed", removed_at=utcnow())
    html = logged_in.get(f"/w/{workspace.id}/sequences/").get_data(as_text=True)
    assert names(html) == ["Alpha", "beta", "Delta", "gamma"]


def test_list_counts_enrolled_contacts_and_sorts_by_them(logged_in, workspace):
    a = add_sequence(workspace.id, "A")
    b = add_sequence(workspace.id, "B")
    for _ in range(3):
        enroll(b)
    enroll(a)
    enroll(a, status="failed")
    html = logged_in.get(f"/w/{workspace.id}/sequences/?sort=enrollments").get_data(as_text=True)
    assert names(html) == ["B", "A"]
    counts = re.findall(r'<td class="num">(\d+)</td>\s*<td><span title', html)
    assert counts == ["3", "1"]


def test_search_and_filters_narrow_the_list(logged_in, workspace):
    db.session.add(
        HubSpotUser(
            workspace_id=workspace.id, hubspot_user_id="5", email="rep@x.test", first_name="Rita"
        )
    )
    add_sequence(workspace.id, "Cold outbound 100%", state="paused", sharing="team")
    add_sequence(
        workspace.id, "Cold inbound", state="active", sharing="private", owner_hubspot_user_id="5"
    )
    add_sequence(workspace.id, "Warm", state="active", sharing="team")
    url = f"/w/{workspace.id}/sequences/"
    assert names(logged_in.get(url + "?q=cold").get_data(as_text=True)) == [
        "Cold inbound",
        "Cold outbound 100%",
    ]
    assert names(logged_in.get(url + "?q=100%25").get_data(as_text=True)) == ["Cold outbound 100%"]
    assert names(logged_in.get(url + "?q=0_").get_data(as_text=True)) == []
    assert names(logged_in.get(url + "?state=active").get_data(as_text=True)) == [
        "Cold inbound",
        "Warm",
    ]
    assert names(logged_in.get(url + "?sharing=team&state=active").get_data(as_text=True)) == [
        "Warm"
    ]
    html = logged_in.get(url + "?owner=5").get_data(as_text=True)
    assert names(html) == ["Cold inbound"] and "Rita" in html
    assert names(logged_in.get(url + "?state=bogus&sort=bogus&page=x").get_data(as_text=True)) == [
        "Cold inbound",
        "Cold outbound 100%",
        "Warm",
    ]


def test_htmx_gets_only_the_table(logged_in, workspace):
    add_sequence(workspace.id, "One")
    html = logged_in.get(f"/w/{workspace.id}/sequences/?q=one", headers=HX).get_data(as_text=True)
    assert "<html" not in html and names(html) == ["One"]


def test_odd_names_are_escaped(logged_in, workspace):
    seq = add_sequence(workspace.id, '<script>alert("x")</script> 🚀 & co')
    add_sequence(workspace.id, "")
    add_sequence(workspace.id, "L" * 10_000)
    for url in (f"/w/{workspace.id}/sequences/", f"/w/{workspace.id}/sequences/{seq.id}"):
        html = logged_in.get(url).get_data(as_text=True)
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; 🚀 &amp; co" in html
    html = logged_in.get(f"/w/{workspace.id}/sequences/").get_data(as_text=True)
    assert "(no name)" in html and "L" * 10_000 in html


def test_pagination_stays_fast_at_ten_thousand_sequences(logged_in, workspace):
    now = utcnow()
    rows = [
        {
            "workspace_id": workspace.id,
            "hubspot_id": str(i),
            "name": f"Seq {i:05d}",
            "last_synced_at": now,
            "sender_user_ids": [],
            "state": "unknown",
            "sharing": "team",
            "created_at": now,
        }
        for i in range(10_000)
    ]
    db.session.execute(insert(Sequence), rows)
    db.session.commit()
    url = f"/w/{workspace.id}/sequences/"
    started = time.perf_counter()
    html = logged_in.get(url + "?page=120", headers=HX).get_data(as_text=True)
    took = time.perf_counter() - started
    assert names(html)[0] == "Seq 05950" and len(names(html)) == 50
    assert "page 120 of 200" in html and "10,000 sequences" in html
    assert took < 2.0, took
    assert names(logged_in.get(url + "?page=999").get_data(as_text=True))[-1] == "Seq 09999"


def test_sequence_page_shows_senders_enrollments_and_workflows(logged_in, workspace):
    rep = HubSpotUser(
        workspace_id=workspace.id, hubspot_user_id="5", email="rep@x.test", first_name="Rita"
    )
    db.session.add(rep)
    db.session.flush()
    db.session.add(
        Mailbox(workspace_id=workspace.id, hubspot_user_id=rep.id, email="rita@alias.test")
    )
    seq = add_sequence(workspace.id, "Demo", sender_user_ids=["5"], owner_hubspot_user_id="5")
    for _ in range(2):
        enroll(seq, workflow="111")
    enroll(seq, workflow="222", status="failed", failure_reason="Contact unsubscribed")
    html = logged_in.get(f"/w/{workspace.id}/sequences/{seq.id}").get_data(as_text=True)
    assert "Rita" in html and "rita@alias.test" in html
    assert "111" in html and "222" in html and "Contact unsubscribed" in html
    assert "Removed from HubSpot" not in html


def test_a_removed_sequence_page_still_opens_with_a_note(logged_in, workspace):
    seq = add_sequence(workspace.id, "Gone", removed_at=utcnow() - timedelta(days=2))
    enroll(seq)
    response = logged_in.get(f"/w/{workspace.id}/sequences/{seq.id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Removed from HubSpot on" in html
    assert re.search(r"<dt>Enrolled via AutoSeq</dt><dd>1</dd>", html)  # history still counted


def test_another_workspaces_sequence_is_a_404(logged_in, workspace, make_user):
    other = accounts.create_workspace(make_user(), "Other")
    seq = add_sequence(other.id, "Theirs")
    assert logged_in.get(f"/w/{workspace.id}/sequences/{seq.id}").status_code == 404
    assert logged_in.get(f"/w/{other.id}/sequences/").status_code == 404


def test_sync_button_is_on_every_page(logged_in, ws_id):
    for path in ("sequences/", "analytics/", "mailboxes/", "settings/hubspot/"):
        html = logged_in.get(f"/w/{ws_id}/{path}").get_data(as_text=True)
        assert 'id="sync-box"' in html and "Sync Data" in html, path


def test_no_sync_button_before_hubspot_is_connected(logged_in, workspace):
    for path in ("sequences/", "analytics/", "mailboxes/"):
        html = logged_in.get(f"/w/{workspace.id}/{path}").get_data(as_text=True)
        assert 'id="sync-box"' in html and ">Sync Data<" not in html, path


def hx_post(client, url):
    return client.post(url, headers=dict(HX, **{"X-CSRFToken": client.csrf_token()}))


def run_id_in(html: str) -> int:
    return int(re.search(r"/sequences/sync/(\d+)", html).group(1))


def test_sync_button_without_hubspot_says_connect_first(logged_in, workspace):
    response = hx_post(logged_in, f"/w/{workspace.id}/sequences/sync")
    assert response.status_code == 200
    assert "Connect HubSpot first" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(SyncRun)) == 0


def test_sync_button_starts_a_sync_polls_it_and_says_when_done(logged_in, ws_id, run_jobs):
    run_jobs(["sync"])  # the first sync, requested by the connect flow
    started = hx_post(logged_in, f"/w/{ws_id}/sequences/sync").get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in started and "Sync queued" in started
    run_id = run_id_in(started)
    again = hx_post(logged_in, f"/w/{ws_id}/sequences/sync").get_data(as_text=True)
    assert run_id_in(again) == run_id  # a second click joins the running sync

    status_url = f"/w/{ws_id}/sequences/sync/{run_id}"
    polling = logged_in.get(status_url, headers=HX).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in polling and "HX-Trigger" not in polling
    run_jobs(["sync"])
    done = logged_in.get(status_url, headers=HX)
    html = done.get_data(as_text=True)
    assert "Synced just now" in html and "every 1s" not in html and "Sync Data" in html
    assert done.headers["HX-Trigger"] == "sync-finished"
    assert db.session.scalar(db.select(db.func.count()).select_from(SyncRun)) == 2


def test_the_first_sync_fills_an_empty_sequences_page(logged_in, ws_id, portal, run_jobs):
    page = logged_in.get(f"/w/{ws_id}/sequences/").get_data(as_text=True)
    assert "No sequences yet" in page and "Click Sync Data" in page
    assert 'hx-trigger="sync-finished from:body"' in page
    run_jobs(["sync"])
    table = logged_in.get(f"/w/{ws_id}/sequences/", headers=HX).get_data(as_text=True)
    expected = {s["name"] for s in portal.sequences() if s["id"] in portal.visible_to_senders()}
    shown = names(table)
    assert set(shown) == expected and shown == sorted(shown, key=str.lower)


def test_sync_button_shows_the_reason_of_a_failed_sync_and_asks_to_reconnect(
    logged_in, ws_id, portal, run_jobs
):
    portal.faults(revoke=True)
    run_id = run_id_in(hx_post(logged_in, f"/w/{ws_id}/sequences/sync").get_data(as_text=True))
    run_jobs(["sync"])
    done = logged_in.get(f"/w/{ws_id}/sequences/sync/{run_id}", headers=HX)
    html = done.get_data(as_text=True)
    assert "Sync failed" in html and "reconnect" in html.lower()
    # Until HubSpot is reconnected there is nothing to sync with: no button, no "Synced ...".
    assert ">Sync Data<" not in html and "HX-Trigger" not in done.headers
    page = logged_in.get(f"/w/{ws_id}/sequences/").get_data(as_text=True)
    assert "Sync failed" in page  # in the top bar until a sync succeeds
    assert "Reconnect HubSpot" in page and "Synced" not in page


def test_odd_names_from_hubspot_are_escaped_on_the_page(logged_in, ws_id, portal, run_jobs):
    portal.add_sequence('<script>alert("x")</script> 🚀', portal.user_id("alice"))
    run_jobs(["sync"])
    html = logged_in.get(f"/w/{ws_id}/sequences/?q=script").get_data(as_text=True)
    assert "<script>alert" not in html
    assert names(html) == ["&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; 🚀"]


def test_the_sequences_page_lists_the_last_five_syncs(logged_in, workspace):
    for i in range(7):
        db.session.add(
            SyncRun(
                workspace_id=workspace.id,
                trigger="manual",
                status="succeeded",
                added=i,
                finished_at=utcnow(),
            )
        )
    db.session.commit()
    add_sequence(workspace.id, "One")
    html = logged_in.get(f"/w/{workspace.id}/sequences/").get_data(as_text=True)
    section = html[html.index("Recent syncs") :]
    assert section.count("badge-succeeded") == 5


def test_any_member_may_click_sync_data(member_client, ws_id, run_jobs):
    run_jobs(["sync"])  # the connect flow's first sync
    member = member_client()
    html = hx_post(member, f"/w/{ws_id}/sequences/sync").get_data(as_text=True)
    run = db.session.get(SyncRun, run_id_in(html))
    assert (run.trigger, run.status) == ("manual", "queued")


@pytest.fixture
def redis_down(app):
    """The app's Redis client pointed at a closed port, for the length of a test."""
    from redis import Redis

    saved = app.extensions["redis"]
    app.extensions["redis"] = Redis(port=1, socket_connect_timeout=0.2)
    yield
    app.extensions["redis"] = saved


def test_pages_still_open_and_sync_data_explains_when_redis_is_down(
    logged_in, workspace, redis_down
):
    db.session.add(
        SyncRun(workspace_id=workspace.id, trigger="manual", status="running", job_id="x")
    )
    db.session.add(HubSpotConnection(workspace_id=workspace.id, portal_id=424242))
    db.session.commit()
    page = logged_in.get(f"/w/{workspace.id}/sequences/")
    assert page.status_code == 200 and "Syncing users" in page.get_data(as_text=True)
    run_id = run_id_in(page.get_data(as_text=True))
    poll = logged_in.get(f"/w/{workspace.id}/sequences/sync/{run_id}", headers=HX)
    assert poll.status_code == 200 and "Syncing users" in poll.get_data(as_text=True)
    response = hx_post(logged_in, f"/w/{workspace.id}/sequences/sync")
    assert response.status_code == 200
    assert "could not start the sync" in response.get_data(as_text=True)


def test_a_history_restore_gets_the_whole_page(logged_in, workspace):
    add_sequence(workspace.id, "One")
    headers = dict(HX, **{"HX-History-Restore-Request": "true"})
    html = logged_in.get(f"/w/{workspace.id}/sequences/?q=one", headers=headers).get_data(
        as_text=True
    )
    assert "<html" in html and names(html) == ["One"]


def test_no_state_column_or_filter_when_hubspot_reports_no_state(logged_in, workspace):
    add_sequence(workspace.id, "Stateless", state="unknown", sharing="team")
    html = logged_in.get(f"/w/{workspace.id}/sequences/").get_data(as_text=True)
    assert 'id="seq-state"' not in html and ">State<" not in html and "Unknown" not in html
    assert "does not tell apps whether a sequence is active" in html
    add_sequence(workspace.id, "Has a state", state="paused", sharing="team")
    html = logged_in.get(f"/w/{workspace.id}/sequences/").get_data(as_text=True)
    assert 'id="seq-state"' in html and ">State<" in html and "Paused" in html


def test_every_column_sorts_both_ways_with_aria_sort_on_its_header(logged_in, workspace):
    add_sequence(workspace.id, "beta", sharing="team")
    add_sequence(workspace.id, "Alpha", sharing="private")
    add_sequence(workspace.id, "gamma", sharing="team")
    url = f"/w/{workspace.id}/sequences/"
    html = logged_in.get(url).get_data(as_text=True)
    assert names(html) == ["Alpha", "beta", "gamma"]
    assert re.search(
        r'<th scope="col" class="" aria-sort="ascending"><a href="[^"]*sort=name_desc', html
    )
    html = logged_in.get(url + "?sort=name_desc").get_data(as_text=True)
    assert names(html) == ["gamma", "beta", "Alpha"] and 'aria-sort="descending"' in html
    html = logged_in.get(url + "?sort=sharing").get_data(as_text=True)
    assert names(html) == ["Alpha", "beta", "gamma"]  # private first, then by name
    html = logged_in.get(url + "?sort=sharing_desc").get_data(as_text=True)
    assert names(html) == ["beta", "gamma", "Alpha"]
    assert html.count("aria-sort=") == 1 and "<a aria-sort" not in html


def test_a_header_link_carries_sort_once(logged_in, workspace):
    add_sequence(workspace.id, "One", sharing="team")
    html = logged_in.get(f"/w/{workspace.id}/sequences/?q=O").get_data(as_text=True)
    for href in re.findall(r'<th[^>]*><a href="([^"]+)"', html):
        assert href.count("sort=") <= 1 and 'hx-include="this"' in html, href


def test_page_size_is_chosen_and_kept_in_the_links(logged_in, workspace):
    for i in range(30):
        add_sequence(workspace.id, f"S{i:02d}", sharing="team")
    url = f"/w/{workspace.id}/sequences/"
    html = logged_in.get(url + "?per=25").get_data(as_text=True)
    assert len(names(html)) == 25 and "30 sequences · page 1 of 2" in html
    assert re.search(r'href="[^"]*per=25[^"]*page=2|href="[^"]*page=2[^"]*per=25', html)
    assert len(names(logged_in.get(url + "?per=7").get_data(as_text=True))) == 30  # 50, default
