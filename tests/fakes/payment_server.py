"""Loopback helpers for the payment fakes: serve a WSGI app for the length of a `with`, and a notify endpoint
that records what the fakes post to it and answers with whatever the test decides."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.wrappers import Request, Response

from tests.fakes.server import serve_in_thread


@contextmanager
def running(app: Callable[..., Any]) -> Iterator[str]:
    """Serve `app` on a free loopback port; yield its base URL without the trailing slash."""
    base_url, stop = serve_in_thread(app)
    try:
        yield base_url.rstrip("/")
    finally:
        stop()


@dataclass(frozen=True)
class ReceivedNotification:
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, str]


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str | None = None


class NotifyReceiver:
    """A stand-in for our notify endpoint. `handler` sees each notification and returns the answer;
    by default it acknowledges the way WeChat accepts (204, no body)."""

    def __init__(self, handler: Callable[[ReceivedNotification], Answer] | None = None) -> None:
        self.handler = handler or (lambda notification: Answer(204))
        self.received: list[ReceivedNotification] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data(cache=True)
        notification = ReceivedNotification(
            path=request.path,
            headers=dict(request.headers.items()),
            body=body,
            form=dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            if request.mimetype == "application/x-www-form-urlencoded"
            else {},
        )
        with self._lock:
            self.received.append(notification)
        try:
            answer = self.handler(notification)
        except Exception as exc:  # recorded for the test to assert on; the fake just sees a 500
            with self._lock:
                self.errors.append(exc)
            answer = Answer(500, b"handler failed", "text/plain")
        response = Response(answer.body, answer.status, content_type=answer.content_type)
        return response(environ, start_response)
