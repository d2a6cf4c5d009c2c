"""Celery plumbing: each service owns a module-level Celery app that ``create_app`` binds to Flask.

Tasks run in the Flask app context, ack late (a killed worker's task is redelivered) and take
one message at a time.
"""

from __future__ import annotations

import inspect
from contextlib import AbstractContextManager

from celery import Celery, Task, signals
from flask import Flask
from kombu import Queue

from shared.logging import log_context


class AppContextTask(Task):
    """Runs each task inside the Flask app bound by :func:`bind_celery`."""

    def __call__(self, *args, **kwargs):
        flask_app: Flask | None = getattr(self.app, "flask_app", None)
        if flask_app is None:
            raise RuntimeError(f"{self.app.main}: Celery app is not bound to a Flask app (call create_app)")
        with flask_app.app_context():
            return self.run(*args, **kwargs)

    def log_fields(self, args, kwargs) -> dict[str, object]:
        """The ids a run was given (arguments named ``…_id`` or ``…_ids``), for its log lines."""
        try:
            bound = inspect.signature(self.run).bind_partial(*(args or ()), **(kwargs or {})).arguments
        except TypeError:  # the call does not fit the signature: run() will say so
            return {}
        return {name: value for name, value in bound.items() if name.endswith(("_id", "_ids"))}


# From before a task runs until after Celery logged how it ended, every log line carries the task's
# name, id and ids: the worker's "succeeded" / "raised" lines included.
_LOG_SCOPES: dict[str, AbstractContextManager] = {}


@signals.task_prerun.connect(weak=False)
def _bind_task_log_context(sender=None, task_id=None, args=None, kwargs=None, **_) -> None:
    if isinstance(sender, AppContextTask) and task_id is not None:
        scope = log_context(task=sender.name, task_id=task_id, **sender.log_fields(args, kwargs))
        scope.__enter__()
        _LOG_SCOPES[task_id] = scope


@signals.task_postrun.connect(weak=False)
def _unbind_task_log_context(task_id=None, **_) -> None:
    scope = _LOG_SCOPES.pop(task_id, None) if task_id is not None else None
    if scope is not None:
        scope.__exit__(None, None, None)


def publish_ids(celery: Celery, task: str, ids: list[str], queue: str) -> None:
    """Publish ``task`` with one argument, a list of ids. The worker's log lines show the first id and how
    many (``argsrepr``): Celery's own safe repr of the whole list cost a publish a sixth of its CPU."""
    celery.send_task(
        task,
        args=[ids],
        queue=queue,
        argsrepr=f"[[{ids[0]!r}, … {len(ids)} ids]]" if ids else "[[]]",
        kwargsrepr="{}",
    )


#: Redis hands an unacknowledged task to another worker after this long. Above the longest retry countdown
#: (the webhook schedule's 10 h, jittered), so a task waiting for its retry is not delivered twice meanwhile;
#: a task lost with its worker comes back sooner anyway, through the services' sweeps (decision 0008).
REDIS_VISIBILITY_TIMEOUT_SECONDS = 12 * 3600
REDIS_SCHEMES = ("redis", "rediss", "sentinel")


def broker_transport_options(broker_url: str) -> dict:
    if broker_url.split("://", 1)[0].split("+")[0] in REDIS_SCHEMES:
        return {"visibility_timeout": REDIS_VISIBILITY_TIMEOUT_SECONDS}
    return {}


def new_celery(name: str) -> Celery:
    return Celery(name, task_cls=AppContextTask, set_as_current=False)


def bind_celery(celery: Celery, app: Flask, queues: tuple[str, ...], settings: dict | None = None) -> Celery:
    """``queues[0]`` is the default queue; a worker started without ``-Q`` consumes all of them."""
    celery.conf.update(
        broker_url=app.config["BROKER_URL"],
        broker_transport_options=broker_transport_options(app.config["BROKER_URL"]),
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=queues[0],
        task_queues=[Queue(queue, routing_key=queue) for queue in queues],
        task_create_missing_queues=False,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
    )
    if settings:
        celery.conf.update(settings)
    celery.flask_app = app
    app.extensions["celery"] = celery
    return celery
