from __future__ import annotations

import json
import logging
import random
import re
import sys
import time

from flask import Flask, g

from shared.logging import _MOBILE, JsonFormatter, PlainFormatter, RequestContextFilter, redact


def test_redact_masks_mobiles_keys_and_pem():
    text = (
        "to 13800138000 and +8613912345678 key sk_live_abcDEF123-_x "
        "pem -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"
    )
    cleaned = redact(text)
    assert "13800138000" not in cleaned and "138****8000" in cleaned
    assert "13912345678" not in cleaned and "139****5678" in cleaned
    assert "sk_live_abcDEF123" not in cleaned
    assert "MIIE" not in cleaned


def test_redact_leaves_other_numbers_alone():
    assert redact("order 202605101234567 amount 2000") == "order 202605101234567 amount 2000"


def test_redact_masks_exactly_what_the_full_pattern_masks():
    """redact looks for 11 digits first; it must mask every mobile the full pattern finds, no more."""
    pieces = ["1", "3", "8", "6", "+", "0", "9", "5", " ", "a", "-", "13800138000", "8613912345678", "+86"]
    generator = random.Random(7)
    for _ in range(3000):
        text = "".join(generator.choice(pieces) for _ in range(generator.randint(1, 30)))
        assert redact(text) == _MOBILE.sub(r"\1****\3", text), text


def test_log_time_is_utc_iso_with_milliseconds():
    formatter = JsonFormatter("sms")
    record = logging.makeLogRecord({"msg": "x", "created": 1764140400.0456})  # 2025-11-26T07:00:00.045Z
    assert json.loads(formatter.format(record))["time"] == "2025-11-26T07:00:00.045Z"
    record = logging.makeLogRecord({"msg": "x", "created": time.time()})
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", json.loads(formatter.format(record))["time"]
    )


def test_json_line_carries_request_and_tenant():
    app = Flask("log-test")
    record_holder = []

    class Capture(logging.Handler):
        def emit(self, record):
            record_holder.append(self.format(record))

    handler = Capture()
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter("sms"))
    logger = logging.getLogger("test.logging.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with app.test_request_context("/"):
            g.request_id = "req-1"
            logger.warning("sent to %s", "13800138000", extra={"message_id": "MSG_1"})
    finally:
        logger.removeHandler(handler)
    entry = json.loads(record_holder[0])
    assert entry["request_id"] == "req-1"
    assert entry["service"] == "sms" and entry["level"] == "WARNING"
    assert entry["message"] == "sent to 138****8000"
    assert entry["message_id"] == "MSG_1"


def test_nested_extras_and_exceptions_are_redacted_in_json_and_plain_lines():
    """Celery logs a task's failure with a dict of its arguments and exception; none of it may leak."""
    try:
        raise RuntimeError("[parameters: {'mobile': '13930001234'}]")
    except RuntimeError as error:
        failure = sys.exc_info()
        context = {"args": "('13930001235',)", "exc": repr(error), "key": "sk_live_abcdefghijkl"}
    record = logging.makeLogRecord(
        {
            "name": "celery.app.trace",
            "levelno": logging.ERROR,
            "levelname": "ERROR",
            "msg": "Task failed: %s",
            "args": ("13930001236",),
            "data": context,
            "exc_info": failure,
        }
    )
    json_line = JsonFormatter("sms").format(record)
    plain_line = PlainFormatter("%(message)s %(data)s").format(record)
    for line in (json_line, plain_line):
        assert not re.search(r"1393000123\d", line), line
        assert "sk_live_abcdefghijkl" not in line
        assert "139****1234" in line
    entry = json.loads(json_line)
    assert entry["data"]["args"] == "('139****1235',)"
    assert "139****1234" in entry["exception"]
