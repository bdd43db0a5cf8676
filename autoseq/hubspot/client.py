"""HubSpotClient: the portal-scoped client every job and service uses.

    client = connections.for_workspace(workspace_id)   # services: NeedsReconnect when not connected
    for sequence in client.iter_sequences(user_id): ...
    client.enroll(user_id, contact_id, sequence_id, sender_email)

Every call takes a slot of the portal's shared rate budget (Redis), carries a fresh access token
(refreshed ahead of expiry, and once more on a 401, by one process at a time under a Redis lock
per portal), and goes through :class:`~autoseq.hubspot.http.Transport` (timeouts, retries, typed
errors).

The client is handed its tokens through a :class:`~.store.TokenStore` (the service layer's, over
the connection row): it needs no app, no database and no app context, so it may be used from any
thread.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta

import orjson
from redis import Redis
from redis.exceptions import LockError

from . import oauth
from .errors import HubSpotAuthError, HubSpotClientError, HubSpotError, NeedsReconnect
from .http import Transport
from .store import StoredTokens, TokenStore
from .versions import ASSOCIATIONS_API, CALLBACKS_API, CRM_OBJECTS_API, SEQUENCES_API

log = logging.getLogger(__name__)


def parse_json(body: bytes):
    """A JSON answer's body as Python values: orjson, at about half the CPU of the standard
    library on a page of 100 sequences (a sync reads thousands of pages); what orjson refuses
    (``NaN``, ``Infinity``) goes to the standard library. ``ValueError`` when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


LOCK_PREFIX = "autoseq:hubspot:refresh-lock:"
BATCH_COMPLETE_SIZE = 100
# Rate slots the sequence listings take per round trip to the limiter (RateLimiter.acquire(ahead=)):
# the pages after this one are likely to follow at once.
PAGING_AHEAD = 8


