from __future__ import annotations

import pytest

from tests.conftest import BROKER_URL, POSTGRES_URL


@pytest.fixture(scope="session")
def broker_url() -> str:
    if not BROKER_URL:
        pytest.skip("end-to-end tests need a real broker (TEST_BROKER_URL)")
    return BROKER_URL


@pytest.fixture(scope="session")
def postgres_required() -> None:
    if not POSTGRES_URL:
        pytest.skip("end-to-end tests need PostgreSQL (TEST_POSTGRES_URL)")
