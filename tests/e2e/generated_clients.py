"""Clients generated from the exported OpenAPI documents by a third-party generator, openapi-python-client,
as tenants and franchise backends generate theirs; and the check that an answer lost nothing in parsing."""

from __future__ import annotations

import importlib
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.e2e.processes import BIN, ROOT


def generate_client(document: str, package: str, out_dir: Path) -> ModuleType:
    """Generate the client of ``openapi/<document>`` into ``out_dir/<package>`` and import it.

    The generator's warnings (a schema it could not read, a type it left untyped) fail the test: each one
    is a part of the document a client cannot use.
    """
    config = out_dir / "generator.yaml"
    config.write_text("post_hooks: []\n")  # no formatter over the generated code
    result = subprocess.run(
        [
            str(BIN / "openapi-python-client"), "generate",
            "--path", str(ROOT / "openapi" / document),
            "--meta", "none",
            "--output-path", str(out_dir / package),
            "--config", str(config),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    sys.path.insert(0, str(out_dir))
    importlib.invalidate_caches()
    return importlib.import_module(package)


def assert_nothing_lost(raw: Any, parsed: Any, where: str = "") -> None:
    """The parsed model, turned back into JSON (``to_dict``), holds every field of the raw answer with the
    same value: nothing was dropped as unknown, nothing read as another type. Times compare as instants."""
    if hasattr(parsed, "to_dict"):
        parsed = parsed.to_dict()
    if isinstance(raw, dict):
        assert isinstance(parsed, dict), (where, raw, parsed)
        assert set(parsed) == set(raw), (where, sorted(raw), sorted(parsed))
        for key, value in raw.items():
            assert_nothing_lost(value, parsed[key], f"{where}.{key}")
    elif isinstance(raw, list):
        assert isinstance(parsed, list) and len(parsed) == len(raw), (where, raw, parsed)
        for index, (item, parsed_item) in enumerate(zip(raw, parsed, strict=True)):
            assert_nothing_lost(item, parsed_item, f"{where}[{index}]")
    elif isinstance(raw, str) and isinstance(parsed, str) and raw != parsed:
        assert datetime.fromisoformat(raw) == datetime.fromisoformat(parsed), (where, raw, parsed)
    else:
        assert raw == parsed and type(raw) is type(parsed), (where, raw, parsed)
