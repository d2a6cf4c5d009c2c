"""Shared pieces of the abuse tests: hostile inputs, leak and DNS fixtures, SMS tenants, envelope checks."""

from __future__ import annotations

import logging
import socket

import pytest
import sqlalchemy as sa

from tests.factories import create_sms_tenant
from tests.payment.conftest import secret_fragments
from tests.reliability.logs import assert_no_leaks, record_texts
from tests.sms.conftest import create_template

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
