"""Telling a forked child from its parent without a system call on every check.

A process's own connections and threads do not survive a fork (prefork Celery, gunicorn): whatever holds
them notes :func:`fork_generation` when it makes them and makes new ones when the number has changed.
``os.getpid()`` would tell as well, but it is a system call, and the hot paths asked it several times a
request.
"""

from __future__ import annotations

import os

_generation = 0


def _count_fork() -> None:
    global _generation
    _generation += 1


os.register_at_fork(after_in_child=_count_fork)


def fork_generation() -> int:
    """A number that changes in a child process each time it is forked off."""
    return _generation
