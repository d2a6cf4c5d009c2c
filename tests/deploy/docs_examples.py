"""The ```bash examples of the guides in docs/, cut into steps, run as one bash script, output read back.

A step is the commands up to a ``# → …`` comment (the promise: what a reader sees come back) and the comment
itself; the commands after a block's last promise are a step without one. A line ``VAR=value … make run``
says how the guide wants the stack started: it is not run, its assignments go to the stack.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
STACK_LINE = re.compile(r"^((?:[A-Z][A-Z0-9_]*=\S+\s+)*)make run$")
PROMISE = re.compile(r"^# → ?(.*)$")
PROMISE_CONTINUED = re.compile(r"^#\s{2,}(.*)$")
ERROR_CODE = re.compile(r"^(\d{3})\b")
MARKER = "<<docs-step {index}>>"
MARKER_LINE = re.compile(r"\n?<<docs-step (\d+)>>\n")


@dataclass
class Step:
    commands: str
    promise: str | None  # the ``# →`` comment, continuation lines joined; None after a block's last promise
    block: int

    @property
    def error_code(self) -> int | None:
        """The error code the promise starts with (``# → 400 {…}``), else None: success is promised."""
        match = ERROR_CODE.match(self.promise or "")
        return int(match.group(1)) if match else None


@dataclass
class Guide:
    path: Path
    steps: list[Step] = field(default_factory=list)
    stack_env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    def script(self) -> str:
        """One bash script: every step in order, each after a marker line the output is cut at."""
        parts = ["set -euo pipefail"]
        for index, step in enumerate(self.steps):
            parts.append(f"printf '\\n%s\\n' '{MARKER.format(index=index)}'")
            parts.append(step.commands)
        return "\n".join(parts) + "\n"


def guides_with_examples(docs: Path) -> list[Guide]:
    guides = [read_guide(path) for path in sorted(docs.glob("*.md"))]
    return [guide for guide in guides if guide.steps]


def read_guide(path: Path) -> Guide:
    guide = Guide(path)
    for block, text in enumerate(BASH_BLOCK.findall(path.read_text())):
        commands: list[str] = []
        promise: list[str] = []
        for line in text.splitlines():
            if stack := STACK_LINE.match(line.strip()):
                guide.stack_env.update(dict(a.split("=", 1) for a in stack.group(1).split()))
            elif (start := PROMISE.match(line)) and commands:
                promise = [start.group(1)]
                guide.steps.append(Step("\n".join(commands), "", block))
                commands = []
            elif promise and (more := PROMISE_CONTINUED.match(line)):
                promise.append(more.group(1))
            else:
                if promise:
                    guide.steps[-1].promise = " ".join(promise)
                    promise = []
                commands.append(line)
        if promise:
            guide.steps[-1].promise = " ".join(promise)
        if any(line.strip() for line in commands):
            guide.steps.append(Step("\n".join(commands), None, block))
    return guide


@dataclass
class Run:
    returncode: int | None  # None: killed after the timeout
    outputs: list[str]  # what each step printed, by step index; short when the script stopped early
    stderr: str


def run_guide(guide: Guide, cwd: Path, env: dict[str, str], timeout: float) -> Run:
    """Run the guide's script; one still running after ``timeout`` seconds is killed (returncode None)."""
    try:
        done = subprocess.run(
            ["bash", "-c", guide.script()], cwd=cwd, env=env, capture_output=True, timeout=timeout
        )
        returncode, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as expired:
        returncode, stdout, stderr = None, expired.stdout or b"", expired.stderr or b""
    pieces = MARKER_LINE.split(stdout.decode(errors="replace"))  # [before, index, output, index, output, …]
    outputs = [""] * (len(pieces) // 2)
    for index, output in zip(pieces[1::2], pieces[2::2], strict=True):
        outputs[int(index)] = output
    return Run(returncode, outputs, stderr.decode(errors="replace"))


def json_values(output: str) -> list[Any]:
    """Every JSON object printed, in order: curl's answers (no newline between them) and the CLI's."""
    decoder = json.JSONDecoder()
    values, position = [], 0
    while (start := output.find("{", position)) != -1:
        try:
            value, position = decoder.raw_decode(output, start)
        except json.JSONDecodeError:
            position = start + 1
            continue
        values.append(value)
    return values


def envelopes(output: str) -> list[dict[str, Any]]:
    """The API's answers among what was printed: the objects with a ``code`` and a ``message``."""
    return [v for v in json_values(output) if isinstance(v, dict) and {"code", "message"} <= v.keys()]
