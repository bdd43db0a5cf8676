"""A tiny app-side receiver for the workflow runner tests: a werkzeug server on a thread."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class Receiver:
    """Records every request; answers ``handler(request, n) -> (status, body, headers)``."""

    def __init__(self, handler: Callable):
        self.handler = handler
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def _wsgi(self, environ, start_response):
        req = Request(environ)
        body = req.get_data(as_text=True)
        record = {
            "method": req.method,
            "url": req.url,
            "path": req.path,
            "headers": dict(req.headers),
            "body": body,
            "json": json.loads(body) if body else None,
        }
        with self.lock:
            self.requests.append(record)
            n = len(self.requests)
        status, payload, headers = self.handler(record, n)
        resp = Response(
            json.dumps(payload),
            status=status,
            headers=headers or {},
            content_type="application/json",
        )
        return resp(environ, start_response)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
