from __future__ import annotations

import shutil
import subprocess
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import BROKER_URL, POSTGRES_URL, RUN_ID


@pytest.fixture(scope="session")
def broker_url():
    """The real broker; on RabbitMQ a virtual host of this run's own when rabbitmqctl is at hand.

    Queues are durable and named per service, so two test runs on one broker (or tasks a previous
    run left scheduled) would otherwise take each other's messages.
    """
    if not BROKER_URL:
        pytest.skip("end-to-end tests need a real broker (TEST_BROKER_URL)")
    parts = urlsplit(BROKER_URL)
    rabbitmqctl = shutil.which("rabbitmqctl")
    if parts.scheme != "amqp" or rabbitmqctl is None or parts.hostname not in {"127.0.0.1", "localhost"}:
        yield BROKER_URL
        return
    vhost = f"test_{RUN_ID}"
    user = parts.username or "guest"
    try:
        subprocess.run([rabbitmqctl, "add_vhost", vhost], check=True, capture_output=True, timeout=60)
        subprocess.run(
            [rabbitmqctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (subprocess.SubprocessError, OSError):
        yield BROKER_URL  # not allowed to manage vhosts here: share the default one
        return
    try:
        yield urlunsplit(parts._replace(path="/" + vhost))
    finally:
        subprocess.run([rabbitmqctl, "delete_vhost", vhost], capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def postgres_required() -> None:
    if not POSTGRES_URL:
        pytest.skip("end-to-end tests need PostgreSQL (TEST_POSTGRES_URL)")
