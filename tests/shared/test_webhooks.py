"""shared.webhooks: Standard Webhooks signing checked by the reference library, the schedule, the sender's
outcomes (DNS failures included), secret rotation and the whsec_ form of a plain secret."""

from __future__ import annotations

import base64
import json
import random
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from werkzeug.wrappers import Request, Response

from shared.db import utcnow
from shared.settings import ConfigurationError
from shared.webhooks import (
    DEFAULT_RETRY_DELAYS,
    DELIVERED,
    GAVE_UP,
    REJECTED,
    RETRY,
    SigningSecrets,
    WebhookSender,
    event_webhook_id,
    generate_secret,
    next_retry_delay,
    parse_retry_delays,
    secret_from_plain,
    sign,
    webhook_headers,
)
from shared.webhooks.secret_migration import to_plain, to_whsec
from tests.fakes.dns import FakeDns
from tests.fakes.server import serve_in_thread

BODY = '{"event":"sms.result","data":{"message_id":"MSG_1","error_message":"用户关机"}}'.encode()
PAYLOAD = {"event": "sms.result", "data": {"message_id": "MSG_1"}}
ROOT = Path(__file__).resolve().parents[2]


def verifies(secret, body: bytes, headers: dict) -> bool:
    """What a tenant's receiver does, with the reference library."""
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


# --- signing -----------------------------------------------------------------------------------------------


def test_a_new_secret_is_whsec_and_base64_of_32_random_bytes():
    secret = generate_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:], validate=True)) == 32
    assert generate_secret() != secret


def test_headers_verify_with_the_reference_library_and_match_its_signature():
    secret = generate_secret()
    headers = webhook_headers("sms_result_MSG_1", BODY, [secret])
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-timestamp"].isdigit()
    assert verifies(secret, BODY, headers)
    timestamp = int(headers["webhook-timestamp"])
    reference = Webhook(secret).sign(
        "sms_result_MSG_1", datetime.fromtimestamp(timestamp, tz=UTC), BODY.decode()
    )
    assert headers["webhook-signature"] == reference == sign(secret, "sms_result_MSG_1", timestamp, BODY)


def test_a_tampered_body_another_id_an_old_timestamp_or_another_secret_fail():
    secret = generate_secret()
    headers = webhook_headers("sms_result_MSG_1", BODY, [secret])
    assert not verifies(secret, BODY + b" ", headers)
    assert not verifies(secret, BODY, {**headers, "webhook-id": "sms_result_MSG_2"})
    assert not verifies(generate_secret(), BODY, headers)
    stale = webhook_headers("sms_result_MSG_1", BODY, [secret], now=utcnow().timestamp() - 301)
    assert not verifies(secret, BODY, stale)


