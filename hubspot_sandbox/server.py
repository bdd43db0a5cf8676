"""Run the sandbox on a werkzeug threaded server in a background thread."""

from __future__ import annotations

import logging
import threading

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import create_app
from .runner import RunnerSettings
from .state import SandboxState


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not log every request."""

    def log_request(self, code="-", size="-"):
        pass

    def connection_dropped(self, error, environ=None):
        pass


class SandboxServer:
    """A running sandbox: ``SandboxServer(state).start()``, ``.url``, ``.stop()``.

    Also a context manager. ``port=0`` picks a free port. Without a ``state`` the sandbox
    is seeded with the demo portal (pass ``SandboxState()`` for an empty one).
    """

    def __init__(
        self,
        state: SandboxState | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        runner_settings: RunnerSettings | None = None,
        quiet: bool = True,
    ):
        if state is None:
            state = SandboxState()
            state.seed_demo()
        self.state = state
        self.host = host
        self.port = port
        self.app = create_app(self.state, runner_settings=runner_settings)
        self.quiet = quiet
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def runner(self):
        """The workflow runner of this sandbox."""
        return self.app.extensions["hubspot_sandbox"].runner

    @property
    def limiter(self):
        return self.app.extensions["hubspot_sandbox"].limiter

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> SandboxServer:
        """Bind and serve in a daemon thread; return self."""
        if self._server is not None:
            return self
        if self.quiet:
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = make_server(
            self.host,
            self.port,
            self.app,
            threaded=True,
            request_handler=_QuietHandler if self.quiet else None,
        )
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="hubspot-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (used by the CLI)."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving and stop the runner."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.runner.shutdown()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
