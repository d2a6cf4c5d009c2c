"""Read the deployment files (Dockerfiles, compose, Kubernetes) and the facts of the code they must match:
required settings, queues published to, routes, importable commands."""

from __future__ import annotations

import ast
import importlib
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from flask import Flask

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"

# Variables the deployment sets that are no service setting.
GENERIC_VARIABLES = {"PROMETHEUS_MULTIPROC_DIR", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PATH"}
GENERIC_PREFIXES = ("GUNICORN_",)
# Settings whose values are credentials: never in a ConfigMap or an image.
SECRET_SETTINGS = {
    "DATABASE_URL",
    "BROKER_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "OLD_SECRET_KEYS",
    "RECEIPT_TOKEN",
    "ALIYUN_ACCESS_KEY_ID",
    "ALIYUN_ACCESS_KEY_SECRET",
    "TENCENT_SECRET_ID",
    "TENCENT_SECRET_KEY",
    "TENCENT_SDK_APP_ID",
}


@dataclass(frozen=True)
class ServiceFacts:
    key: str  # "sms" | "payment": names of its compose services, Kubernetes objects, Dockerfile
    package: str
    prefix: str

    @property
    def dockerfile(self) -> Path:
        return DEPLOY / f"Dockerfile.{self.key}"

    def module(self, name: str = "") -> ModuleType:
        return importlib.import_module(f"{self.package}.{name}" if name else self.package)

    @property
    def defaults(self) -> dict[str, Any]:
        return self.module("settings").DEFAULTS

    @property
    def required(self) -> list[str]:
        return list(self.module("settings").PRODUCTION_REQUIRED)

    @property
    def queues(self) -> tuple[str, ...]:
        return tuple(self.module("queues").ALL)

    def known_variable(self, name: str) -> bool:
        if name in GENERIC_VARIABLES or name.startswith(GENERIC_PREFIXES):
            return True
        return name.startswith(self.prefix + "_") and name.removeprefix(self.prefix + "_") in self.defaults


SERVICES = [ServiceFacts("sms", "sms_service", "SMS"), ServiceFacts("payment", "payment_service", "PAYMENT")]


def published_queues(service: ServiceFacts, app: Flask) -> set[str]:
    """Every queue the service's code publishes to: its tasks' default queues, beat's schedule, and each
    ``queue=`` passed anywhere in its source (``send_task``, ``apply_async``, task decorators)."""
    queues_module = service.module("queues")
    found: set[str] = set()
    service.module("tasks")
    celery = app.extensions["celery"]
    # Celery registers @app.task tasks with every app (shared tasks): the service's own are named "<key>.…".
    found |= {task.queue for name, task in celery.tasks.items() if name.startswith(service.key + ".")}
    for entry in celery.conf.beat_schedule.values():
        found.add(entry["options"]["queue"])
    for path in (ROOT / service.package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.keyword) and node.arg == "queue":
                value = node.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.add(value.value)
                elif isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):
                    if value.value.id == "queues":
                        found.add(getattr(queues_module, value.attr))
    return found


def consumed_queues(command: list[str], service: ServiceFacts) -> set[str]:
    """The queues a ``celery … worker`` command consumes: ``-Q``, else every queue the app declares."""
    for flag in ("-Q", "--queues"):
        if flag in command:
            return set(command[command.index(flag) + 1].split(","))
    return set(service.queues)


def check_command(command: list[str], service: ServiceFacts) -> str:
    """Which process a container command starts (api, worker, beat, migrate); fails unless it names real
    modules, files and routes of this service."""
    program = command[0]
    if program == "gunicorn":
        config = command[command.index("-c") + 1]
        assert (ROOT / config).is_file(), f"gunicorn config {config} does not exist"
        module_name, _, factory = command[-1].partition(":")
        assert module_name == service.package, command
        assert factory.endswith("()") and callable(getattr(service.module(), factory[:-2])), command
        return "api"
    if program == "celery":
        app_module = command[command.index("-A") + 1]
        assert app_module == f"{service.package}.worker", command
        assert (ROOT / service.package / "worker.py").is_file()
        kind = "worker" if "worker" in command[2:] else "beat" if "beat" in command[2:] else None
        assert kind is not None, f"neither worker nor beat: {command}"
        if kind == "worker":
            assert consumed_queues(command, service) <= set(service.queues), f"unknown queue in {command}"
        return kind
    if program == "flask":
        assert command[command.index("--app") + 1] == service.package, command
        assert command[-2:] == ["db", "upgrade"], command
        return "migrate"
    if program == "python" and command[1] == "-m":
        module = command[2]
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), f"no module {module}"
        return "module"
    raise AssertionError(f"unexpected command {command}")


def app_routes(app: Flask) -> set[str]:
    return {rule.rule for rule in app.url_map.iter_rules()}


# --- Dockerfiles -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD, else None."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = text[text.index("CMD") + 3 :] if "CMD" in text else ""
        text = text.strip()
        return json.loads(text) if text.startswith("[") else None


def parse_dockerfile(path: Path) -> list[list[Instruction]]:
    """Instructions grouped by build stage; continuation lines joined, comments and the parser directive
    skipped. Raises on anything that is not a Dockerfile instruction."""
    known = {
        "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
        "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
    }  # fmt: skip
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{path}: the last instruction ends with a line continuation"
    stages: list[list[Instruction]] = []
    preamble: list[Instruction] = []
    for text in logical:
        keyword, _, arguments = text.partition(" ")
        keyword = keyword.upper()
        assert keyword in known, f"{path}: unknown instruction {keyword!r}"
        instruction = Instruction(keyword, re.sub(r"\s+", " ", arguments).strip())
        if keyword == "FROM":
            stages.append([instruction])
        elif stages:
            stages[-1].append(instruction)
        else:
            assert keyword == "ARG", f"{path}: {keyword} before the first FROM"
            preamble.append(instruction)
    return stages


def dockerfile_env(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for item in shlex.split(instruction.arguments):
                name, _, value = item.partition("=")
                env[name] = value
    return env


# --- compose ---------------------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, environ: dict[str, str] | None = None) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}`` (the latter must be given)."""
    environ = environ or {}

    def replace(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if environ.get(name):
            return environ[name]
        if op and op.endswith("?"):
            raise KeyError(f"{name} is required: {arg}")
        return arg if op and op.endswith("-") else ""

    return _INTERPOLATION.sub(replace, value).replace("$$", "$")


def compose_environment(service: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: interpolate(str(value), environ) for name, value in env.items()}


# --- Kubernetes ------------------------------------------------------------------------------------


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """The resources a kustomization lists, recursively (what ``kustomize build`` starts from)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    documents: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        assert path.exists(), f"{directory}/kustomization.yaml lists {entry}, which does not exist"
        if path.is_dir():
            documents += kustomize(path)
        else:
            documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def by_kind_and_name(documents: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents}


def read_env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value
    return pairs
