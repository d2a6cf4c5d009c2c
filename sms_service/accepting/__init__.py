"""Accepting sends: validation of mobiles and variables, templates, limits, idempotency, storing as queued."""
