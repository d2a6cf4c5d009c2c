"""Reliability and security suite: faults with real processes, fuzzing, abuse.

Every module here is marked ``reliability`` (``pytest -m reliability tests/reliability`` runs them alone);
they run with the rest of the suite in ``make test`` and so in CI.
"""

from __future__ import annotations

import pytest

from tests.broker import private_vhost
from tests.conftest import BROKER_URL, RUN_ID
from tests.e2e.conftest import postgres_required  # noqa: F401

# Payment fixtures the abuse tests share with tests/payment (a tenant key, the served fakes, bound sites).
from tests.payment.conftest import admin  # noqa: F401
from tests.payment.orders.helpers import fakes, published, served_fakes, sites  # noqa: F401

# Fixtures of the abuse tests (test_abuse*.py).
from tests.reliability.abuse_helpers import leak_watch, private_dns, sms_pair  # noqa: F401

# The SMS stack factory of the fault tests.
from tests.reliability.stacks import sms_stack_factory  # noqa: F401


@pytest.fixture(scope="session")
def broker_url():
    """The real broker, on RabbitMQ in a virtual host of this suite's own (not the e2e tests' one): the
    fault tests leave tasks behind on purpose, and a broker cut must not touch anyone else's queues."""
    if not BROKER_URL:
        pytest.skip("fault tests need a real broker (TEST_BROKER_URL)")
    with private_vhost(BROKER_URL, f"reliability_{RUN_ID}") as url:
        yield url
