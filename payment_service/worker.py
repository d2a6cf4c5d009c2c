"""Celery entry point: ``celery -A payment_service.worker worker`` (every payment queue) and ``… beat``."""

from payment_service import create_app, tasks  # noqa: F401  (registers the tasks)
from payment_service.extensions import celery

flask_app = create_app()
app = celery
