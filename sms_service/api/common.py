"""Fields and argument schemas the SMS blueprints share."""

from __future__ import annotations

import marshmallow as ma

from shared.db import isoformat


class UtcTime(ma.fields.Field):
    """Serialises a datetime as ISO 8601 UTC with ``Z``, as every answer shows times."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("metadata", {}).update({"type": "string", "format": "date-time"})
        kwargs.setdefault("dump_only", True)
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return isoformat(value)


class IdempotencyHeaderSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    idempotency_key = ma.fields.String(
        data_key="Idempotency-Key",
        load_default=None,
        metadata={
            "description": "Optional: a retry with the same key returns the first answer and sends nothing"
        },
    )
