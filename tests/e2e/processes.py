"""Start the services as they run in production: gunicorn, celery worker and beat, as subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(prefix: str, **settings: str) -> dict[str, str]:
    """The parent environment plus ``{prefix}_{NAME}`` for each setting."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefix + "_")}
    env.update({f"{prefix}_{name}": str(value) for name, value in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(app_module: str, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "flask"), "--app", app_module, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


class Process:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.popen = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._log.close()


def start_gunicorn(
    app_spec: str, env: dict[str, str], log_dir: Path, port: int | None = None, workers: int = 2
):
    port = port or free_port()
    argv = [
        str(BIN / "gunicorn"),
        "-c",
        str(GUNICORN_CONF),
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        str(workers),
        app_spec,
    ]
    process = Process(f"gunicorn-{app_spec.split(':')[0]}-{port}", argv, env, log_dir)
    base_url = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers(base_url + "/healthz"), 30, f"gunicorn {app_spec}", process)
    return process, base_url


def start_worker(worker_module: str, env: dict[str, str], log_dir: Path, name: str = "worker", extra=()):
    argv = [
        str(BIN / "celery"), "-A", worker_module, "worker", "--loglevel", "INFO",
        "-n", f"{name}-{os.getpid()}-{free_port()}@%h", *extra,
    ]  # fmt: skip
    process = Process(f"{worker_module}-{name}", argv, env, log_dir)
    wait_until(lambda: " ready." in process.log(), 60, f"celery worker {worker_module}", process)
    return process


def start_beat(worker_module: str, env: dict[str, str], log_dir: Path):
    schedule = log_dir / f"{worker_module}-beat-schedule"
    argv = [str(BIN / "celery"), "-A", worker_module, "beat", "--loglevel", "INFO", "-s", str(schedule)]
    return Process(f"{worker_module}-beat", argv, env, log_dir)


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def wait_until(predicate, timeout: float, what: str, process: Process | None = None, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.popen.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{process.log()[-3000:]}")
        time.sleep(interval)
    tail = process.log()[-3000:] if process is not None else ""
    raise TimeoutError(f"{what} not ready within {timeout}s\n{tail}")


@contextmanager
def running(*processes: Process):
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()
