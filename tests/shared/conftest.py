"""Fixtures of the tests of shared.db and shared.driver."""

import pytest
import sqlalchemy as sa

from shared.db import UTCDateTime
from tests.shared.scratch import scratch


@pytest.fixture
def steady(monkeypatch):
    """No idle ping: a connection used a moment ago goes unchecked, so its death meets the next statement."""
    monkeypatch.setattr("shared.db.PING_AFTER_IDLE_SECONDS", 3600.0)


@pytest.fixture
def typed_table():
    """A column of each type the services store, one with a Python-side default, one with a server's."""
    with scratch(
        "typed",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=True),
        sa.Column("ratio", sa.Numeric(asdecimal=False), nullable=True),
        sa.Column("share", sa.Float, nullable=True),
        sa.Column("document", sa.JSON, nullable=True),
        sa.Column("flag", sa.Boolean, nullable=True),
        sa.Column("at", UTCDateTime(), nullable=True),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("note", sa.Text, nullable=True, default="python-side default"),
        sa.Column("kind", sa.Text, nullable=False, server_default="plain"),
    ) as made:
        yield made
