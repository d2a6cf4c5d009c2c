"""Abuse of both APIs in-process: bad keys, callback/notify URLs aimed inside, oversized and hostile bodies,
hostile strings, huge pages, and one tenant reaching for another's ids. The logs of every test here are
checked for keys, secrets and full mobile numbers."""

from __future__ import annotations

import json
import logging
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
from tests.payment.conftest import headers_of, secret_fragments
from tests.payment.orders.helpers import WECHAT_SITE, order_body, placed
from tests.reliability.logs import assert_no_leaks, record_texts
from tests.sms.conftest import create_template

pytestmark = pytest.mark.reliability

MOBILES = ["13800138000", "13912345678", "15000150000", "18612345678", "17712345678"]
PRIVATE_URLS = [
    "http://127.0.0.1/callback",
    "http://127.0.0.1:8001/api/v1/sms/me",
    "http://10.0.0.5/callback",
    "http://10.255.255.254:8080/x",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[::1]/callback",
    "http://[::ffff:127.0.0.1]/callback",
    "http://[fd00::1]/callback",
    "http://localhost/callback",
    "http://0.0.0.0/callback",
    "http://2130706433/callback",  # 127.0.0.1 as one decimal number
    "http://100.100.100.200/latest/meta-data/",  # Aliyun's metadata service
    "http://192.168.1.1/callback",
    "http://172.16.0.1/callback",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://intranet.laundry.example/callback",  # resolves to 10.1.2.3 (see private_dns)
    "ftp://example.com/callback",
    "file:///etc/passwd",
    "http://user:password@example.com/callback",
    "gopher://127.0.0.1:6379/_INFO",
]
HOSTILE_STRINGS = [
    "'; DROP TABLE templates; --",
    "' OR '1'='1",
    "1; SELECT pg_sleep(5)",
    "😀🧺👕" * 3,
    "\u202e反转文字\u202c",
    "e\u0301\u0308",
    "\u200b\u200d\ufeff",
    "𠮷野家",
    "ＡＢＣ１２３",
    "${code}",
    "<script>alert(1)</script>",
    '"\\\n\t',
    "null",
]


@pytest.fixture
def leak_watch(caplog):
    """Collects what must not be logged; checks every captured record at the end of the test."""
    caplog.set_level(logging.DEBUG)
    watched: list[str] = list(MOBILES) + secret_fragments()
    yield watched
    assert_no_leaks(record_texts(caplog.records), watched)


