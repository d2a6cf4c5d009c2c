"""The README documents every setting the services read, and the two commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from payment_service import settings as payment_config
from sms_service import settings as sms_config

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("module", [sms_config, payment_config], ids=["sms", "payment"])
def test_every_setting_is_in_the_readme(module):
    missing = [
        f"{module.PREFIX}_{name}" for name in module.DEFAULTS if f"`{module.PREFIX}_{name}`" not in README
    ]
    assert missing == [], f"README lacks {missing}"


def test_readme_shows_the_two_commands():
    assert "make run" in README and "make test" in README
