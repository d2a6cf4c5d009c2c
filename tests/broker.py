"""A RabbitMQ virtual host of one run's own, so concurrent or earlier runs cannot take each other's tasks.

Queues are durable and named per service; two runs on one broker would otherwise share them.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit


@contextmanager
def private_vhost(broker_url: str, name: str) -> Iterator[str]:
    """Yield ``broker_url`` on a new virtual host ``name`` (deleted afterwards with whatever it still holds).

    Falls back to ``broker_url`` itself when it is not a local RabbitMQ or rabbitmqctl may not manage it.
    """
    parts = urlsplit(broker_url)
    rabbitmqctl = shutil.which("rabbitmqctl")
    if parts.scheme != "amqp" or rabbitmqctl is None or parts.hostname not in {"127.0.0.1", "localhost"}:
        yield broker_url
        return
    try:
        subprocess.run([rabbitmqctl, "-q", "add_vhost", name], check=True, capture_output=True, timeout=60)
        subprocess.run(
            [rabbitmqctl, "-q", "set_permissions", "-p", name, parts.username or "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (subprocess.SubprocessError, OSError):
        yield broker_url  # not allowed to manage virtual hosts here: share the configured one
        return
    try:
        yield urlunsplit(parts._replace(path="/" + name))
    finally:
        subprocess.run([rabbitmqctl, "-q", "delete_vhost", name], capture_output=True, timeout=60)
