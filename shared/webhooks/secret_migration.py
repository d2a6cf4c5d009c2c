"""The data step of each service's migration to ``whsec_`` secrets: the same key material, respelled.

A plain secret, whose UTF-8 bytes are the HMAC key, becomes ``whsec_`` + base64 of those bytes: a receiver
holding the plain secret as its raw key, or the ``whsec_`` form, verifies the same signatures.
"""

from __future__ import annotations

import binascii

import sqlalchemy as sa
from alembic import op

from shared.webhooks.signing import SECRET_PREFIX, secret_from_plain, secret_key


def to_whsec(plain: str) -> str:
    return plain if plain.startswith(SECRET_PREFIX) else secret_from_plain(plain)


def to_plain(secret: str) -> str:
    """Back to the plain spelling where the key is UTF-8 text; a random key has none and stays as it is."""
    try:
        return secret_key(secret).decode("utf-8")
    except (ValueError, binascii.Error):
        return secret


def convert_secrets(table_name: str, column: str, convert, max_length: int) -> int:
    """Apply ``convert`` to ``column`` of every row of ``table_name``; returns how many rows changed.

    A converted secret longer than the column is refused, naming the row, before anything is written.
    """
    table = sa.table(table_name, sa.column("id", sa.String), sa.column(column, sa.String))
    connection = op.get_bind()
    rows = connection.execute(sa.select(table.c.id, table.c[column])).all()
    converted_rows = ((row_id, secret, convert(secret)) for row_id, secret in rows)
    changes = {row_id: converted for row_id, secret, converted in converted_rows if converted != secret}
    too_long = sorted(row_id for row_id, converted in changes.items() if len(converted) > max_length)
    if too_long:
        raise ValueError(f"{table_name}.{column} of {', '.join(too_long)}: too long once converted")
    for row_id, converted in changes.items():
        connection.execute(table.update().where(table.c.id == row_id).values({column: converted}))
    return len(changes)
