"""Reliability and security suite: faults with real processes, fuzzing, abuse.

Every module here is marked ``reliability`` (``pytest -m reliability tests/reliability`` runs them alone);
they run with the rest of the suite in ``make test`` and so in CI.
"""

from __future__ import annotations

import shutil
import subprocess
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import BROKER_URL, RUN_ID
from tests.e2e.conftest import postgres_required  # noqa: F401

# Payment fixtures the abuse tests share with tests/payment (a tenant key, the served fakes, bound sites).
from tests.payment.conftest import admin  # noqa: F401
from tests.payment.orders.helpers import fakes, published, served_fakes, sites  # noqa: F401
from tests.reliability.stacks import sms_stack_factory  # noqa: F401


@pytest.fixture(scope="session")
def broker_url():
    """The real broker, on RabbitMQ in a virtual host of this suite's own (not the e2e tests' one): the
    fault tests leave tasks behind on purpose, and a broker cut must not touch anyone else's queues."""
    if not BROKER_URL:
        pytest.skip("fault tests need a real broker (TEST_BROKER_URL)")
    parts = urlsplit(BROKER_URL)
    rabbitmqctl = shutil.which("rabbitmqctl")
    if parts.scheme != "amqp" or rabbitmqctl is None or parts.hostname not in {"127.0.0.1", "localhost"}:
        yield BROKER_URL
        return
    vhost = f"reliability_{RUN_ID}"
    run = [rabbitmqctl, "-q"]
    try:
        subprocess.run([*run, "add_vhost", vhost], check=True, capture_output=True, timeout=60)
        subprocess.run(
            [*run, "set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (subprocess.SubprocessError, OSError):
        yield BROKER_URL
        return
    try:
        yield urlunsplit(parts._replace(path="/" + vhost))
    finally:
        subprocess.run([*run, "delete_vhost", vhost], capture_output=True, timeout=60)
