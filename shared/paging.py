"""The ``page`` / ``size`` query arguments of every list endpoint, and their bounds."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from shared.db import MAX_PAGE

MAX_PAGE_SIZE = 100


class PageArgsSchema(ma.Schema):
    page = ma.fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=MAX_PAGE, error=f"page 必须在 1 到 {MAX_PAGE} 之间"),
    )
    size = ma.fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE, error=f"size 必须在 1 到 {MAX_PAGE_SIZE} 之间"),
    )
