from __future__ import annotations

import pytest

from tests.deploy.manifests import SERVICES
from tests.e2e.conftest import broker_url, postgres_required  # noqa: F401  (fixtures)


@pytest.fixture(params=SERVICES, ids=[service.key for service in SERVICES])
def service(request):
    return request.param


@pytest.fixture
def service_app(service, request):
    """The service's test app (made once per run: a second ``create_app`` would rebind its database)."""
    return request.getfixturevalue(f"{service.key}_app")
