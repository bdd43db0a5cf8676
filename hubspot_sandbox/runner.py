"""The workflow runner: the part of HubSpot that calls the app's action and options URLs."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from .crm import OBJECT_TYPE_IDS
from .crm import object_type as crm_object_type
from .signing import signed_headers
from .state import Callback, SandboxState, iso, parse_duration

# The name property of each record type (what a workflow's object carries for its name).
RECORD_NAME_PROPERTY = {"companies": "name", "deals": "dealname", "tickets": "subject"}

MAX_BODY_RECORDED = 2000


@dataclass
class RunnerSettings:
    """Delivery knobs (all settable through ``PATCH /_sandbox/runner``)."""

    concurrency: int = 8
    connect_timeout: float = 3.0
    read_timeout: float = 30.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_attempts: int = 5
    max_retry_after: float = 60.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class RunnerError(Exception):
    """A fire/options request that cannot be carried out (unknown portal, definition...)."""


class WorkflowRunner:
    """Deliver action executions to the app, with HubSpot's retry behaviour."""

    def __init__(self, state: SandboxState, settings: RunnerSettings | None = None):
        self.state = state
        self.settings = settings or RunnerSettings()
        self._pool = ThreadPoolExecutor(max_workers=self.settings.concurrency)
        self._pool_lock = threading.Lock()
        self._stopping = threading.Event()
        self._local = threading.local()

    @property
    def _session(self) -> requests.Session:
        """One HTTP session per delivery thread."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def configure(self, **changes) -> RunnerSettings:
        """Change settings; a new concurrency replaces the thread pool."""
        with self._pool_lock:
            for key, value in changes.items():
                if not hasattr(self.settings, key):
                    raise ValueError(f"unknown runner setting {key}")
                setattr(self.settings, key, type(getattr(self.settings, key))(value))
            if "concurrency" in changes:
                old = self._pool
                self._pool = ThreadPoolExecutor(max_workers=max(1, self.settings.concurrency))
                old.shutdown(wait=False)
        return self.settings

    def shutdown(self) -> None:
        """Stop retrying and release the threads."""
        self._stopping.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- firing ---------------------------------------------------------------
    def fire(
        self,
        portal_id: int,
        definition_id: str,
        contact_ids: list,
        workflow_id: int,
        input_fields: dict,
        object_type: str = "CONTACT",
    ) -> list[str]:
        """Start one execution per enrolled object (contacts, or the deals, companies or tickets
        of a workflow on those objects); return their callback ids (delivery is async).

        Like HubSpot, an action runs only in workflows of the object types its definition lists
        (``objectTypes``), and a record workflow runs only for records that exist.
        """
        state = self.state
        with state.lock:
            portal = state.portals.get(int(portal_id))
            if portal is None:
                raise RunnerError(f"unknown portal {portal_id}")
            definition = state.definitions.get(str(definition_id))
            if definition is None:
                raise RunnerError(f"unknown action definition {definition_id}")
            version = int(definition.get("revisionId", "1"))
            props = (definition.get("objectRequestOptions") or {}).get("properties") or []
            kind = object_type.upper()
            plural = crm_object_type(kind)  # RunnerError-free: ApiError(400) on a bad name
            if kind not in (definition.get("objectTypes") or []):
                raise RunnerError(
                    f"the action is not offered in {kind} workflows (its objectTypes: "
                    f"{', '.join(definition.get('objectTypes') or []) or 'none'})"
                )
            # a workflow that runs exists in the portal, on its object type
            portal.add_flow(workflow_id, object_type_id=OBJECT_TYPE_IDS[plural])
            callbacks = []
            for cid in contact_ids:
                if kind == "CONTACT":
                    contact = portal.contacts.get(str(cid))
                    all_props = contact.properties() if contact else {}
                else:
                    record = portal.crm.records.get(plural, {}).get(str(cid))
                    if record is None:
                        raise RunnerError(f"no {plural} record {cid} in portal {portal.id}")
                    all_props = {RECORD_NAME_PROPERTY[plural]: record.name}
                cb = Callback(
                    id=state.new_callback_id(portal.id),
                    portal_id=portal.id,
                    definition_id=str(definition_id),
                    definition_version=version,
                    workflow_id=int(workflow_id),
                    contact_id=str(cid),
                    input_fields=dict(input_fields),
                    created_at=time.time(),
                    object_type=kind,
                )
                state.callbacks[cb.id] = cb
                payload = {
                    "callbackId": cb.id,
                    "origin": {
                        "portalId": portal.id,
                        "actionDefinitionId": int(definition_id),
                        "actionDefinitionVersion": version,
                    },
                    "context": {"source": "WORKFLOWS", "workflowId": int(workflow_id)},
                    "object": {
                        "objectId": int(cid) if str(cid).isdigit() else cid,
                        "objectType": kind,
                        "properties": {p: all_props.get(p) for p in props},
                    },
                    "inputFields": dict(input_fields),
                }
                callbacks.append((cb, definition["actionUrl"], payload))
        for cb, url, payload in callbacks:
            with self._pool_lock:
                self._pool.submit(self._deliver, cb, url, payload)
        return [cb.id for cb, _, _ in callbacks]

    def wait(self, callback_ids: list[str], timeout: float, for_completion: bool = False) -> bool:
        """Wait until deliveries settle (and, optionally, blocked ones complete)."""
        deadline = time.monotonic() + timeout
        for cid in callback_ids:
            cb = self.state.callbacks.get(cid)
            if cb is None:
                continue
            while True:
                remaining = deadline - time.monotonic()
                with self.state.lock:
                    cb.refresh()
                    settled = cb.status not in ("pending", "delivering", "retrying")
                    if for_completion and cb.status == "blocked":
                        settled = False
                if settled:
                    break
                if remaining <= 0:
                    return False
                cb.done.wait(min(remaining, 0.05))
        return True

    def _record(self, cb: Callback, **attempt) -> None:
        with self.state.lock:
            cb.attempts.append(attempt)

    def _deliver(self, cb: Callback, url: str, payload: dict) -> None:
        """Deliver one execution until it settles or attempts run out."""
        body = json.dumps(payload, separators=(",", ":"))
        url = _as_sent(url)
        s = self.settings
        for attempt in range(1, max(1, s.max_attempts) + 1):
            if self._stopping.is_set():
                return
            with self.state.lock:
                if cb.status == "pending" or cb.status == "retrying":
                    cb.status = "delivering"
            headers = signed_headers(self.state.app.client_secret, "POST", url, body)
            started = time.time()
            retry_wait = None
            try:
                resp = self._session.post(
                    url,
                    data=body.encode("utf-8"),
                    headers=headers,
                    timeout=(s.connect_timeout, s.read_timeout),
                )
            except requests.RequestException as exc:
                self._record(
                    cb,
                    attempt=attempt,
                    at=iso(started),
                    statusCode=None,
                    error=f"{type(exc).__name__}: {exc}"[:MAX_BODY_RECORDED],
                    elapsedMs=int((time.time() - started) * 1000),
                )
                retry_wait = s.backoff_base * (2 ** (attempt - 1))
            else:
                text = resp.text[:MAX_BODY_RECORDED]
                self._record(
                    cb,
                    attempt=attempt,
                    at=iso(started),
                    statusCode=resp.status_code,
                    body=text,
                    elapsedMs=int((time.time() - started) * 1000),
                )
                if 200 <= resp.status_code < 300:
                    self._settle_success(cb, resp)
                    return
                if resp.status_code == 429:
                    retry_wait = _retry_after(resp, s.backoff_base * (2 ** (attempt - 1)))
                    retry_wait = min(retry_wait, s.max_retry_after)
                elif resp.status_code < 500:
                    self._finish(cb, "failed")
                    return
                else:
                    retry_wait = s.backoff_base * (2 ** (attempt - 1))
            if attempt >= s.max_attempts:
                break
            with self.state.lock:
                if cb.status == "delivering":
                    cb.status = "retrying"
            if self._stopping.wait(min(retry_wait, s.backoff_max)):
                return
        self._finish(cb, "failed")

    def _finish(self, cb: Callback, status: str) -> None:
        with self.state.lock:
            if cb.completion is None:
                cb.status = status
        cb.done.set()

    def _settle_success(self, cb: Callback, resp: requests.Response) -> None:
        try:
            data = resp.json()
        except ValueError:
            data = None
        outputs = data.get("outputFields") if isinstance(data, dict) else None
        outputs = outputs if isinstance(outputs, dict) else {}
        state_value = outputs.get("hs_execution_state")
        with self.state.lock:
            cb.output_fields = outputs
            if cb.completion is not None:
                pass  # the app completed the callback before its answer arrived
            elif state_value == "BLOCK":
                cb.status = "blocked"
                cb.expires_at = time.time() + parse_duration(outputs.get("hs_expiration_duration"))
            elif state_value == "FAIL_CONTINUE":
                cb.status = "fail_continue"
            else:
                cb.status = "succeeded"
        cb.done.set()

    # -- dynamic options ----------------------------------------------------
    def fetch_options(
        self,
        portal_id: int,
        definition_id: str,
        field_name: str,
        input_fields: dict,
        q: str | None = None,
        after: str | None = None,
        object_type: str = "CONTACT",
    ) -> dict:
        """POST the options request to the field's ``optionsUrl``; return status and JSON.

        ``objectTypeId`` is that of the workflow the editor is in (a deal workflow: ``0-3``).
        """
        type_id = OBJECT_TYPE_IDS[crm_object_type(object_type)]
        with self.state.lock:
            definition = self.state.definitions.get(str(definition_id))
            if definition is None:
                raise RunnerError(f"unknown action definition {definition_id}")
            if int(portal_id) not in self.state.portals:
                raise RunnerError(f"unknown portal {portal_id}")
            url = None
            for fld in definition.get("inputFields", []):
                td = fld.get("typeDefinition", {})
                if td.get("name") == field_name:
                    url = td.get("optionsUrl")
            if not url:
                raise RunnerError(f"input field {field_name} has no optionsUrl")
            version = int(definition.get("revisionId", "1"))
        fetch = {}
        if q is not None:
            fetch["q"] = q
        if after is not None:
            fetch["after"] = after
        payload = {
            "origin": {
                "portalId": int(portal_id),
                "actionDefinitionId": int(definition_id),
                "actionDefinitionVersion": version,
            },
            "objectTypeId": type_id,
            "inputFieldName": field_name,
            "inputFields": {
                k: {"type": "STATIC_VALUE", "value": v} for k, v in (input_fields or {}).items()
            },
            "fetchOptions": fetch,
        }
        body = json.dumps(payload, separators=(",", ":"))
        url = _as_sent(url)
        headers = signed_headers(self.state.app.client_secret, "POST", url, body)
        s = self.settings
        try:
            resp = self._session.post(
                url,
                data=body.encode("utf-8"),
                headers=headers,
                timeout=(s.connect_timeout, s.read_timeout),
            )
        except requests.RequestException as exc:
            return {"statusCode": None, "error": f"{type(exc).__name__}: {exc}", "json": None}
        try:
            data = resp.json()
        except ValueError:
            data = None
        return {"statusCode": resp.status_code, "json": data, "body": resp.text[:MAX_BODY_RECORDED]}


def _retry_after(resp: requests.Response, default: float) -> float:
    raw = resp.headers.get("Retry-After")
    if raw is None:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        return default


def _as_sent(url: str) -> str:
    """The URL exactly as requests will send it (what HubSpot signs is what it calls)."""
    try:
        return requests.Request("POST", url).prepare().url or url
    except requests.RequestException:
        return url
