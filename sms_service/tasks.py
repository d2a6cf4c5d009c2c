"""Celery tasks of the SMS service: thin, they take ids and call the domain."""
