"""JSON log lines with the request id and tenant, and with secrets and mobiles redacted.

Redaction is a last line of defence: code should not log secrets in the first place, but a stray
``%r`` of a payload must still not put an API key or a full mobile number into the logs.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flask import g, has_request_context, request

_MOBILE = re.compile(r"(?<!\d)(?:\+?86)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_MOBILE_DIGITS = re.compile(r"1[3-9]\d{9}")  # in every match of _MOBILE; found far faster
_API_KEY = re.compile(r"(sk_(?:live|test)_)[A-Za-z0-9_\-]{4,}")
_PEM = re.compile(r"-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----", re.S)

_STANDARD_ATTRIBUTES = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def redact(text: str) -> str:
    # What every match must contain is looked for first: most lines hold no key, PEM block or mobile, and
    # the full patterns scan a line many times slower (every line of every request passes here).
    if "-----BEGIN " in text:
        text = _PEM.sub("[PEM redacted]", text)
    if "sk_live_" in text or "sk_test_" in text:
        text = _API_KEY.sub(r"\1***", text)
    if _MOBILE_DIGITS.search(text) is None:
        return text
    return _MOBILE.sub(r"\1****\3", text)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self._encoder = json.JSONEncoder(ensure_ascii=False, default=str)
        self._second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self._time(record.created),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # The whole line is redacted, so nested extras (Celery's task failures log a dict of the task's
        # arguments and exception) are covered as well as the message.
        return redact(self._encoder.encode(entry))

    def _time(self, created: float) -> str:
        """ISO 8601 UTC with milliseconds and ``Z``; the part up to the second is formatted once a second."""
        second = int(created)
        if second != self._second[0]:
            self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return f"{self._second[1]}.{int((created - second) * 1000):03d}Z"


class PlainFormatter(logging.Formatter):
    """Human-readable lines, redacted as the JSON ones are."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


_CONTEXT: ContextVar[tuple[tuple[str, object], ...]] = ContextVar("log_context", default=())


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add ``fields`` to every line logged inside the block (a Celery task binds its task and ids)."""
    token = _CONTEXT.set((*_CONTEXT.get(), *fields.items()))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class RequestContextFilter(logging.Filter):
    """Adds ``request_id``, ``tenant_id`` and the ids in the URL (``message_id``, ``transaction_id`` …) of
    the current request, and whatever :func:`log_context` bound."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _CONTEXT.get():
            if not hasattr(record, name):
                setattr(record, name, value)
        if has_request_context():
            record.request_id = g.get("request_id")
            principal = g.get("principal")
            if principal is not None:
                record.tenant_id = principal.tenant_id
            for name, value in (request.view_args or {}).items():
                if name.endswith("_id") and not hasattr(record, name):
                    setattr(record, name, value)
        return True


def configure_logging(service: str, level: str = "INFO", json_lines: bool = True) -> None:
    """Idempotent: one stderr handler on the root logger, JSON by default.

    The stdlib logging module's globals (``logThreads``, ``logProcesses``, the caller's frame lookup) are
    left as they are: other code in the process (gunicorn's own format uses ``%(process)d``) relies on them.
    """
    root = logging.getLogger()
    name = f"laundry:{service}"
    if any(handler.get_name() == name for handler in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(name)
    handler.addFilter(RequestContextFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(PlainFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
