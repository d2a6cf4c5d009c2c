"""schemathesis against both services as deployed (gunicorn on PostgreSQL and RabbitMQ), over HTTP: at least
1,000 generated cases per service with a valid and an invalid key; plus oversized bodies, fixed-length and
chunked, through gunicorn. The server logs must show no unhandled error and no secret."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
import schemathesis

from payment_service.settings import generate_secret_key
from tests.e2e.processes import run_cli, running, service_env, start_gunicorn
from tests.reliability.fuzzing import fuzz
from tests.reliability.stacks import assert_logs_clean
from tests.reliability.test_fuzz_wsgi import MIN_CASES, passes

pytestmark = pytest.mark.reliability

SERVICES = {
    "sms": ("SMS", "sms_service", {}),
    "payment": (
        "PAYMENT",
        "payment_service",
        {"SECRET_KEY": generate_secret_key(), "PUBLIC_BASE_URL": "http://127.0.0.1:8002"},
    ),
}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_under_gunicorn_survives_fuzzing_and_oversized_bodies(
    service, databases, broker_url, postgres_required, tmp_path
):
    prefix, module, extra = SERVICES[service]
    env = service_env(
        prefix,
        ENV="production",
        DATABASE_URL=databases.create(f"{service}_fuzz"),
        BROKER_URL=broker_url,
        **extra,
    )
    env["GUNICORN_THREADS"] = "4"
    run_cli(module, env, "db", "upgrade")
    tenant = json.loads(run_cli(module, env, "tenant", "create", "--name", "fuzz"))
    api, base_url = start_gunicorn(f"{module}:create_app()", env, tmp_path)
    with running(api):
        schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
        report = fuzz(schema, passes(tenant["api_key"]), base_url=base_url)
        print(
            f"\n{service} (gunicorn): {report.cases} cases, statuses {dict(sorted(report.by_status.items()))}"
        )
        assert report.cases >= MIN_CASES
        assert not report.failures, f"{len(report.failures)} failure(s):\n" + "\n".join(report.failures[:25])
        path = "/api/v1/sms/templates" if service == "sms" else "/api/v1/payment/configs"
        for chunked in (False, True):
            status, body = post_oversized(base_url, path, tenant["api_key"], chunked)
            assert status == 413, (chunked, status, body[:300])
            assert json.loads(body) == {"code": 413, "data": None, "message": "请求体过大"}
    secrets = [
        tenant["api_key"],
        tenant.get("callback_secret") or tenant.get("notify_secret"),
        *extra.values(),
    ]
    assert_logs_clean({path.name: path.read_text() for path in tmp_path.glob("*.log")}, secrets, [])


def post_oversized(base_url: str, path: str, api_key: str, chunked: bool) -> tuple[int, str]:
    """POST 1 MB + 1 KB of JSON over a raw socket (requests cannot send a chunked body with a length cap)."""
    payload = b'{"name": "' + b"x" * (1024 * 1024 + 1024) + b'"}'
    address = urlsplit(base_url)
    head = [f"POST {path} HTTP/1.1", f"Host: {address.netloc}", f"X-Api-Key: {api_key}",
            "Content-Type: application/json", "Connection: close"]  # fmt: skip
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(payload)}")
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            if chunked:
                for start in range(0, len(payload), 65536):
                    piece = payload[start : start + 65536]
                    connection.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                connection.sendall(b"0\r\n\r\n")
            else:
                connection.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading it all, as it may
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    header, _, body = answer.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in header.lower():
        body = dechunk(body)
    return status, body.decode()


def dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, body = out + rest[:size], rest[size + 2 :]
    return out
