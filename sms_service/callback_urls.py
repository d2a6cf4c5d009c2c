"""Which callback URLs the service will POST to: http(s) to public addresses only (no SSRF).

Checked when a send is accepted and again before every delivery, because DNS can change in between.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

MAX_URL_LENGTH = 1000


class CallbackUrlRefused(ValueError):
    """The URL may not be called; the message says why, in Chinese, for the tenant."""


def check_callback_url(url: str, allow_private: bool, resolve: bool = True) -> None:
    """Raise :class:`CallbackUrlRefused` unless ``url`` is http(s) to a public host.

    With ``resolve`` the host name is resolved and every address must be public; a name that does not
    resolve is let through (DNS may be briefly unavailable) because delivery checks again.
    """
    if len(url) > MAX_URL_LENGTH:
        raise CallbackUrlRefused(f"回调地址不能超过 {MAX_URL_LENGTH} 个字符")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise CallbackUrlRefused("回调地址格式不正确") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackUrlRefused("回调地址必须是 http 或 https 地址")
    if parts.username or parts.password:
        raise CallbackUrlRefused("回调地址不能包含用户名或密码")
    if allow_private:
        return
    for address in _addresses(parts.hostname, port, resolve):
        if not is_public(address):
            raise CallbackUrlRefused("回调地址不能指向内网、本机、链路本地或云元数据地址")


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_global and not (
        address.is_multicast or address.is_unspecified or address.is_reserved or address.is_link_local
    )


def _addresses(host: str, port: int | None, resolve: bool):
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    if host.lower().rstrip(".") in {"localhost", "metadata", "metadata.google.internal"}:
        return [ipaddress.ip_address("127.0.0.1")]
    if not resolve:
        return []
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
