"""Ids are published from a background thread, several requests' ids per publish."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from shared.publishing import CoalescingPublisher


class Recorder:
    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[tuple[list[str], str]] = []
        self.fail_first = fail_first
        self.event = threading.Event()

    def __call__(self, ids: list[str]) -> bool:
        if self.fail_first:
            self.fail_first -= 1
            raise ConnectionError("broker gone")
        self.calls.append((ids, threading.current_thread().name))
        self.event.set()
        return True


def wait_for(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_after_a_quiet_spell_an_id_is_published_at_once_in_the_background():
    recorder = Recorder()
    publisher = CoalescingPublisher(5.0, recorder, name="delivery-publisher")
    started = time.monotonic()
    publisher.submit(["MSG_1"])
    wait_for(lambda: recorder.calls)
    assert time.monotonic() - started < 2.5  # not held for the linger
    assert recorder.calls == [(["MSG_1"], "delivery-publisher")]


def test_ids_submitted_within_the_linger_of_a_publish_go_out_together_in_order():
    recorder = Recorder()
    publisher = CoalescingPublisher(0.4, recorder, name="delivery-publisher")
    publisher.submit(["MSG_1"])
    wait_for(lambda: recorder.calls)
    first_published = time.monotonic()
    publisher.submit(["MSG_2"])
    publisher.submit(["MSG_3", "MSG_4"])
    publisher.submit(["MSG_5"])
    assert len(recorder.calls) == 1  # the request threads never wait for the broker
    wait_for(lambda: len(recorder.calls) == 2)
    assert time.monotonic() - first_published >= 0.35  # one publish per linger at most
    assert recorder.calls[1] == (["MSG_2", "MSG_3", "MSG_4", "MSG_5"], "delivery-publisher")


def test_no_linger_publishes_in_the_callers_thread():
    recorder = Recorder()
    CoalescingPublisher(0, recorder).submit(["MSG_1"])
    assert recorder.calls == [(["MSG_1"], threading.current_thread().name)]


def test_a_failed_publish_does_not_stop_the_thread():
    recorder = Recorder(fail_first=1)
    publisher = CoalescingPublisher(0.01, recorder, name="delivery-publisher")
    publisher.submit(["MSG_lost_to_the_sweep"])
    wait_for(lambda: recorder.fail_first == 0)
    publisher.submit(["MSG_2"])
    wait_for(lambda: recorder.calls)
    assert recorder.calls == [(["MSG_2"], "delivery-publisher")]


def test_what_waits_at_exit_is_published_before_the_process_ends():
    script = (
        "from shared.publishing import CoalescingPublisher\n"
        "publisher = CoalescingPublisher(60, lambda ids: print('published', *ids, flush=True))\n"
        "publisher.submit(['MSG_1', 'MSG_2'])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["published", "MSG_1", "MSG_2"]
