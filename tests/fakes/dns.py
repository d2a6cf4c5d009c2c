"""A made-up host name whose DNS answer a test controls: unknown until ``address`` is set, then that address.

Installed over ``socket.getaddrinfo``, so the webhook sender's own check and the HTTP client's connection
both see it; every other name resolves as usual.
"""

from __future__ import annotations

import socket


class FakeDns:
    NAME = "hooks.tenant.test"

    def __init__(self, real=socket.getaddrinfo) -> None:
        self.real, self.address, self.lookups = real, None, 0

    def __call__(self, host, port, *args, **kwargs):
        if host != self.NAME:
            return self.real(host, port, *args, **kwargs)
        self.lookups += 1
        if self.address is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (self.address, port or 80))]

    def install(self, monkeypatch) -> FakeDns:
        monkeypatch.setattr(socket, "getaddrinfo", self)
        return self
