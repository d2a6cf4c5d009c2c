"""The services under gunicorn started without the project's gunicorn settings, as many operators and tools
start them: loading the app must leave gunicorn's own logging working."""

from __future__ import annotations

import re
import socket

import pytest

from tests.e2e.processes import BIN, Process, answers, free_port, running, service_env, wait_until

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("module", "prefix"), [("sms_service", "SMS"), ("payment_service", "PAYMENT")])
def test_plain_gunicorn_logs_a_malformed_header_as_a_warning(module, prefix, tmp_path):
    env = service_env(prefix, DATABASE_URL=f"sqlite:///{tmp_path}/{module}.db")
    port = free_port()
    argv = [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "-w", "1", f"{module}:create_app()"]
    gunicorn = Process(f"plain-gunicorn-{module}", argv, env, tmp_path)
    with running(gunicorn):
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), 30, "plain gunicorn", gunicorn)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nBroken header line\r\n\r\n")
            answer = connection.recv(4096)
        assert answer.startswith(b"HTTP/1.1 400")
        wait_until(lambda: "Invalid request from ip=127.0.0.1" in gunicorn.log(), 10, "the warning", gunicorn)
        log = gunicorn.log()
    assert "Logging error" not in log and "Traceback" not in log
    warning = next(line for line in log.splitlines() if "Invalid request from ip=127.0.0.1" in line)
    assert re.search(r"\[\d+\] \[WARNING\] Invalid request", warning), warning  # gunicorn's own format
