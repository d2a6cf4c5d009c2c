"""Celery entry point: ``celery -A sms_service.worker worker`` (every SMS queue) and ``… beat``."""

from sms_service import create_app, tasks  # noqa: F401  (registers the tasks)
from sms_service.extensions import celery

flask_app = create_app()
app = celery
