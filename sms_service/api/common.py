"""Fields and argument schemas the SMS blueprints share."""

from __future__ import annotations

import marshmallow as ma

from shared.db import isoformat
from sms_service.mobiles import MOBILE_PATTERN, normalise_mobile


class UtcTime(ma.fields.DateTime):
    """Serialises a datetime as ISO 8601 UTC with ``Z``, as every answer shows times."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("dump_only", True)
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return isoformat(value)


class Mobile(ma.fields.String):
    """A mainland mobile in any accepted form (+86, 0086, 86, spaces, dashes), loaded as its 11 digits."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("metadata", {}).update({"pattern": MOBILE_PATTERN, "example": "13800138000"})
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        number = normalise_mobile(super()._deserialize(value, attr, data, **kwargs))
        if number is None:
            raise ma.ValidationError("手机号格式不正确")
        return number


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


IDEMPOTENCY_KEY = "Idempotency-Key"


class IdempotencyHeaderSchema(ma.Schema):
    """The optional ``Idempotency-Key`` header, documented; ``accepting.idempotency.check_key`` checks it."""

    class Meta:
        unknown = ma.EXCLUDE

    idempotency_key = ma.fields.String(
        data_key=IDEMPOTENCY_KEY,
        load_default=None,
        metadata={
            "description": "Optional: a retry with the same key returns the first answer and sends nothing",
            "minLength": 1,
            "maxLength": 200,
            "pattern": r"\S",
        },
    )


def idempotency_header() -> dict:
    """``blp.doc`` keywords documenting :class:`IdempotencyHeaderSchema` as the operation's header parameter.

    The view reads the one header itself (``request.headers``): loading the headers through webargs as well
    cost a send about a third of what loading its body costs, for a value the schema only documents.
    """
    return {"parameters": [{"in": "header", "schema": IdempotencyHeaderSchema}]}
