"""What one webhook attempt did, as the sender reports it and as each service records it.

Both services keep their attempts in a table of their own (``callback_attempts``, ``forward_attempts``) with
the same columns, :class:`AttemptColumns`, filled from :meth:`Attempt.columns`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import UTCDateTime, utcnow

DELIVERED = "delivered"  # 2xx
RETRY = "retry"  # a passing failure, tried again after ``next_delay`` seconds
GAVE_UP = "gave_up"  # a passing failure after the last scheduled retry
REJECTED = "rejected"  # a failure that retrying cannot mend: another 4xx or a 3xx, or an address refused
OUTCOMES = (DELIVERED, RETRY, GAVE_UP, REJECTED)

MAX_ERROR_LENGTH = 300


@dataclass(frozen=True)
class Attempt:
    number: int  # 1 for the first attempt of the event
    webhook_id: str
    attempted_at: datetime
    outcome: str
    status_code: int | None = None  # None: no answer (network, DNS, timeout, refused address)
    error: str | None = None
    duration_ms: int = 0
    next_delay: float | None = None  # seconds until the next attempt, when the outcome is RETRY

    @property
    def delivered(self) -> bool:
        return self.outcome == DELIVERED

    @property
    def final(self) -> bool:
        """No further attempt is owed: delivered, rejected or given up."""
        return self.outcome != RETRY

    def columns(self) -> dict[str, Any]:
        """The values of :class:`AttemptColumns` for this attempt."""
        return {
            "attempt": self.number,
            "attempted_at": self.attempted_at,
            "status_code": self.status_code,
            "error": self.error[:MAX_ERROR_LENGTH] if self.error else None,
            "duration_ms": self.duration_ms,
            "outcome": self.outcome,
        }


class AttemptColumns:
    """Columns of a service's attempts table; the service adds the foreign key to what was sent."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(MAX_ERROR_LENGTH), nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(12))
