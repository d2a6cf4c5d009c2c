"""Load generation outside the service process: wrk with a Lua script that varies the mobile."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int


LUA_TEMPLATE = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  n = 0
  headers = %(headers)s
end
function request()
  n = n + 1
  local mobile = string.format("1%(prefix)s%%02d%%06d", tid, n %% 1000000)
  local body = string.gsub(%(body)s, "MOBILE", mobile)
  return wrk.format("POST", "%(path)s", headers, body)
end
"""


def lua_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=True)


def wrk_post(
    url: str,
    path: str,
    body_template: str,
    headers: dict[str, str],
    seconds: int,
    connections: int = 16,
    threads: int = 2,
    mobile_prefix: str = "38",
) -> LoadResult:
    """POST ``body_template`` (``MOBILE`` replaced by a fresh number per request) for ``seconds``."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    lua_headers = "{" + ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()) + "}"
    script = LUA_TEMPLATE % {
        "headers": lua_headers,
        "body": lua_string(body_template),
        "path": path,
        "prefix": mobile_prefix,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        script_path = handle.name
    try:
        return _run_wrk(url, script_path, seconds, connections, threads)
    finally:
        Path(script_path).unlink(missing_ok=True)


REPLAY_LUA = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  requests = {}
  n = 0
  local line_number = 0
  for line in io.lines(%(path)s) do
    line_number = line_number + 1
    if line_number %% %(threads)d == tid - 1 then
      local path, header_text, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = {}
      for name, value in header_text:gmatch("([^\1:]+):([^\1]*)") do
        headers[name] = value
      end
      requests[#requests + 1] = wrk.format("POST", path, headers, body)
    end
  end
end
function request()
  n = n + 1
  return requests[(n - 1) %% #requests + 1]
end
"""


def wrk_replay(
    url: str,
    requests: list[tuple[str, dict[str, str], bytes]],
    seconds: int,
    connections: int = 16,
    threads: int = 2,
) -> LoadResult:
    """POST each ``(path, headers, body)`` in turn, each wrk thread its own share; after its last one a
    thread starts its share again (for notifications: redeliveries)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    if len(requests) < threads:
        raise ValueError(f"{len(requests)} request(s) to replay; each of the {threads} threads needs one")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as handle:
        for path, headers, body in requests:
            header_text = "\1".join(f"{name}:{value}" for name, value in headers.items())
            handle.write(f"{path}\t{header_text}\t{body.decode('utf-8')}\n")
        data_path = handle.name
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(REPLAY_LUA % {"path": lua_string(data_path), "threads": threads})
        script_path = handle.name
    try:
        return _run_wrk(url, script_path, seconds, connections, threads)
    finally:
        Path(script_path).unlink(missing_ok=True)
        Path(data_path).unlink(missing_ok=True)


def _run_wrk(url: str, script_path: str, seconds: int, connections: int, threads: int) -> LoadResult:
    command = ["wrk", "--latency", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s"]
    completed = subprocess.run(
        [*command, "-s", script_path, url], capture_output=True, text=True, timeout=seconds + 60
    )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return parse_wrk(completed.stdout)


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> LoadResult:
    def percentile(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+(\S+)", output, re.M)
        if not match:
            raise ValueError(f"no {label}% line in wrk output:\n{output}")
        return _duration_ms(match.group(1))

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors_match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = sum(int(value) for value in errors_match.groups()) if errors_match else 0
    return LoadResult(
        requests_per_second=rps,
        p50_ms=percentile("50"),
        p99_ms=percentile("99"),
        requests=total,
        non_2xx=int(non_2xx_match.group(1)) if non_2xx_match else 0,
        errors=errors,
    )
