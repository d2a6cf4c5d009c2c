"""Celery tasks of the payment service: thin, they take ids and call the domain."""
