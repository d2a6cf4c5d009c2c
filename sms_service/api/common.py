"""Fields and argument schemas the SMS blueprints share."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from shared.api import FastLoad
from shared.db import isoformat

MAX_PAGE_SIZE = 100
# Deeper pages would overflow the OFFSET; narrow the time range instead.
MAX_PAGE = 1_000_000


class UtcTime(ma.fields.Field):
    """Serialises a datetime as ISO 8601 UTC with ``Z``, as every answer shows times."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("metadata", {}).update({"type": "string", "format": "date-time"})
        kwargs.setdefault("dump_only", True)
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return isoformat(value)


class PageArgsSchema(FastLoad, ma.Schema):
    page = ma.fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=MAX_PAGE, error=f"page 必须在 1 到 {MAX_PAGE} 之间"),
    )
    size = ma.fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE, error=f"size 必须在 1 到 {MAX_PAGE_SIZE} 之间"),
    )

    def fast_load(self, data) -> dict | None:
        if self.fields.keys() != {"page", "size"}:  # a subclass with more to load
            return None
        page, size = _plain_number(data.get("page"), 1), _plain_number(data.get("size"), 20)
        if page is None or size is None or not (1 <= page <= MAX_PAGE and 1 <= size <= MAX_PAGE_SIZE):
            return None
        return {"page": page, "size": size}


def _plain_number(value, default: int) -> int | None:
    """A query value written as plain ASCII digits, or the default when absent; None for anything else."""
    if value is ma.missing or value is None:
        return default
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    return None


class IdempotencyHeaderSchema(FastLoad, ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    def fast_load(self, data) -> dict | None:
        key = data.get("Idempotency-Key")
        if key is None or key is ma.missing:
            return {"idempotency_key": None}
        return {"idempotency_key": key} if type(key) is str else None

    idempotency_key = ma.fields.String(
        data_key="Idempotency-Key",
        load_default=None,
        metadata={
            "description": "Optional: a retry with the same key returns the first answer and sends nothing"
        },
    )
