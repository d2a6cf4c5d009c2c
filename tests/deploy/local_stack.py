"""`make run` (deploy/run-local.sh) started in a copy of the working tree, so its var/ is the copy's own."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PORTS = (8001, 8002, 8601, 8602)  # the two APIs, the WeChat Pay and Alipay fakes
READY = "Ctrl-C stops everything."


def taken_port() -> int | None:
    for port in PORTS:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return port
    return None


def reader_env() -> dict[str, str]:
    """A reader's terminal: this environment without the services' own settings."""
    prefixes = ("SMS_", "PAYMENT_", "GUNICORN_")
    return {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}


def copy_working_tree(target: Path) -> Path:
    """The tracked and the untracked-not-ignored files (`git ls-files -co --exclude-standard`)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet in the index
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name, follow_symlinks=False)
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


class LocalStack:
    def __init__(self, tree: Path, settings: dict[str, str]) -> None:
        self.tree = tree
        self.output_path = tree / "run-local.out"
        with open(self.output_path, "wb") as output:
            self.process = subprocess.Popen(
                ["bash", "deploy/run-local.sh"],
                cwd=tree,
                env={**reader_env(), **settings, "PYTHONUNBUFFERED": "1"},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while READY not in self.output():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"run-local.sh exited {self.process.returncode}:\n{self.output()}{self.logs()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"run-local.sh not ready after {timeout:.0f} s:\n{self.output()}{self.logs()}"
                )
            time.sleep(0.5)

    def logs(self, lines: int = 5) -> str:
        tails = []
        for log in sorted((self.tree / "var" / "log").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"\n--- {log.name}\n" + "\n".join(tail))
        return "".join(tails)

    def stop(self, timeout: float = 60) -> str:
        """TERM the script, as Ctrl-C would stop it: it stops its children and says so. Its output."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                raise
        return self.output()
