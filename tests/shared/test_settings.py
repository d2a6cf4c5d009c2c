from __future__ import annotations

import pytest

from shared.settings import ConfigurationError, load_settings, require_explicit

DEFAULTS = {"DATABASE_URL": "sqlite:///var/x.sqlite", "POOL": 5, "FLAG": False, "RATIO": 0.5}


def test_values_come_from_prefixed_variables_coerced_to_the_default_type():
    settings = load_settings(
        "SMS", DEFAULTS, environ={"SMS_POOL": "9", "SMS_FLAG": "true", "SMS_RATIO": "0.25", "POOL": "1"}
    )
    assert settings["POOL"] == 9 and settings["FLAG"] is True and settings["RATIO"] == 0.25
    assert settings["DATABASE_URL"] == "sqlite:///var/x.sqlite"


def test_bad_value_names_the_variable():
    with pytest.raises(ConfigurationError, match="SMS_POOL"):
        load_settings("SMS", DEFAULTS, environ={"SMS_POOL": "many"})


def test_production_names_each_missing_variable():
    settings = load_settings("PAYMENT", DEFAULTS, environ={})
    with pytest.raises(ConfigurationError, match="PAYMENT_DATABASE_URL"):
        require_explicit("PAYMENT", settings, ["DATABASE_URL"])
    settings = load_settings("PAYMENT", DEFAULTS, environ={"PAYMENT_DATABASE_URL": "postgresql://db/x"})
    require_explicit("PAYMENT", settings, ["DATABASE_URL"])
