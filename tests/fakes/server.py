"""Serve a fake upstream over real HTTP on loopback: in a background thread for tests, or as a process.

The server is werkzeug's threaded server (one thread per connection, HTTP/1.1 keep-alive) with a deep listen
backlog, so a fake answering with 100 ms of latency still sustains about a thousand requests a second.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler


class _QuietRequestHandler(WSGIRequestHandler):
    """No access log: at benchmark rates it would cost more than the fake's own work."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class _Server(ThreadedWSGIServer):
    request_queue_size = 1024


def make_server(app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0) -> ThreadedWSGIServer:
    return _Server(host, port, app, handler=_QuietRequestHandler)


def serve_in_thread(
    app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0
) -> tuple[str, Callable[[], None]]:
    """Start serving `app`; return its base URL (with a trailing slash) and a function that stops it."""
    server = make_server(app, host, port)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"fake-upstream-{server.port}",
        daemon=True,
    )
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return f"http://{host}:{server.port}/", stop


def run_cli(
    build_app: Callable[[argparse.Namespace], Any], description: str, argv: list[str] | None = None
) -> None:
    """`python -m tests.fakes.<fake> --port N --latency-ms 100`: serve until interrupted.

    Prints the base URL on one line once listening, so a benchmark can wait for it.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed at start)")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay added to every upstream call")
    parser.add_argument("--credential-id", help="access key id / secret id the fake accepts")
    parser.add_argument("--credential-secret", help="its secret")
    args = parser.parse_args(argv)
    server = make_server(build_app(args), args.host, args.port)
    print(f"http://{args.host}:{server.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
