"""Abuse of both APIs in-process: bad keys, and callback/notify URLs aimed inside (bodies and tenants in
test_abuse_bodies.py and test_abuse_tenants.py). The logs of every test here are checked for keys, secrets
and full mobile numbers."""

from __future__ import annotations

import random
import secrets
import socket
import string
import threading

import pytest
import sqlalchemy as sa
from werkzeug.wrappers import Response

from shared.webhooks import is_public
from tests.factories import create_payment_tenant, create_sms_tenant
from tests.fakes.server import serve_in_thread
from tests.payment.conftest import headers_of
from tests.payment.orders.helpers import order_body, placed
from tests.reliability.abuse_helpers import (
    MOBILES,
    PRIVATE_URLS,
    assert_envelope,
    table_counts,
)

pytestmark = pytest.mark.reliability

# --- 10,000 bad keys ------------------------------------------------------------------------------------


def keyed_routes(app) -> list[tuple[str, str]]:
    """Every documented operation that takes an API key, with its path parameters filled in."""
    spec = app.test_client().get("/openapi.json").get_json()
    routes = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method in ("get", "post", "put", "delete") and operation.get("security") != []:
                routes.append((method.upper(), path.replace("{", "X_").replace("}", "")))
    return routes


def bad_keys(rng: random.Random, valid: str):
    printable = string.ascii_letters + string.digits + string.punctuation + " "
    makers = [
        lambda: None,
        lambda: "",
        lambda: "sk_live_" + secrets.token_urlsafe(32),
        lambda: "sk_live_" + secrets.token_urlsafe(rng.randint(0, 64)),
        lambda: "".join(rng.choice(printable) for _ in range(rng.randint(1, 120))),
        lambda: valid[:-1] + ("A" if valid[-1] != "A" else "B"),  # one character off a real key
        lambda: valid.upper(),
        lambda: "Bearer " + valid,
        lambda: valid + "x",
        lambda: "".join(rng.choice("éü©±\xa0") for _ in range(8)),
    ]
    while True:
        yield rng.choice(makers)()


@pytest.mark.parametrize("service", ["sms", "payment"])
def test_ten_thousand_random_bad_keys_are_all_401_and_write_nothing(
    service, request, leak_watch, sms_app, payment_app
):
    if service == "sms":
        session, app = request.getfixturevalue("sms_db"), sms_app
        from sms_service.models import Base

        _, valid_key = create_sms_tenant(session)
    else:
        session, app = request.getfixturevalue("payment_db"), payment_app
        from payment_service.models import Base

        _, valid_key = create_payment_tenant(session)
    leak_watch.append(valid_key)
    client = app.test_client()
    routes = keyed_routes(app)
    before = table_counts(session, Base.metadata)
    rng = random.Random(f"bad-keys-{service}")
    keys = bad_keys(rng, valid_key)
    statuses: dict[int, int] = {}
    for _ in range(5000):
        method, path = rng.choice(routes)
        key = next(keys)
        headers = {} if key is None else {"X-Api-Key": key}
        body = rng.choice([None, {}, {"template_id": "x", "mobiles": MOBILES[:1]}, {"name": "x" * 50}])
        response = client.open(path, method=method, json=body, headers=headers)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code != 401:
            pytest.fail(
                f"{method} {path} with key {key!r}: {response.status_code} {response.get_data()[:200]}"
            )
        assert response.get_json()["code"] == 401
    assert statuses == {401: 5000}
    assert table_counts(session, Base.metadata) == before


# --- URLs aimed inside ------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_sms_callback_url_aimed_inside_is_refused(url, sms_client, sms_pair, private_dns):
    _, key, template_id = sms_pair["a"]
    response = sms_client.post(
        "/api/v1/sms/send",
        json={"template_id": template_id, "mobiles": [MOBILES[0]], "variables": {"code": "1", "minutes": "5"},
              "callback_url": url},
        headers={"X-Api-Key": key},
    )  # fmt: skip
    body = assert_envelope(response, 400)
    assert "callback_url" in body["data"]["errors"]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_payment_notify_url_aimed_inside_is_refused(url, payment_client, admin, leak_watch, private_dns):
    leak_watch.append(admin)
    response = payment_client.post(
        "/api/v1/payment/order", json=order_body(notify_url=url), headers=headers_of(admin)
    )
    body = assert_envelope(response, 400)
    assert "notify_url" in body["data"]["errors"]


