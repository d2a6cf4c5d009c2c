"""Which URLs a service will POST webhooks to (SMS results, payment results): http(s) to public hosts only.

Checked when the URL is accepted and again before every attempt, the host name resolved afresh each time,
because DNS can change in between. A name that does not resolve is a passing failure (retried); an address
that is not allowed is final.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

MAX_URL_LENGTH = 1000
# Names that resolve to the machine itself or to a cloud metadata service, whatever DNS says.
_LOCAL_NAMES = {"localhost", "metadata", "metadata.google.internal"}

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """The URL may not be called; the message says why, in Chinese, for the tenant."""


class HostUnresolved(OSError):
    """The host name does not resolve right now; a later attempt may succeed."""


def check_public_url(url: str, allow_private: bool, resolve: bool = True) -> None:
    """Raise :class:`UrlRefused` unless ``url`` is http(s) to a public host.

    With ``resolve`` the host name is resolved and every address must be public. A name that does not
    resolve when the URL is accepted is let through (DNS may be briefly unavailable); every delivery
    attempt checks again with :func:`check_for_delivery`.
    """
    parts = _parts(url)
    if allow_private or parts.hostname is None:
        return
    try:
        addresses = _addresses(parts.hostname, parts.port, resolve)
    except HostUnresolved:
        return
    _refuse_private(addresses)


def check_for_delivery(url: str, allow_private: bool) -> list[IpAddress]:
    """The check before one attempt: the host resolved now, every address public unless ``allow_private``.

    Raises :class:`UrlRefused` (final) or :class:`HostUnresolved` (worth retrying); returns the addresses.
    """
    parts = _parts(url)
    addresses = _addresses(parts.hostname or "", parts.port, resolve=True)
    if not allow_private:
        _refuse_private(addresses)
    return addresses


def is_public(address: IpAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_global and not (
        address.is_multicast or address.is_unspecified or address.is_reserved or address.is_link_local
    )


def resolve_host(host: str, port: int | None) -> list[IpAddress]:
    """Every address ``host`` resolves to now; :class:`HostUnresolved` when it resolves to none."""
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise HostUnresolved(f"{host}: {exc.strerror or exc}") from None
    except UnicodeError:
        raise UrlRefused("回调地址的域名无效") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise HostUnresolved(f"{host}: no address")
    return addresses


def _parts(url: str) -> SplitResult:
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"回调地址不能超过 {MAX_URL_LENGTH} 个字符")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        raise UrlRefused("回调地址格式不正确") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("回调地址必须是 http 或 https 地址")
    if parts.username or parts.password:
        raise UrlRefused("回调地址不能包含用户名或密码")
    return parts


def _refuse_private(addresses: list[IpAddress]) -> None:
    if not all(is_public(address) for address in addresses):
        raise UrlRefused("回调地址不能指向内网、本机、链路本地或云元数据地址")


def _addresses(host: str, port: int | None, resolve: bool) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    if host.lower().rstrip(".") in _LOCAL_NAMES:
        return [ipaddress.ip_address("127.0.0.1")]
    if not resolve:
        return []
    return resolve_host(host, port)
