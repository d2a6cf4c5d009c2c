"""What must never appear in a log line: API keys, tenant secrets, channel keys, full mobile numbers."""

from __future__ import annotations

import logging
import re

from shared.logging import JsonFormatter

_API_KEY = re.compile(r"sk_live_[A-Za-z0-9_\-]{20,}")


def record_texts(records: list[logging.LogRecord]) -> list[str]:
    """Each record as its raw message (traceback included) and as the service's JSON log line."""
    formatter = JsonFormatter("test")
    texts = []
    for record in records:
        raw = record.getMessage()
        if record.exc_info:
            raw += "\n" + logging.Formatter().formatException(record.exc_info)
        texts += [raw, formatter.format(record)]
    return texts


def leaks(texts: list[str], secrets: list[str]) -> list[str]:
    """The secrets (shown shortened) and API-key shapes found in ``texts``."""
    found = set()
    for text in texts:
        found.update(match.group(0)[:14] + "…" for match in _API_KEY.finditer(text))
        found.update(secret[:6] + "…" for secret in secrets if secret and secret in text)
    return sorted(found)


def assert_no_leaks(texts: list[str], secrets: list[str]) -> None:
    leaked = leaks(texts, secrets)
    assert not leaked, f"secret material or full mobile numbers in the logs: {leaked}"
