"""Shared metrics plumbing: broker queue depth, multiprocess scrapes, task outcomes, and the log context
that puts task and message ids on every line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid

from flask import Flask
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from shared import metrics
from shared.logging import JsonFormatter, RequestContextFilter
from shared.tasks import bind_celery, new_celery


def memory_celery(queues: tuple[str, ...]):
    app = Flask("metrics-test")
    app.config["BROKER_URL"] = "memory://"
    celery = new_celery(f"metrics-test-{uuid.uuid4().hex[:6]}")
    bind_celery(celery, app, queues)
    return app, celery


def collected(collector) -> dict[str, list]:
    return {family.name: family.samples for family in collector.collect()}


def test_queue_depth_counts_waiting_messages_per_queue():
    queues = (f"q-{uuid.uuid4().hex[:8]}", f"q-{uuid.uuid4().hex[:8]}")
    _, celery = memory_celery(queues)
    with celery.connection_for_write() as connection:
        for queue in queues:  # declared, as a worker or the first publish would
            connection.default_channel.queue_declare(queue, durable=True, auto_delete=False)
    for _ in range(3):
        celery.send_task("anything", args=[1], queue=queues[0])
    families = collected(metrics.QueueDepthCollector(celery, queues))
    depth = {s.labels["queue"]: s.value for s in families["celery_queue_messages"]}
    assert depth == {queues[0]: 3.0, queues[1]: 0.0}
    assert [s.value for s in families["celery_broker_up"]] == [1.0]


def test_queue_depth_says_so_when_the_broker_is_down():
    _, celery = memory_celery(("q",))
    celery.conf.broker_url = "amqp://guest:guest@127.0.0.1:1//"
    families = collected(metrics.QueueDepthCollector(celery, ("q",)))
    assert list(families) == ["celery_broker_up"] and families["celery_broker_up"][0].value == 0.0


def test_a_multiprocess_scrape_adds_up_every_process(tmp_path):
    """As gunicorn workers do: each process writes its samples to the directory; one scrape sums them."""
    program = "from shared import metrics\nmetrics.REQUEST_LATENCY.labels('GET', '/x', '200').observe(0.01)\n"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": ""}
    for _ in range(3):
        subprocess.run([sys.executable, "-c", program], env=env, check=True, cwd=metrics_root())
    scrape = "import sys; from shared import metrics; sys.stdout.write(metrics.scrape().decode())"
    text = subprocess.run(
        [sys.executable, "-c", scrape],
        env=env,
        check=True,
        cwd=metrics_root(),
        capture_output=True,
        text=True,
    ).stdout
    samples = {
        (s.name, s.labels.get("endpoint")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("http_request_duration_seconds_count", "/x")] == 3.0

    metrics.clear_multiprocess_dir(tmp_path, keep_pid=None)
    assert list(tmp_path.glob("*.db")) == []


def metrics_root() -> str:
    from pathlib import Path

    return str(Path(metrics.__file__).resolve().parents[1])


def test_task_outcomes_are_counted():
    _, celery = memory_celery(("q",))
    metrics.install_worker_exporter(celery, port=0)

    @celery.task(name="test.flaky")
    def flaky(fail):
        if fail == "error":
            raise ValueError("boom")

    def count(outcome):
        return (
            REGISTRY.get_sample_value("celery_tasks_total", {"task": "test.flaky", "outcome": outcome}) or 0
        )

    before = {outcome: count(outcome) for outcome in ("success", "retry", "failure")}
    flaky.apply(args=["no"])
    flaky.apply(args=["error"])
    assert {outcome: count(outcome) - before[outcome] for outcome in before} == {
        "success": 1,
        "retry": 0,
        "failure": 1,
    }


def test_task_log_lines_carry_the_task_and_its_ids():
    app, celery = memory_celery(("q",))
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = Capture()
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter("sms"))
    logger = logging.getLogger("test.metrics.task")
    logger.addHandler(handler)
    logger.propagate = False

    @celery.task(name="test.deliver", bind=True)
    def deliver(self, message_ids, attempt, transaction_id=None):
        logger.warning("delivering to 13800138000")

    try:
        deliver.apply(args=[["MSG_1", "MSG_2"], 1], kwargs={"transaction_id": "TXN_1"})
        logger.warning("outside any task")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in lines)
    assert inside["task"] == "test.deliver" and inside["task_id"]
    assert inside["message_ids"] == ["MSG_1", "MSG_2"] and inside["transaction_id"] == "TXN_1"
    assert "attempt" not in inside and inside["message"] == "delivering to 138****8000"
    assert "task" not in outside and "message_ids" not in outside


def test_request_log_lines_carry_the_ids_in_the_url():
    app = Flask("log-ids")
    app.add_url_rule("/records/<message_id>", "record", lambda message_id: "ok")
    record = logging.makeLogRecord({"msg": "looking"})
    with app.test_request_context("/records/MSG_20260101_x"):
        RequestContextFilter().filter(record)
    assert record.message_id == "MSG_20260101_x"