def test_the_machines_own_name_is_refused_when_it_resolves_to_a_private_address(sms_client, sms_pair):
    """Real DNS (the system resolver, /etc/hosts): names of this machine and of loopback."""
    names = [socket.gethostname(), "ip6-localhost", "ip6-loopback", "localhost.localdomain"]
    private = []
    for name in names:
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)}
        except OSError:
            continue
        import ipaddress

        if addresses and not all(is_public(ipaddress.ip_address(a.split("%")[0])) for a in addresses):
            private.append(name)
    assert private, f"none of {names} resolves here; the resolver test needs one"
    _, key, template_id = sms_pair["a"]
    for name in private:
        response = sms_client.post(
            "/api/v1/sms/send",
            json={"template_id": template_id, "mobiles": [MOBILES[1]],
                  "variables": {"code": "1", "minutes": "5"}, "callback_url": f"http://{name}/cb"},
            headers={"X-Api-Key": key},
        )  # fmt: skip
        assert assert_envelope(response, 400)["data"]["errors"]["callback_url"], name


class RedirectingReceiver:
    """Answers every POST with a redirect to ``target``; an 'internal' service counts what reaches it."""

    def __init__(self, status: int = 302) -> None:
        self.status, self.target, self.hits = status, "", 0
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            self.hits += 1
        response = Response("", status=self.status, headers={"Location": self.target})
        return response(environ, start_response)


@pytest.fixture
def redirect_chain():
    """A receiver that redirects (as a public host can) to an internal service; yields both."""
    outer, inner = RedirectingReceiver(), RedirectingReceiver(status=200)
    outer_url, stop_outer = serve_in_thread(outer)
    inner_url, stop_inner = serve_in_thread(inner)
    outer.target = inner_url + "latest/meta-data/"
    yield outer_url + "callback", outer, inner
    stop_outer()
    stop_inner()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_sms_callback_redirect_to_an_internal_address_is_not_followed(
    status, sms_app, sms_db, sms_client, sms_pair, redirect_chain, monkeypatch
):
    from sms_service.delivery import callbacks
    from sms_service.delivery.transitions import finish
    from sms_service.models import CallbackAttempt, Message

    url, outer, inner = redirect_chain
    outer.status = status
    monkeypatch.setitem(sms_app.config, "CALLBACK_ALLOW_PRIVATE", True)  # the first hop is on loopback
    _, key, template_id = sms_pair["a"]
    response = sms_client.post(
        "/api/v1/sms/send",
        json={"template_id": template_id, "mobiles": [MOBILES[2]], "variables": {"code": "1", "minutes": "5"},
              "callback_url": url},
        headers={"X-Api-Key": key},
    )  # fmt: skip
    message_id = assert_envelope(response, 200)["data"]["message_id"]
    sms_db.execute(sa.update(Message).where(Message.id == message_id).values(status="sending"))
    finish(sms_db, [message_id], "success")
    sms_db.commit()

    result = callbacks.deliver_callback(sms_db, message_id, 1)
    assert result is not None and result.outcome == callbacks.REJECTED
    assert (outer.hits, inner.hits) == (1, 0)
    [attempt] = sms_db.scalars(sa.select(CallbackAttempt).where(CallbackAttempt.message_id == message_id))
    assert attempt.status_code == status and attempt.outcome == callbacks.REJECTED


def test_payment_forward_redirect_to_an_internal_address_is_not_followed(
    payment_app,
    payment_db,
    payment_client,
    admin,
    fakes,
    sites,
    published,
    redirect_chain,
    monkeypatch,
):
    from payment_service.models import OrderForward
    from payment_service.orders.forwarding import deliver_forward

    url, outer, inner = redirect_chain
    monkeypatch.setitem(payment_app.config, "NOTIFY_ALLOW_PRIVATE", True)
    monkeypatch.setitem(payment_app.config, "FORWARD_MAX_ATTEMPTS", 1)
    wechat, _ = fakes
    transaction_id = placed(payment_client, admin, amount=20, notify_url=url)["transaction_id"]
    assert wechat.pay(transaction_id).status == 204
    forward = payment_db.scalars(sa.select(OrderForward).where(OrderForward.order_id == transaction_id)).one()
    forward.next_attempt_at = forward.next_attempt_at.replace(year=2000)
    payment_db.commit()

    assert deliver_forward(payment_db, transaction_id) is None
    assert (outer.hits, inner.hits) == (1, 0)
    forward = payment_db.scalars(sa.select(OrderForward).where(OrderForward.order_id == transaction_id)).one()
    assert (forward.status, forward.last_http_status) == ("failed", 302)
