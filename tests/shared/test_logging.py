from __future__ import annotations

import json
import logging

from flask import Flask, g

from shared.logging import JsonFormatter, RequestContextFilter, redact


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
