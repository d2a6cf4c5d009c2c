"""The broker's transport options: a Redis broker keeps a waiting retry from being handed out twice."""

from __future__ import annotations

import pytest

from shared.tasks import REDIS_VISIBILITY_TIMEOUT_SECONDS, broker_transport_options
from shared.webhooks.schedule import DEFAULT_RETRY_DELAYS


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://cache:6380/1", "sentinel://s1:26379;sentinel://s2:26379"]
)
def test_a_redis_broker_holds_unacknowledged_tasks_longer_than_the_longest_retry(url):
    longest = max(float(delay) for delay in DEFAULT_RETRY_DELAYS.split(",")) * 1.1  # ±10 % jitter
    assert broker_transport_options(url) == {"visibility_timeout": REDIS_VISIBILITY_TIMEOUT_SECONDS}
    assert REDIS_VISIBILITY_TIMEOUT_SECONDS > longest


@pytest.mark.parametrize("url", ["amqp://guest:guest@127.0.0.1:5672//", "sqla+sqlite:///var/broker.sqlite"])
def test_other_brokers_keep_their_own_options(url):
    assert broker_transport_options(url) == {}


def test_the_service_celery_app_is_configured_with_them():
    from flask import Flask

    from shared.tasks import bind_celery, new_celery

    app = Flask(__name__)
    app.config["BROKER_URL"] = "redis://127.0.0.1:1/0"
    celery = bind_celery(new_celery("broker-options"), app, ("q",))
    assert celery.conf.broker_transport_options["visibility_timeout"] == REDIS_VISIBILITY_TIMEOUT_SECONDS