class HubSpotClient:
    """A client bound to one connected portal.

    ``store`` holds the portal's tokens; ``tokens`` is what the caller already read from it (else
    the first call loads them); ``config`` is the app's settings (read once, here); ``redis`` holds
    the shared rate budget and the refresh lock. Services build it with
    :func:`autoseq.services.connections.for_workspace` or ``for_connection``.
    """

    def __init__(
        self,
        store: TokenStore,
        *,
        portal_id: int,
        config: Mapping,
        redis: Redis,
        tokens: StoredTokens | None = None,
        workspace_id: int | None = None,
        shared_session: bool = False,
    ):
        self.store = store
        self.portal_id = portal_id
        self.workspace_id = workspace_id
        self.config = config
        self._tokens = tokens
        self.redis = redis
        # ``shared_session``: the process's pooled connections (:func:`.http.shared_session`), for
        # clients made one after another on one thread (a worker's drains).
        self.transport = Transport.from_config(config, redis, shared=shared_session)
        self.oauth_transport = Transport.from_config(
            config, rate_limited=False, shared=shared_session
        )
        # Seconds before expiry when the access token is renewed.
        self.refresh_margin = float(config["HUBSPOT_TOKEN_REFRESH_MARGIN"])

    def close(self) -> None:
        self.transport.close()
        self.oauth_transport.close()

    def __enter__(self) -> HubSpotClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------------------
    def request(self, method: str, path: str, *, params=None, json=None, ahead: int = 1):
        """One call with a fresh token; the JSON answer (None for an empty answer).

        ``ahead``: how many calls the caller expects to make soon (``Transport.request``).
        """
        token = self._token()
        try:
            response = self._send(method, path, token, params, json, ahead)
        except HubSpotAuthError:
            # One refresh on a 401, then one more try; a second 401 is raised as it is.
            token = self._token(failed_token=token)
            response = self._send(method, path, token, params, json, ahead)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return parse_json(response.content)
        except ValueError:
            raise HubSpotError(
                f"HubSpot answered {method} {path} with something that is not JSON",
                status=response.status_code,
            ) from None

    def _send(self, method, path, token, params, json, ahead=1):
        return self.transport.request(
            method,
            path,
            params=params,
            json=json,
            headers={"Authorization": f"Bearer {token}"},
            rate_key=self.portal_id,
            rate_ahead=ahead,
        )

    def get(self, path: str, params=None):
        """GET ``path`` (JSON answer)."""
        return self.request("GET", path, params=params)

    def post(self, path: str, json=None, params=None):
        """POST JSON to ``path`` (JSON answer, None for 204)."""
        return self.request("POST", path, params=params, json=json)

    def paginate(self, path: str, params=None, limit: int = 100) -> Iterator[dict]:
        """Every item of a paged list, following ``paging.next.after`` page by page."""
        for page in self.pages(path, params, limit):
            yield from page

    def pages(self, path: str, params=None, limit: int = 100, ahead: int = 1) -> Iterator[list]:
        """Each page's ``results`` of a paged list (what a caller that keeps every item takes:
        one step per page, not per item). ``ahead``: rate slots taken per round trip to the
        limiter (``RateLimiter.acquire``), for listings of many pages."""
        params = dict(params or {})
        params["limit"] = limit
        while True:
            body = self.request("GET", path, params=params, ahead=ahead) or {}
            yield body.get("results") or []
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return
            params["after"] = after

    # -- typed helpers ----------------------------------------------------------------------
    def iter_users(self) -> Iterator[dict]:
        """Active users of the portal (``/settings/v3/users``)."""
        return self.paginate("/settings/v3/users")

    def iter_owners(self, archived: bool = False) -> Iterator[dict]:
        """CRM owners (``/crm/v3/owners``); ``archived=True`` lists the archived ones."""
        params = {"archived": "true"} if archived else None
        return self.paginate("/crm/v3/owners", params)

    def iter_sequences(self, user_id) -> Iterator[dict]:
        """The sequences user ``user_id`` sees (``GET {SEQUENCES_API}?userId=``)."""
        return itertools.chain.from_iterable(self.sequence_pages(user_id))

    def sequence_pages(self, user_id) -> Iterator[list]:
        """:meth:`iter_sequences` page by page, rate slots taken ``PAGING_AHEAD`` at a time (a
        sync lists every user's sequences, dozens of pages each: what one listing leaves the
        next one uses)."""
        return self.pages(SEQUENCES_API, {"userId": str(user_id)}, ahead=PAGING_AHEAD)

    def iter_flows(self) -> Iterator[dict]:
        """The portal's workflows (``/automation/v4/flows``: ``id``, ``name``, ``isEnabled``,
        ``objectTypeId`` ...; scope ``automation``)."""
        return self.paginate("/automation/v4/flows")

    def get_sequence(self, sequence_id, user_id) -> dict:
        """One sequence with its steps."""
        return self.get(f"{SEQUENCES_API}/{sequence_id}", {"userId": str(user_id)})

    def enroll(
        self, user_id, contact_id, sequence_id, sender_email: str, sender_alias: str | None = None
    ) -> dict:
        """Enroll a contact; the enrollment JSON. HubSpot's refusals raise HubSpotClientError."""
        body = {
            "contactId": str(contact_id),
            "sequenceId": str(sequence_id),
            "senderEmail": sender_email,
        }
        if sender_alias:
            body["senderAliasAddress"] = sender_alias
        return self.post(f"{SEQUENCES_API}/enrollments", json=body, params={"userId": str(user_id)})

    def get_contact_enrollment(self, contact_id) -> dict | None:
        """The contact's current enrollment, or None when it is in no sequence (404)."""
        try:
            return self.get(f"{SEQUENCES_API}/enrollments/contact/{contact_id}")
        except HubSpotClientError as exc:
            if exc.status == 404:
                return None
            raise

    def iter_associated_contacts(self, object_type: str, object_id) -> Iterator[dict]:
        """The contacts associated with a deal, company or ticket (``object_type``: ``deals``,
        ``companies``, ``tickets``), in association order: ``{"toObjectId": "123",
        "associationTypes": [{"category", "typeId", "label"}]}`` (``MultiAssociatedObjectWith
        Label``); scope: the from-type's read scope (403 ``MISSING_SCOPES`` without it)."""
        return self.paginate(
            f"{CRM_OBJECTS_API}/{object_type}/{object_id}/associations/contacts", limit=500
        )

    def association_labels(self, object_type: str) -> list[dict]:
        """The association types from ``object_type`` to contacts: ``{"category", "typeId",
        "label"}`` (``label`` None for HubSpot's unlabeled type)."""
        body = self.get(f"{ASSOCIATIONS_API}/{object_type}/contacts/labels") or {}
        return list(body.get("results") or [])

    def complete_callback(self, callback_id: str, output_fields: dict) -> None:
        """Complete one blocked workflow action execution.

        The dated path's ``CallbackCompletionRequest`` requires ``outputFields`` (string values)
        and ``typedOutputs`` (an object; ours are all plain strings, so it is empty):
        ``hubspot-automation-actions-v4-openapi.json`` version 2026-09.
        """
        self.post(
            f"{CALLBACKS_API}/{callback_id}/complete",
            json={"outputFields": output_fields, "typedOutputs": {}},
        )

    def complete_callbacks(self, items: Iterable[tuple[str, dict]]) -> None:
        """Complete many executions, batched (100 per call); each input carries ``callbackId``,
        ``outputFields`` and ``typedOutputs`` (``CallbackCompletionBatchRequest``)."""
        inputs = [
            {"callbackId": cid, "outputFields": fields, "typedOutputs": {}} for cid, fields in items
        ]
        for start in range(0, len(inputs), BATCH_COMPLETE_SIZE):
            self.post(
                f"{CALLBACKS_API}/complete",
                json={"inputs": inputs[start : start + BATCH_COMPLETE_SIZE]},
            )

    # -- tokens ---------------------------------------------------------------------------
    def _margin(self, lifetime: int | None) -> float:
        """Seconds before expiry to refresh: the setting, but never more than half the token's
        life (a 5-second token with a 300-second margin would be refreshed before every call)."""
        if lifetime:
            return min(self.refresh_margin, lifetime / 2)
        return self.refresh_margin

    def _fresh(self, tokens: StoredTokens | None) -> bool:
        if tokens is None or not tokens.access_token or tokens.expires_at is None:
            return False
        margin = timedelta(seconds=self._margin(tokens.lifetime))
        return tokens.expires_at - margin > datetime.now(UTC)

    def _token(self, failed_token: str | None = None) -> str:
        """An access token good for the next call, refreshing it when needed."""
        if failed_token is None and self._fresh(self._tokens):
            return self._tokens.access_token
        # One refresh per portal at a time, across processes: the others wait, then find the
        # store already refreshed and use that token.
        # The lock outlives a refresh that retries through slow answers (5 tries x 23 s at worst).
        lock = self.redis.lock(f"{LOCK_PREFIX}{self.portal_id}", timeout=150, blocking_timeout=155)
        if not lock.acquire():
            raise HubSpotAuthError(f"could not take the token lock of portal {self.portal_id}")
        try:
            stored = self.store.load()  # as committed now; NeedsReconnect when not connected
            if stored.access_token != failed_token and self._fresh(stored):
                self._tokens = stored
                return stored.access_token
            try:
                new = oauth.refresh(self.oauth_transport, self.config, stored.refresh_token)
            except oauth.InvalidGrant as exc:
                log.warning(
                    "HubSpot portal %s needs a reconnect: refresh token refused", self.portal_id
                )
                self.store.mark_needs_reconnect(
                    stored, f"HubSpot refused the refresh token ({exc.message}). Reconnect HubSpot."
                )
                raise NeedsReconnect(
                    f"HubSpot refused the refresh token of portal {self.portal_id}",
                    status=exc.status,
                    error=exc.error,
                ) from None
            fresh = StoredTokens(
                access_token=new.access_token,
                refresh_token=new.refresh_token,
                expires_at=new.expires_at,
                lifetime=new.expires_in,
            )
            # Stored only if nobody disconnected or reconnected meanwhile; used for this call
            # either way (it is what HubSpot just issued).
            self.store.save_if_unchanged(stored, fresh)
            log.info("refreshed the HubSpot access token of portal %s", self.portal_id)
            self._tokens = fresh
            return fresh.access_token
        finally:
            # The lock may have expired during a very slow refresh: nothing left to release.
            with contextlib.suppress(LockError):
                lock.release()
