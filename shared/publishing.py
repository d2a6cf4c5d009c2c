"""Publishing ids to the broker from a background thread, those of several requests together."""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable

from shared.forking import fork_generation

logger = logging.getLogger(__name__)


class CoalescingPublisher:
    """Hands ids to ``publish`` from a background thread, at most one publish per ``linger`` seconds.

    A Celery publish costs a request as much CPU as storing its row; one task for the ids of several
    requests serves them as well. An id submitted after a quiet spell is published at once; ids submitted
    within ``linger`` of the last publish wait for the next one, together. So a lightly loaded process adds
    no delay and a busy one publishes a task per ``linger`` whatever its request rate.

    The ids must be committed rows before they get here, so nothing is lost with them: ids this thread
    never publishes (the process died, the broker refused) are the sweep's to publish again. ``linger`` 0
    publishes in the caller's thread.
    """

    def __init__(self, linger: float, publish: Callable[[list[str]], bool], name: str = "publisher") -> None:
        self.linger = linger
        self.name = name
        self._publish = publish
        self._pending: list[str] = []
        self._wakeup = threading.Condition()
        self._publishing = threading.Lock()
        self._thread: threading.Thread | None = None
        self._generation = -1

    def submit(self, ids: list[str]) -> None:
        if self.linger <= 0:
            self._publish(list(ids))
            return
        with self._wakeup:
            if self._generation != fork_generation():  # first use in this process (a fork inherits no thread)
                self._generation = fork_generation()
                self._pending = []  # a parent's ids are the parent's to publish
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
                atexit.register(self.flush)
            self._pending.extend(ids)
            self._wakeup.notify()

    def flush(self) -> None:
        """Publish whatever is waiting, now (at exit: a graceful stop leaves nothing to the sweep).

        One publish at a time: at exit this first waits for the one the thread may have under way, whose
        ids are no longer waiting but not yet published either.
        """
        with self._publishing:
            with self._wakeup:
                ids, self._pending = self._pending, []
            if ids:
                self._publish(ids)

    def _run(self) -> None:
        last_publish = -self.linger
        while True:
            with self._wakeup:
                while not self._pending:
                    self._wakeup.wait()
            wait = last_publish + self.linger - time.monotonic()
            if wait > 0:  # published a moment ago: the requests arriving meanwhile join the next one
                time.sleep(wait)
            last_publish = time.monotonic()
            try:
                self.flush()
            except Exception:  # never let the thread die: the rows wait for the sweep
                logger.exception("%s: publishing failed; the rows wait for the sweep", self.name)
