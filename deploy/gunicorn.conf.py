"""gunicorn settings shared by ``make run``, the benchmarks and the container images.

Workers: 2 × CPUs + 1, counting the CPUs the container may use (its cgroup quota), not the host's.
SIGTERM: the master stops accepting, lets each worker finish its in-flight requests for up to
``GUNICORN_GRACEFUL_TIMEOUT`` seconds, then exits. Logs: one JSON object per line, access lines included.
Metrics: every worker writes to ``PROMETHEUS_MULTIPROC_DIR`` (a private temporary directory when unset) so
that ``/metrics``, answered by any worker, adds up all of them.
"""

import gc
import math
import os
import shutil
import tempfile
from pathlib import Path

from gunicorn.glogging import Logger

from shared.logging import JsonFormatter


def available_cpus() -> int:
    """The cgroup v2 CPU quota when there is one (Kubernetes limits), else the CPUs this process may use."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", available_cpus() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
# Heartbeat files on tmpfs: a container's overlay filesystem can stall them and get workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None  # empty: no access log
errorlog = "-"
control_socket_disable = True  # gunicorn ≥ 24 would open one under $HOME, which a container may not have


class JsonLogger(Logger):
    """gunicorn's own lines and its access lines as JSON, with the service's redaction."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        formatter = JsonFormatter(str(cfg.proc_name or "gunicorn").split(":")[0])
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log_enabled:
            return
        request_id = next((value for name, value in resp.headers if name.lower() == "x-request-id"), None)
        self.access_log.info(
            "%s %s %s",
            req.method,
            req.path,
            resp.status_code,
            extra={
                "access": True,
                "remote": req.remote_addr[0] if isinstance(req.remote_addr, tuple) else req.remote_addr,
                "method": req.method,
                "path": req.path,
                "status": resp.status_code,
                "bytes": getattr(resp, "sent", None),
                "duration_ms": round(request_time.total_seconds() * 1000, 2),
                "request_id": request_id,
            },
        )


logger_class = JsonLogger
_own_metrics_dir: list[str] = []  # a temporary directory this master made, removed when it exits


def on_starting(server) -> None:
    """Before any worker exists: give the workers an empty multiprocess metrics directory."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):  # left by an earlier run of this container
            stale.unlink()
    else:
        directory = tempfile.mkdtemp(prefix="prometheus-gunicorn-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        _own_metrics_dir.append(directory)


def post_worker_init(worker) -> None:
    """The app is loaded: its objects live as long as the worker, so the cyclic GC's full collections need
    not scan them (a few hundred thousand objects: a pause of milliseconds inside some request)."""
    gc.freeze()


def child_exit(server, worker) -> None:
    """A dead worker's live gauges must stop counting; its counters and histograms stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    for directory in _own_metrics_dir:
        shutil.rmtree(directory, ignore_errors=True)
