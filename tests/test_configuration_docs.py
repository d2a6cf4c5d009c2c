"""docs/configuration.md names every setting the services read; the README shows the two commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from payment_service import settings as payment_config
from sms_service import settings as sms_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()


@pytest.mark.parametrize("module", [sms_config, payment_config], ids=["sms", "payment"])
def test_every_setting_is_in_the_configuration_page(module):
    missing = [
        f"{module.PREFIX}_{name}"
        for name in module.DEFAULTS
        if f"`{module.PREFIX}_{name}`" not in CONFIGURATION
    ]
    assert missing == [], f"docs/configuration.md lacks {missing}"


def test_the_configuration_page_names_no_setting_the_services_do_not_read():
    """A renamed or removed setting leaves no stale row behind."""
    read = {f"{m.PREFIX}_{name}" for m in (sms_config, payment_config) for name in m.DEFAULTS}
    rows = [line for line in CONFIGURATION.splitlines() if line.startswith("| `")]
    named = {
        name.strip("` ")
        for row in rows
        for name in row.split("|")[1].replace("/", ",").split(",")
        if name.strip("` ").startswith(("SMS_", "PAYMENT_"))
    }
    assert named - read == set()


def test_readme_shows_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