def test_two_secrets_give_two_signatures_each_verifying_alone():
    old, new = generate_secret(), generate_secret()
    headers = webhook_headers("payment_result_TXN_1", BODY, [new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verifies(old, BODY, headers) and verifies(new, BODY, headers)
    assert not verifies(generate_secret(), BODY, headers)


def test_the_webhook_id_is_derived_from_the_event_and_holds_no_full_stop():
    assert event_webhook_id("sms.result", "MSG_20260101_abc") == "sms_result_MSG_20260101_abc"
    assert event_webhook_id("payment.result", "TXN_1") == event_webhook_id("payment.result", "TXN_1")
    with pytest.raises(ValueError):
        event_webhook_id("sms.result", "MSG.1")


def test_signing_refuses_a_secret_that_is_not_whsec():
    with pytest.raises(ValueError):
        webhook_headers("id_1", BODY, ["plain-old-secret"])
    with pytest.raises(ValueError):
        webhook_headers("id_1", BODY, [])


# --- the whsec_ form of a plain secret (the migration's conversion) ----------------------------------------


@pytest.mark.parametrize("plain", ["Xk3_9-token-urlsafe-43-characters-long-abcd", "whsec-test-secret-长"])
def test_a_plain_secret_converted_keeps_its_key(plain):
    converted = secret_from_plain(plain)
    assert converted == "whsec_" + base64.b64encode(plain.encode("utf-8")).decode()
    headers = webhook_headers("sms_result_MSG_1", BODY, [converted])
    # A receiver keeping the old secret's bytes as the raw key and one taking the whsec_ form both verify.
    assert verifies(plain.encode("utf-8"), BODY, headers) and verifies(converted, BODY, headers)
    assert to_whsec(plain) == converted and to_whsec(converted) == converted
    assert to_plain(converted) == plain


# --- the schedule ------------------------------------------------------------------------------------------


def test_the_schedule_retries_within_a_minute_then_backs_off_over_hours_and_gives_up():
    delays = parse_retry_delays(DEFAULT_RETRY_DELAYS, "X")
    assert delays == (5, 60, 300, 1800, 7200, 18000, 36000, 36000)
    rng = random.Random(7)
    waits = [next_retry_delay(delays, attempt, rng=rng) for attempt in range(1, len(delays) + 1)]
    assert waits[0] <= 60
    assert all(later > earlier for earlier, later in zip(waits[:5], waits[1:6], strict=True))
    assert waits[-1] >= 9 * 3600
    assert sum(delays) / 3600 > 24  # nine attempts over more than a day
    assert next_retry_delay(delays, len(delays) + 1) is None


def test_each_delay_is_jittered_by_ten_percent():
    waits = [next_retry_delay((100.0,), 1) for _ in range(200)]
    assert all(90 <= wait <= 110 for wait in waits) and len(set(waits)) > 100


def test_a_receivers_retry_after_is_honoured_up_to_the_longest_step():
    assert next_retry_delay((5.0, 3600.0), 1, retry_after=600) == 600
    assert next_retry_delay((5.0, 3600.0), 1, retry_after=99_999) == 3600
    assert next_retry_delay((5.0, 3600.0), 1, retry_after=1) <= 5.5


@pytest.mark.parametrize("raw", ["5,a", "5,-1", "inf"])
def test_bad_delays_name_the_variable(raw):
    with pytest.raises(ConfigurationError, match="SMS_CALLBACK_RETRY_DELAYS"):
        parse_retry_delays(raw, "SMS_CALLBACK_RETRY_DELAYS")


# --- the sender --------------------------------------------------------------------------------------------


class Receiver:
    """Records each POST and answers the statuses it is told to (then 200)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.headers: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.requests.append((dict(request.headers), request.get_data()))
            status = self.statuses.pop(0) if self.statuses else 200
        return Response("{}", status=status, headers=self.headers)(environ, start_response)


@pytest.fixture
def receiver():
    app = Receiver()
    url, stop = serve_in_thread(app)
    app.url, app.port = url + "hook", int(url.rsplit(":", 1)[1].strip("/"))
    yield app
    stop()


def loopback_sender(**overrides) -> WebhookSender:
    settings = {"user_agent": "test-sender/1.0", "retry_delays": (5.0, 60.0), "allow_private": True}
    return WebhookSender(**{**settings, **overrides})


def test_a_2xx_is_delivered_signed_with_every_active_secret(receiver):
    old, new = generate_secret(), generate_secret()
    attempt = loopback_sender().send(receiver.url, "sms_result_MSG_1", PAYLOAD, [new, old], 1)
    assert (attempt.outcome, attempt.status_code, attempt.error, attempt.next_delay) == (
        DELIVERED,
        200,
        None,
        None,
    )
    [(headers, body)] = receiver.requests
    assert json.loads(body) == PAYLOAD and headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "test-sender/1.0" and headers["Webhook-Id"] == "sms_result_MSG_1"
    assert verifies(old, body, headers) and verifies(new, body, headers)
    assert attempt.columns() == {
        "attempt": 1,
        "attempted_at": attempt.attempted_at,
        "status_code": 200,
        "error": None,
        "duration_ms": attempt.duration_ms,
        "outcome": DELIVERED,
    }


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_5xx_and_429_are_retried(receiver, status):
    receiver.statuses = [status]
    attempt = loopback_sender().send(receiver.url, "id_1", PAYLOAD, [generate_secret()], 1)
    assert (attempt.outcome, attempt.status_code, attempt.error) == (RETRY, status, f"HTTP {status}")
    assert 4.5 <= attempt.next_delay <= 5.5


@pytest.mark.parametrize("status", [301, 302, 400, 401, 404, 410])
def test_other_answers_are_not_retried(receiver, status):
    receiver.statuses = [status]
    receiver.headers = {"Location": "http://169.254.169.254/"} if status < 400 else {}
    attempt = loopback_sender().send(receiver.url, "id_1", PAYLOAD, [generate_secret()], 1)
    assert (attempt.outcome, attempt.status_code, attempt.next_delay) == (REJECTED, status, None)
    assert len(receiver.requests) == 1  # no redirect followed


def test_the_last_scheduled_retry_gives_up(receiver):
    receiver.statuses = [503, 503, 503]
    sender, secret = loopback_sender(), generate_secret()
    outcomes = [sender.send(receiver.url, "id_1", PAYLOAD, [secret], n).outcome for n in (1, 2, 3)]
    assert outcomes == [RETRY, RETRY, GAVE_UP]


def test_the_webhook_id_is_the_same_on_every_retry_and_the_timestamp_is_the_attempts(receiver):
    receiver.statuses = [500, 500]
    secret, webhook_id = generate_secret(), event_webhook_id("sms.result", "MSG_20260101_x")
    for number in (1, 2, 3):
        loopback_sender().send(receiver.url, webhook_id, PAYLOAD, [secret], number)
    assert {headers["Webhook-Id"] for headers, _ in receiver.requests} == {webhook_id}
    assert all(verifies(secret, body, headers) for headers, body in receiver.requests)


def test_a_connection_error_or_timeout_is_retried():
    attempt = loopback_sender(timeout=0.5).send(
        "http://127.0.0.1:9/closed", "id_1", PAYLOAD, [generate_secret()], 1
    )
    assert (
        attempt.outcome == RETRY
        and attempt.status_code is None
        and attempt.error.startswith("ConnectionError")
    )


def test_a_refused_address_is_not_retried_and_not_called(receiver):
    sender = loopback_sender(allow_private=False)
    attempt = sender.send(receiver.url, "id_1", PAYLOAD, [generate_secret()], 1)
    assert attempt.outcome == REJECTED and "内网" in attempt.error and receiver.requests == []
    ftp = sender.send("ftp://example.com/x", "id_1", PAYLOAD, [generate_secret()], 1)
    assert ftp.outcome == REJECTED


@pytest.fixture
def dns(monkeypatch):
    return FakeDns().install(monkeypatch)


@pytest.mark.parametrize("allow_private", [False, True])
def test_a_host_that_does_not_resolve_is_retried(dns, allow_private):
    sender = loopback_sender(allow_private=allow_private)
    attempt = sender.send(f"https://{FakeDns.NAME}/hook", "id_1", PAYLOAD, [generate_secret()], 1)
    assert attempt.outcome == RETRY and attempt.error.startswith("DNS: ") and attempt.next_delay <= 60


def test_dns_is_resolved_again_at_each_attempt_and_delivers_once_the_name_resolves(dns, receiver):
    url, secret, sender = f"http://{FakeDns.NAME}:{receiver.port}/hook", generate_secret(), loopback_sender()
    first = sender.send(url, "sms_result_MSG_1", PAYLOAD, [secret], 1)
    dns.address = "127.0.0.1"
    second = sender.send(url, "sms_result_MSG_1", PAYLOAD, [secret], 2)
    assert (first.outcome, second.outcome) == (RETRY, DELIVERED)
    [(headers, body)] = receiver.requests
    assert verifies(secret, body, headers) and headers["Host"].startswith(FakeDns.NAME)


def test_a_name_that_turned_private_is_refused_at_delivery(dns):
    dns.address = "10.1.2.3"
    attempt = loopback_sender(allow_private=False).send(
        f"https://{FakeDns.NAME}/hook", "id_1", PAYLOAD, [generate_secret()], 1
    )
    assert attempt.outcome == REJECTED and dns.lookups == 1


# --- rotation ----------------------------------------------------------------------------------------------


def test_rotation_signs_with_both_secrets_during_the_overlap_and_only_the_new_one_after():
    now = utcnow()
    before = SigningSecrets(generate_secret())
    after = before.rotated(timedelta(hours=24), now)
    assert after.current != before.current and after.previous == before.current
    assert after.previous_expires_at == now + timedelta(hours=24)

    during = webhook_headers("id_1", BODY, after.active(now + timedelta(hours=23)))
    assert verifies(before.current, BODY, during) and verifies(after.current, BODY, during)

    expired = webhook_headers("id_1", BODY, after.active(now + timedelta(hours=24, seconds=1)))
    assert verifies(after.current, BODY, expired) and not verifies(before.current, BODY, expired)


def test_rotation_without_overlap_drops_the_previous_secret_at_once():
    rotated = SigningSecrets(generate_secret()).rotated(timedelta(0))
    assert rotated.previous is None and rotated.active() == [rotated.current]


# --- the reference library is the receivers', never the services' -----------------------------------------


def test_the_services_do_not_import_the_reference_library():
    sources = [
        path
        for package in ("shared", "sms_service", "payment_service")
        for path in (ROOT / package).rglob("*.py")
    ]
    importing = re.compile(r"^\s*(from|import)\s+standardwebhooks\b", re.MULTILINE)
    assert sources and not [str(path) for path in sources if importing.search(path.read_text())]
