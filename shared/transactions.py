"""One operation, one transaction: commit when the block ends, roll back (releasing locks) if it raises.

An operation (one request's change, one task's step) opens the block at its entry point; the helpers it
calls only execute statements and never commit. An operation that commits in steps (claiming messages
before an upstream call, reconciling one message at a time) opens one block per step and says why.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session


@contextmanager
def atomic(session: Session) -> Iterator[Session]:
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
