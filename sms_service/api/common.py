"""Fields and argument schemas the SMS blueprints share."""

from __future__ import annotations

import marshmallow as ma

from shared.db import isoformat


class UtcTime(ma.fields.DateTime):
    """Serialises a datetime as ISO 8601 UTC with ``Z``, as every answer shows times."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("dump_only", True)
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return isoformat(value)


class Itself(ma.fields.Nested):
    """Dumps the object being dumped through another schema: an answer's sub-object made of the same row's
    columns (a message's upstream ids, its callback state) documented as a schema of its own.

    ``when`` names an attribute that must be set for the sub-object to exist; without it the field is null.
    """

    def __init__(self, nested, *, when: str | None = None, **kwargs) -> None:
        kwargs.setdefault("dump_only", True)
        if when:
            kwargs.setdefault("allow_none", True)
        super().__init__(nested, **kwargs)
        self.when = when

    def get_value(self, obj, attr, accessor=None, default=ma.missing):
        if self.when and not getattr(obj, self.when):
            return None
        return obj


class IdempotencyHeaderSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    idempotency_key = ma.fields.String(
        data_key="Idempotency-Key",
        load_default=None,
        metadata={
            "description": "Optional: a retry with the same key returns the first answer and sends nothing",
            "minLength": 1,
            "maxLength": 200,
            "pattern": r"\S",
        },
    )
