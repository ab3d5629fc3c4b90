"""A loopback HTTP server that records Alertmanager webhook notifications, for tests.

with WebhookReceiver() as webhook:
    ...  # point an Alertmanager receiver at webhook.url
    note = webhook.wait_for(lambda n: n["groupLabels"].get("model") == "churn", timeout=20)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Notification = dict[str, Any]


class WebhookReceiver:
    """Accepts JSON POSTs on ``http://127.0.0.1:<port>/alerts`` in a background thread."""

    def __init__(self, path: str = "/alerts") -> None:
        self.path = path
        self._notifications: list[Notification] = []
        self._changed = threading.Condition()
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    payload = json.loads(body)
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver._record(payload)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output clean."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _record(self, payload: Notification) -> None:
        with self._changed:
            self._notifications.append(payload)
            self._changed.notify_all()

    @property
    def notifications(self) -> list[Notification]:
        """Every notification received so far, oldest first (a copy)."""
        with self._changed:
            return list(self._notifications)

    def wait_for(self, match: Callable[[Notification], bool], *, timeout: float) -> Notification:
        """The first notification (already received or arriving within ``timeout`` s) that matches."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: next((n for n in self._notifications if match(n)), None), timeout=timeout
            )
            if found is None:
                received = json.dumps(self._notifications, indent=1)[:4000]
                raise AssertionError(f"no matching webhook notification within {timeout}s; got: {received}")
            return found
