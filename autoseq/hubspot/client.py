"""HubSpotClient: the portal-scoped client every job and service uses.

    client = HubSpotClient.for_workspace(workspace_id)   # NeedsReconnect when not connected
    for sequence in client.iter_sequences(user_id): ...
    client.enroll(user_id, contact_id, sequence_id, sender_email)

Every call takes a slot of the portal's shared rate budget (Redis), carries a fresh access token
(refreshed ahead of expiry, and once more on a 401, by one process at a time under a Redis lock
per portal), and goes through :class:`~autoseq.hubspot.http.Transport` (timeouts, retries, typed
errors).

Token writes happen on their own database connection and commit at once, so that a refresh made
in the middle of a job survives the job's rollback and never commits the caller's pending changes.
Needs an app context to be built; none after that (it may be used from other threads).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

from flask import current_app
from redis.exceptions import LockError

from ..extensions import db
from ..models import ConnectionStatus, HubSpotConnection
from . import oauth, tokens
from .errors import HubSpotAuthError, HubSpotClientError, HubSpotError, NeedsReconnect
from .http import Transport
from .versions import CALLBACKS_API, SEQUENCES_API

log = logging.getLogger(__name__)

DEFAULT_REFRESH_MARGIN = 300.0  # seconds before expiry when the access token is renewed
LOCK_PREFIX = "autoseq:hubspot:refresh-lock:"
BATCH_COMPLETE_SIZE = 100


class HubSpotClient:
    """A client bound to one connected portal. Build it with :meth:`for_connection`."""

    def __init__(self, connection: HubSpotConnection, *, app=None):
        self.app = app or current_app._get_current_object()
        self.connection_id = connection.id
        self.workspace_id = connection.workspace_id
        self.portal_id = connection.portal_id
        config = self.app.config
        # Captured now, so that after construction the client needs no app context (threads).
        self._keys = list(config["TOKEN_ENCRYPTION_KEYS"])
        self._engine = db.engine
        self._access = tokens.decrypt(connection.access_token_enc, self._keys)
        self._expires_at = connection.expires_at
        self._lifetime = connection.token_lifetime
        self.redis = self.app.extensions["redis"]
        self.transport = Transport.from_config(config, self.redis)
        self.oauth_transport = Transport.from_config(config, rate_limited=False)
        self.refresh_margin = float(
            config.get("HUBSPOT_TOKEN_REFRESH_MARGIN", DEFAULT_REFRESH_MARGIN)
        )

    # -- building -------------------------------------------------------------------------
    @classmethod
    def for_connection(cls, connection: HubSpotConnection | None) -> HubSpotClient:
        """A client for ``connection``; :class:`NeedsReconnect` when it is not connected."""
        if connection is None:
            raise NeedsReconnect("HubSpot is not connected")
        if connection.status != ConnectionStatus.CONNECTED or not connection.refresh_token_enc:
            raise NeedsReconnect(
                f"HubSpot portal {connection.portal_id} is {connection.status.replace('_', ' ')}"
            )
        return cls(connection)

    @classmethod
    def for_workspace(cls, workspace_id: int) -> HubSpotClient:
        """A client for the workspace's connection; :class:`NeedsReconnect` when there is none."""
        connection = db.session.scalar(
            db.select(HubSpotConnection).filter_by(workspace_id=workspace_id)
        )
        return cls.for_connection(connection)

    def close(self) -> None:
        self.transport.close()
        self.oauth_transport.close()

    def __enter__(self) -> HubSpotClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------------------
    def request(self, method: str, path: str, *, params=None, json=None):
        """One call with a fresh token; the JSON answer (None for an empty answer)."""
        token = self._token()
        try:
            response = self._send(method, path, token, params, json)
        except HubSpotAuthError:
            # One refresh on a 401, then one more try; a second 401 is raised as it is.
            token = self._token(failed_token=token)
            response = self._send(method, path, token, params, json)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise HubSpotError(
                f"HubSpot answered {method} {path} with something that is not JSON",
                status=response.status_code,
            ) from None

    def _send(self, method, path, token, params, json):
        return self.transport.request(
            method,
            path,
            params=params,
            json=json,
            headers={"Authorization": f"Bearer {token}"},
            rate_key=self.portal_id,
        )

    def get(self, path: str, params=None):
        """GET ``path`` (JSON answer)."""
        return self.request("GET", path, params=params)

    def post(self, path: str, json=None, params=None):
        """POST JSON to ``path`` (JSON answer, None for 204)."""
        return self.request("POST", path, params=params, json=json)

    def paginate(self, path: str, params=None, limit: int = 100) -> Iterator[dict]:
        """Every item of a paged list, following ``paging.next.after`` page by page."""
        params = dict(params or {})
        params["limit"] = limit
        while True:
            body = self.get(path, params) or {}
            yield from body.get("results") or []
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
        return self.paginate(SEQUENCES_API, {"userId": str(user_id)})

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

    def _fresh(self, access: str | None, expires_at: datetime | None, lifetime: int | None) -> bool:
        if not access or expires_at is None:
            return False
        return expires_at - timedelta(seconds=self._margin(lifetime)) > datetime.now(UTC)

    def _token(self, failed_token: str | None = None) -> str:
        """An access token good for the next call, refreshing it when needed."""
        if failed_token is None and self._fresh(self._access, self._expires_at, self._lifetime):
            return self._access
        # One refresh per portal at a time, across processes: the others wait, then find the
        # row already refreshed and use that token.
        # The lock outlives a refresh that retries through slow answers (5 tries x 23 s at worst).
        lock = self.redis.lock(f"{LOCK_PREFIX}{self.portal_id}", timeout=150, blocking_timeout=155)
        if not lock.acquire():
            raise HubSpotAuthError(f"could not take the token lock of portal {self.portal_id}")
        try:
            row = self._read_row()
            if row is None or row.status != ConnectionStatus.CONNECTED or not row.refresh_token_enc:
                status = row.status if row is not None else "gone"
                raise NeedsReconnect(f"HubSpot portal {self.portal_id} is {status}")
            access = tokens.decrypt(row.access_token_enc, self._keys)
            if access != failed_token and self._fresh(access, row.expires_at, row.token_lifetime):
                self._access, self._expires_at = access, row.expires_at
                self._lifetime = row.token_lifetime
                return access
            try:
                new = oauth.refresh(
                    self.oauth_transport,
                    self.app.config,
                    tokens.decrypt(row.refresh_token_enc, self._keys),
                )
            except oauth.InvalidGrant as exc:
                self._mark_needs_reconnect(
                    row.refresh_token_enc,
                    f"HubSpot refused the refresh token ({exc.message}). Reconnect HubSpot.",
                )
                raise NeedsReconnect(
                    f"HubSpot refused the refresh token of portal {self.portal_id}",
                    status=exc.status,
                    error=exc.error,
                ) from None
            self._write(
                row.refresh_token_enc,
                access_token_enc=tokens.encrypt(new.access_token, self._keys),
                refresh_token_enc=tokens.encrypt(new.refresh_token, self._keys),
                expires_at=new.expires_at,
                token_lifetime=new.expires_in,
            )
            log.info("refreshed the HubSpot access token of portal %s", self.portal_id)
            self._access, self._expires_at = new.access_token, new.expires_at
            self._lifetime = new.expires_in
            return new.access_token
        finally:
            # The lock may have expired during a very slow refresh: nothing left to release.
            with contextlib.suppress(LockError):
                lock.release()

    def _read_row(self):
        """The connection row as committed now (not the caller's session's possibly old copy)."""
        table = HubSpotConnection.__table__
        with self._engine.connect() as conn:
            return conn.execute(table.select().where(table.c.id == self.connection_id)).first()

    def _write(self, expected_refresh_enc: str, **values) -> bool:
        """Update the row only if it still holds the refresh token we used (else: it was
        disconnected or reconnected meanwhile, and what we learnt is stale)."""
        values["updated_at"] = datetime.now(UTC)
        table = HubSpotConnection.__table__
        with self._engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(
                    table.c.id == self.connection_id,
                    table.c.status == ConnectionStatus.CONNECTED.value,
                    table.c.refresh_token_enc == expected_refresh_enc,
                )
                .values(**values)
            )
        return bool(result.rowcount)

    def _mark_needs_reconnect(self, expected_refresh_enc: str, reason: str) -> None:
        log.warning("HubSpot portal %s needs a reconnect: refresh token refused", self.portal_id)
        self._write(
            expected_refresh_enc, status=ConnectionStatus.NEEDS_RECONNECT.value, last_error=reason
        )