@pytest.fixture
def private_dns(monkeypatch):
    """A name whose DNS answer is a private address, as an attacker's own domain can be."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host.rstrip(".").endswith("laundry.example"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def sms_pair(sms_db, leak_watch):
    """Two SMS tenants, each with a template; tenant B also has a message and a batch."""
    (tenant_a, key_a), (tenant_b, key_b) = create_sms_tenant(sms_db), create_sms_tenant(sms_db)
    leak_watch += [key_a, key_b, tenant_a.callback_secret, tenant_b.callback_secret]
    return {
        "a": (tenant_a, key_a, create_template(sms_db, tenant_a.id).id),
        "b": (tenant_b, key_b, create_template(sms_db, tenant_b.id).id),
    }


def table_counts(session, metadata) -> dict[str, int]:
    return {
        table.name: session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        for table in metadata.sorted_tables
    }


def assert_envelope(response, status: int) -> dict:
    body = response.get_json()
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert set(body) == {"code", "data", "message"} and body["code"] == (0 if status == 200 else status), body
    return body


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


# --- hostile bodies and strings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/sms/send", "/api/v1/sms/templates", "/api/v1/payment/order", "/api/v1/payment/configs"]
)
def test_bodies_over_one_megabyte_answer_413(path, sms_client, payment_client, sms_pair, admin):
    client, key = (sms_client, sms_pair["a"][1]) if "/sms/" in path else (payment_client, admin)
    body = json.dumps({"name": "x" * (1024 * 1024 + 1)}).encode()
    response = client.post(path, data=body, headers={"X-Api-Key": key}, content_type="application/json")
    assert_envelope(response, 413)


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("opener,closer", [("[", "]"), ('{"a":', "}")])
def test_deeply_nested_json_is_400(
    depth, opener, closer, sms_app, sms_client, payment_client, sms_pair, admin, monkeypatch
):
    monkeypatch.setitem(sms_app.config, "RECEIPT_TOKEN", "receipt-token")
    body = opener * depth + "1" + closer * depth
    for client, path, key in (
        (sms_client, "/api/v1/sms/send", sms_pair["a"][1]),
        (sms_client, "/api/v1/sms/templates", sms_pair["a"][1]),
        (payment_client, "/api/v1/payment/order", admin),
        (payment_client, "/api/v1/payment/configs", admin),
        (sms_client, "/api/v1/sms/receipts/aliyun?token=receipt-token", ""),
        (sms_client, "/api/v1/sms/receipts/tencent?token=receipt-token", ""),
    ):
        response = client.post(path, data=body, headers={"X-Api-Key": key}, content_type="application/json")
        assert_envelope(response, 400)


@pytest.mark.parametrize("value", HOSTILE_STRINGS)
def test_hostile_strings_in_templates_and_variables_are_stored_verbatim_or_refused(
    value, sms_client, sms_db, sms_pair
):
    from sms_service.models import Message, Template

    _, key, _ = sms_pair["a"]
    headers = {"X-Api-Key": key}
    created = sms_client.post(
        "/api/v1/sms/templates",
        json={"name": value, "content": f"{value} 验证码${{code}}", "sign_name": "洗衣云",
              "provider_codes": {"aliyun": "SMS_1"}},
        headers=headers,
    )  # fmt: skip
    template = assert_envelope(created, 200)["data"]
    shown = assert_envelope(
        sms_client.get(f"/api/v1/sms/templates/{template['template_id']}", headers=headers), 200
    )
    assert shown["data"]["name"] == value and shown["data"]["content"].startswith(value)

    sent = sms_client.post(
        "/api/v1/sms/send",
        json={"template_id": template["template_id"], "mobiles": [MOBILES[3]], "variables": {"code": value}},
        headers=headers,
    )
    if sent.status_code == 200:
        message = sms_db.get(Message, sent.get_json()["data"]["message_id"])
        assert message.variables == {"code": value}
    else:
        assert_envelope(sent, 400)  # e.g. longer than SMS_MAX_VARIABLE_LENGTH
    for query in ({"template_id": value}, {"mobile": value}, {"status": value}, {"from": value}):
        listed = sms_client.get("/api/v1/sms/records", query_string=query, headers=headers)
        assert listed.status_code in (200, 400), listed.get_data()
        assert_envelope(listed, listed.status_code)
    assert_envelope(sms_client.get(f"/api/v1/sms/records/{value}", headers=headers), 404)
    assert sms_db.execute(sa.select(sa.func.count()).select_from(Template)).scalar_one() >= 3


@pytest.mark.parametrize("value", HOSTILE_STRINGS)
def test_hostile_strings_in_payment_orders_are_stored_verbatim_or_refused(
    value,
    payment_client,
    admin,
    fakes,
    sites,
):
    headers = headers_of(admin)
    placed_order = payment_client.post(
        "/api/v1/payment/order", json=order_body(description=value, payer_id=value[:128]), headers=headers
    )
    if placed_order.status_code == 200:
        transaction_id = placed_order.get_json()["data"]["transaction_id"]
        shown = payment_client.get(f"/api/v1/payment/orders/{transaction_id}", headers=headers).get_json()
        assert shown["data"]["description"] == value
    else:
        assert placed_order.status_code in (400, 502), placed_order.get_data()
        assert_envelope(placed_order, placed_order.status_code)
    for query in ({"site_id": value}, {"status": value}, {"from": value}):
        listed = payment_client.get("/api/v1/payment/orders", query_string=query, headers=headers)
        assert listed.status_code in (200, 400), listed.get_data()
    for path in (f"/api/v1/payment/orders/{value}", f"/api/v1/payment/configs/{value}"):
        assert payment_client.get(path, headers=headers).status_code in (404, 405)


@pytest.mark.parametrize(
    "query",
    [
        {"size": 10**6},
        {"size": 10**30},
        {"page": 10**20},
        {"page": 10**7},
        {"size": -1},
        {"page": 0},
        {"size": "1e3"},
        {"size": "all"},
    ],
)
def test_huge_or_bad_page_sizes_are_400(query, sms_client, payment_client, sms_pair, admin):
    sms_key = sms_pair["a"][1]
    for client, path, key in (
        (sms_client, "/api/v1/sms/templates", sms_key),
        (sms_client, "/api/v1/sms/records", sms_key),
        (payment_client, "/api/v1/payment/orders", admin),
        (payment_client, "/api/v1/payment/configs", admin),
    ):
        response = client.get(path, query_string=query, headers={"X-Api-Key": key})
        assert_envelope(response, 400)


@pytest.mark.parametrize(
    "body",
    [
        "\x00",
        "a\x00b",
        "\ud800",
        "\udfff tail",
    ],
)
def test_text_the_database_cannot_store_is_400(body, sms_client, payment_client, sms_pair, admin):
    sms_key = sms_pair["a"][1]
    escaped = json.dumps(body)  # \u0000 / \ud800 escapes: valid JSON, unstorable text
    assert_envelope(
        sms_client.post(
            "/api/v1/sms/templates",
            data='{"name": ' + escaped + ', "content": "x${code}", "sign_name": "s", "provider_codes": {}}',
            headers={"X-Api-Key": sms_key},
            content_type="application/json",
        ),
        400,
    )
    assert_envelope(
        payment_client.post(
            "/api/v1/payment/order",
            data='{"site_id": '
            + escaped
            + ', "channel": "wechat", "amount": 1, "description": "d", "payer_id": "p"}',
            headers={"X-Api-Key": admin},
            content_type="application/json",
        ),
        400,
    )
    assert_envelope(sms_client.get("/api/v1/sms/records/MSG%00X", headers={"X-Api-Key": sms_key}), 400)
    assert_envelope(
        payment_client.get("/api/v1/payment/orders?site_id=%00", headers={"X-Api-Key": admin}), 400
    )


# --- tenant isolation, table-driven -----------------------------------------------------------------------


def test_sms_tenant_a_cannot_read_or_change_tenant_b_ids(sms_client, sms_db, sms_pair):
    from sms_service.models import Template

    _, key_a, _ = sms_pair["a"]
    _, key_b, template_b = sms_pair["b"]
    as_b, as_a = {"X-Api-Key": key_b}, {"X-Api-Key": key_a}
    sent = sms_client.post(
        "/api/v1/sms/send",
        json={"template_id": template_b, "mobiles": [MOBILES[4]], "variables": {"code": "1", "minutes": "5"}},
        headers=as_b,
    )
    message_b = assert_envelope(sent, 200)["data"]["message_id"]
    items = [{"mobile": MOBILES[0], "variables": {"code": "2", "minutes": "1"}}]
    batch = sms_client.post(
        "/api/v1/sms/batch-send", json={"template_id": template_b, "items": items}, headers=as_b
    )
    batch_b = assert_envelope(batch, 200)["data"]["batch_id"]
    variables = {"code": "1", "minutes": "5"}
    cases = [
        ("GET", f"/api/v1/sms/templates/{template_b}", None),
        ("PUT", f"/api/v1/sms/templates/{template_b}", {"name": "hijacked", "status": "disabled"}),
        ("DELETE", f"/api/v1/sms/templates/{template_b}", None),
        ("GET", f"/api/v1/sms/records/{message_b}", None),
        ("GET", f"/api/v1/sms/batches/{batch_b}", None),
        ("POST", "/api/v1/sms/send",
         {"template_id": template_b, "mobiles": [MOBILES[1]], "variables": variables}),
        ("POST", "/api/v1/sms/batch-send",
         {"template_id": template_b, "items": [{"mobile": MOBILES[2], "variables": variables}]}),
    ]  # fmt: skip
    for method, path, body in cases:
        response = sms_client.open(path, method=method, json=body, headers=as_a)
        assert response.status_code == 404, (method, path, response.get_data(as_text=True)[:200])
        assert_envelope(response, 404)
    listed = sms_client.get("/api/v1/sms/records", query_string={"template_id": template_b}, headers=as_a)
    assert assert_envelope(listed, 200)["data"]["total"] == 0
    templates = sms_client.get("/api/v1/sms/templates", headers=as_a).get_json()["data"]["list"]
    assert template_b not in [t["template_id"] for t in templates]
    template = sms_db.get(Template, template_b)
    assert (template.name, template.status, template.deleted_at) == ("验证码", "enabled", None)
    assert sms_client.get(f"/api/v1/sms/records/{message_b}", headers=as_b).status_code == 200


def test_payment_tenant_a_cannot_read_or_change_tenant_b_ids(
    payment_client,
    payment_db,
    admin,
    fakes,
    sites,
    leak_watch,
):
    from payment_service.models import PaymentConfig

    _, key_a = create_payment_tenant(payment_db)
    leak_watch += [key_a, admin]
    as_a, as_b = headers_of(key_a), headers_of(admin)  # tenant B is the one with the sites and fakes
    config_b = sites["wechat_split"]
    bound = payment_client.get(f"/api/v1/sites/{WECHAT_SITE}/payment-binding", headers=as_b).get_json()
    binding_ids = [binding["binding_id"] for binding in bound["data"]["bindings"]]
    assert len(binding_ids) == 2
    transaction_b = placed(payment_client, admin, amount=12)["transaction_id"]
    cases = [
        ("GET", f"/api/v1/payment/configs/{config_b}", None),
        ("PUT", f"/api/v1/payment/configs/{config_b}", {"name": "hijacked"}),
        ("DELETE", f"/api/v1/payment/configs/{config_b}", None),
        ("PUT", f"/api/v1/payment/configs/{config_b}/status", {"status": "disabled"}),
        ("GET", f"/api/v1/payment/configs/{config_b}/history", None),
        ("POST", f"/api/v1/sites/{WECHAT_SITE}/payment-binding", {"config_id": config_b}),
        ("GET", f"/api/v1/payment/orders/{transaction_b}", None),
    ] + [("DELETE", f"/api/v1/sites/{WECHAT_SITE}/payment-binding/{bid}", None) for bid in binding_ids]
    for method, path, body in cases:
        response = payment_client.open(path, method=method, json=body, headers=as_a)
        assert response.status_code == 404, (method, path, response.get_data(as_text=True)[:200])
        assert_envelope(response, 404)
    assert payment_client.get("/api/v1/payment/orders", headers=as_a).get_json()["data"]["total"] == 0
    assert payment_client.get("/api/v1/payment/configs", headers=as_a).get_json()["data"]["total"] == 0
    config = payment_db.get(PaymentConfig, config_b)
    assert config.status == "enabled" and config.name != "hijacked"
    still_bound = payment_client.get(f"/api/v1/sites/{WECHAT_SITE}/payment-binding", headers=as_b).get_json()
    assert [binding["binding_id"] for binding in still_bound["data"]["bindings"]] == binding_ids
    assert (
        payment_client.get(f"/api/v1/sites/{WECHAT_SITE}/payment-binding", headers=as_a).get_json()["data"][
            "bindings"
        ]
        == []
    )
    assert payment_client.get(f"/api/v1/payment/orders/{transaction_b}", headers=as_b).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        # The body is looked at for escapes before its strings are: other ways of writing NUL or a
        # surrogate must not parse. A lone surrogate as raw bytes:
        '{"name": "\ud800", "content": "x${code}", "sign_name": "s", "provider_codes": {}}'.encode(
            "utf-8", "surrogatepass"
        ),
        # UTF-16 (json.loads would take it), the escape not in ASCII bytes:
        '{"name": "a\\u0000b", "content": "x${code}", "sign_name": "s", "provider_codes": {}}'.encode(
            "utf-16"
        ),
        # And the odd text that merely looks like an escape is stored, not refused.
        None,
    ],
)
def test_unstorable_text_is_found_however_the_body_encodes_it(raw, sms_client, sms_pair):
    sms_key = sms_pair["a"][1]
    if raw is None:
        body = json.dumps({"name": "\\u0000", "content": "x${code}", "sign_name": "s", "provider_codes": {}})
        response = sms_client.post(
            "/api/v1/sms/templates",
            data=body,
            headers={"X-Api-Key": sms_key},
            content_type="application/json",
        )
        assert response.status_code == 200 and response.get_json()["data"]["name"] == "\\u0000"
        return
    response = sms_client.post(
        "/api/v1/sms/templates", data=raw, headers={"X-Api-Key": sms_key}, content_type="application/json"
    )
    assert_envelope(response, 400)
