"""Celery plumbing: each service owns a module-level Celery app that ``create_app`` binds to Flask.

Tasks run in the Flask app context, ack late (a killed worker's task is redelivered) and take
one message at a time.
"""

from __future__ import annotations

from celery import Celery, Task
from flask import Flask
from kombu import Queue


class AppContextTask(Task):
    """Runs each task inside the Flask app bound by :func:`bind_celery`."""

    def __call__(self, *args, **kwargs):
        flask_app: Flask | None = getattr(self.app, "flask_app", None)
        if flask_app is None:
            raise RuntimeError(f"{self.app.main}: Celery app is not bound to a Flask app (call create_app)")
        with flask_app.app_context():
            return self.run(*args, **kwargs)


def new_celery(name: str) -> Celery:
    return Celery(name, task_cls=AppContextTask, set_as_current=False)


def bind_celery(celery: Celery, app: Flask, queues: tuple[str, ...], settings: dict | None = None) -> Celery:
    """``queues[0]`` is the default queue; a worker started without ``-Q`` consumes all of them."""
    celery.conf.update(
        broker_url=app.config["BROKER_URL"],
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
