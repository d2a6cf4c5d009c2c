"""Which URLs a service will POST webhooks to (SMS results, payment results): http(s) to public hosts only.

Checked when the URL is accepted and again before every delivery, because DNS can change in between.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

MAX_URL_LENGTH = 1000
# Names that resolve to the machine itself or to a cloud metadata service, whatever DNS says.
_LOCAL_NAMES = {"localhost", "metadata", "metadata.google.internal"}

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """The URL may not be called; the message says why, in Chinese, for the tenant."""


def check_public_url(url: str, allow_private: bool, resolve: bool = True) -> None:
    """Raise :class:`UrlRefused` unless ``url`` is http(s) to a public host.

    With ``resolve`` the host name is resolved and every address must be public. A name that does not
    resolve when the URL is accepted is let through (DNS may be briefly unavailable); delivery checks
    again with :func:`check_before_delivery`.
    """
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"回调地址不能超过 {MAX_URL_LENGTH} 个字符")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("回调地址格式不正确") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("回调地址必须是 http 或 https 地址")
    if parts.username or parts.password:
        raise UrlRefused("回调地址不能包含用户名或密码")
    if allow_private:
        return
    for address in _addresses(parts.hostname, port, resolve):
        if not is_public(address):
            raise UrlRefused("回调地址不能指向内网、本机、链路本地或云元数据地址")


def check_before_delivery(url: str, allow_private: bool) -> None:
    """The delivery-time check: like :func:`check_public_url`, and a host that does not resolve is refused."""
    check_public_url(url, allow_private)
    if allow_private:
        return
    parts = urlsplit(url)
    if not _addresses(parts.hostname or "", parts.port, resolve=True):
        raise UrlRefused("回调地址的域名无法解析")


def is_public(address: IpAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_global and not (
        address.is_multicast or address.is_unspecified or address.is_reserved or address.is_link_local
    )


def _addresses(host: str, port: int | None, resolve: bool) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    if host.lower().rstrip(".") in _LOCAL_NAMES:
        return [ipaddress.ip_address("127.0.0.1")]
    if not resolve:
        return []
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
