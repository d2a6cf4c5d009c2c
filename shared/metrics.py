"""Prometheus metrics both services share: request latency, Celery task outcomes, broker queue depth,
``/metrics`` on the API and a small exporter in the Celery worker.

With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn sets it, the images set it) every process writes its
samples to files there and a scrape adds them up, so a scrape answered by any gunicorn worker, or by the
Celery worker's main process, sees the whole pod. The variable must be set before ``prometheus_client``
is first imported, and the directory must start empty (``deploy/gunicorn.conf.py`` and
:func:`install_worker_exporter` clear what an earlier run left).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from celery import Celery, signals
from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"

# Seconds: an envelope answer takes a few ms; a send with limits and an INSERT tens of ms.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and status",
    ["method", "endpoint", "status"],
    buckets=LATENCY_BUCKETS,
)
TASKS = Counter(
    "celery_tasks_total",
    "Celery task runs by task name and how they ended (success, retry, failure)",
    ["task", "outcome"],
)

#: Collectors computed at scrape time (database counts, broker depth): ``collector(app)`` per scrape.
LiveCollector = Callable[[Flask], Collector]

_PID_FILE = re.compile(r"_(\d+)\.db$")

if os.environ.get(MULTIPROC_DIR_VARIABLE):
    Path(os.environ[MULTIPROC_DIR_VARIABLE]).mkdir(parents=True, exist_ok=True)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_DIR_VARIABLE) or None


def clear_multiprocess_dir(directory: str | Path, keep_pid: int | None = None) -> None:
    """Remove sample files an earlier run left, except those of ``keep_pid`` (a process already writing)."""
    for path in Path(directory).glob("*.db"):
        match = _PID_FILE.search(path.name)
        if keep_pid is not None and match and int(match.group(1)) == keep_pid:
            continue
        path.unlink(missing_ok=True)


def scrape(live: Iterable[Collector] = ()) -> bytes:
    """The exposition text of this process (or, in multiprocess mode, of every process of the pod)."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        registry.register(_DefaultRegistry())
    for collector in live:
        registry.register(collector)
    return generate_latest(registry)


class _DefaultRegistry(Collector):
    def collect(self):
        yield from REGISTRY.collect()


class QueueDepthCollector(Collector):
    """Messages waiting in each of the service's queues and the consumers attached, asked of the broker."""

    def __init__(self, celery: Celery, queues: Iterable[str]) -> None:
        self.celery = celery
        self.queues = tuple(queues)

    def collect(self):
        depth = GaugeMetricFamily(
            "celery_queue_messages",
            "Messages waiting in a Celery queue (asked of the broker)",
            labels=["queue"],
        )
        consumers = GaugeMetricFamily(
            "celery_queue_consumers",
            "Workers consuming a Celery queue (0: nothing drains it)",
            labels=["queue"],
        )
        up = GaugeMetricFamily("celery_broker_up", "1 when the broker answered this scrape")
        try:
            with self.celery.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
                for queue in self.queues:
                    channel = connection.channel()
                    try:
                        _, messages, attached = channel.queue_declare(queue, passive=True)
                    except Exception:  # not declared yet: nothing was ever published or consumed
                        messages, attached = 0, 0
                    finally:
                        _close_quietly(channel)
                    depth.add_metric([queue], messages)
                    consumers.add_metric([queue], attached)
            up.add_metric([], 1)
        except Exception as exc:
            logger.warning("metrics: broker unreachable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        yield from (depth, consumers, up)


def _close_quietly(channel) -> None:
    try:
        channel.close()
    except Exception:  # a channel the broker closed after a failed passive declare
        logger.debug("metrics: channel already closed")


def init_app(app: Flask, live: Iterable[LiveCollector] = ()) -> None:
    """Time every request and serve ``/metrics`` (no API key: keep it off the public ingress)."""
    live = tuple(live)

    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    # First, so a request another hook refuses (401, 400) is timed too.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)

    latency_by_labels: dict[tuple[str, str, int], Histogram] = {}  # labels() looks up under a lock

    @app.after_request
    def _observe(response):
        started = g.pop("request_started", None)
        if started is not None:
            endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
            labels = (request.method, endpoint, response.status_code)
            latency = latency_by_labels.get(labels)
            if latency is None:
                latency = REQUEST_LATENCY.labels(request.method, endpoint, str(response.status_code))
                if len(latency_by_labels) < 10_000:  # methods × routes × statuses: a few hundred
                    latency_by_labels[labels] = latency
            latency.observe(time.perf_counter() - started)
        return response

    def metrics() -> Response:
        return Response(scrape(factory(app) for factory in live), mimetype=CONTENT_TYPE_LATEST)

    app.add_url_rule(METRICS_PATH, "metrics", metrics)


def install_worker_exporter(celery: Celery, port: int) -> None:
    """Count task outcomes; with ``port`` the worker's main process serves ``/metrics`` on it.

    Prefork children write to ``PROMETHEUS_MULTIPROC_DIR``, the main process adds them up; without the
    variable only a ``-P solo`` (or threads) worker's own samples are visible.
    """

    if getattr(celery, "metrics_installed", False):  # create_app runs more than once in tests
        return
    celery.metrics_installed = True

    def count(outcome: str):
        def handler(sender=None, **_):
            if getattr(sender, "app", None) is celery:
                TASKS.labels(sender.name, outcome).inc()

        return handler

    for signal, outcome in (
        (signals.task_success, "success"),
        (signals.task_retry, "retry"),
        (signals.task_failure, "failure"),
    ):
        signal.connect(count(outcome), weak=False)

    if not port:
        return

    def start_exporter(sender=None, **_) -> None:
        if getattr(sender, "app", None) is not celery:
            return
        directory = multiprocess_dir()
        if directory:
            clear_multiprocess_dir(directory, keep_pid=os.getpid())
            registry = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(registry)
        else:
            registry = REGISTRY
        start_http_server(port, registry=registry)
        logger.info("worker metrics on :%d%s", port, METRICS_PATH)

    signals.worker_init.connect(start_exporter, weak=False)
