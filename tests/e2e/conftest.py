from __future__ import annotations

import pytest

from tests.broker import private_vhost
from tests.conftest import BROKER_URL, POSTGRES_URL, RUN_ID


@pytest.fixture(scope="session")
def broker_url():
    """The real broker, on a RabbitMQ virtual host of this run's own when rabbitmqctl is at hand."""
    if not BROKER_URL:
        pytest.skip("end-to-end tests need a real broker (TEST_BROKER_URL)")
    with private_vhost(BROKER_URL, f"test_{RUN_ID}") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_required() -> None:
    if not POSTGRES_URL:
        pytest.skip("end-to-end tests need PostgreSQL (TEST_POSTGRES_URL)")
