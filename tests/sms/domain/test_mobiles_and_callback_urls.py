"""Mobile normalising and masking; which callback URLs may be called."""

from __future__ import annotations

import ipaddress

import pytest

from shared.webhooks import UrlRefused, check_public_url, is_public
from sms_service.mobiles import mask_mobile, normalise_mobile


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("008613800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("19912345678", "19912345678"),
    ],
)
def test_normalise_accepts_mainland_mobiles_with_prefixes(raw, expected):
    assert normalise_mobile(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "12800138000", "1380013800", "138001380000", "+8513800138000", "abc", "+86 1380013800"]
)
def test_normalise_refuses_anything_else(raw):
    assert normalise_mobile(raw) is None


def test_mask_keeps_the_first_three_and_last_four_digits():
    assert mask_mobile("13800138000") == "138****8000"


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.0.1", "169.254.169.254", "100.100.100.200",
                "0.0.0.0", "224.0.0.1", "::1", "fd00:ec2::254", "fe80::1", "::ffff:10.0.0.1"]
)  # fmt: skip
def test_private_and_special_addresses_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))


def test_public_addresses_are_public():
    assert is_public(ipaddress.ip_address("8.8.8.8")) and is_public(ipaddress.ip_address("2001:4860::8888"))


def test_host_names_are_resolved(monkeypatch):
    import socket

    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("10.9.8.7", 443))])
    with pytest.raises(UrlRefused):
        check_public_url("https://internal.example.com/cb", allow_private=False)
    check_public_url("https://internal.example.com/cb", allow_private=True)


def test_unresolvable_names_are_checked_again_at_delivery(monkeypatch):
    import socket

    def fail(*_args, **_kwargs):
        raise socket.gaierror("no DNS")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    check_public_url("https://biz.example.com/sms/callback", allow_private=False)
