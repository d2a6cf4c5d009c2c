"""Settings from prefixed environment variables (``SMS_…``, ``PAYMENT_…``) over embedded defaults.

A value is coerced to the type of its default. Production refuses embedded defaults: it names the
variable that is missing instead of starting on a laptop database.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class ConfigurationError(RuntimeError):
    pass


def _coerce(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ConfigurationError(f"{name} must be true or false, not {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None
    return raw


def load_settings(
    prefix: str,
    defaults: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Each ``NAME`` of ``defaults`` from ``{prefix}_{NAME}`` if set; then ``overrides`` win."""
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = {}
    explicit: set[str] = set()
    for name, default in defaults.items():
        variable = f"{prefix}_{name}"
        if variable in environ:
            settings[name] = _coerce(variable, environ[variable], default)
            explicit.add(name)
        else:
            settings[name] = default
    for name, value in (overrides or {}).items():
        settings[name] = value
        explicit.add(name)
    settings["EXPLICIT_SETTINGS"] = frozenset(explicit)
    return settings


def require_explicit(prefix: str, settings: Mapping[str, Any], names: list[str]) -> None:
    """Refuse to start when any of ``names`` still has its embedded default (or is empty)."""
    explicit = settings.get("EXPLICIT_SETTINGS", frozenset())
    missing = [f"{prefix}_{name}" for name in names if name not in explicit or not settings.get(name)]
    if missing:
        raise ConfigurationError(
            "production configuration is incomplete; set " + ", ".join(missing) + " (no embedded defaults)"
        )


ENVIRONMENTS = ("development", "testing", "production")

#: A broker URL no transport answers, so a test that publishes without meaning to fails loudly.
TEST_BROKER_URL = "unconfigured-in-tests://"


def load_service_settings(
    prefix: str,
    defaults: Mapping[str, Any],
    production_required: list[str],
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Settings of one service: ``{prefix}_ENV`` checked, production strict, tests on a loud broker."""
    settings = load_settings(prefix, defaults, overrides)
    environment = settings["ENV"]
    if environment not in ENVIRONMENTS:
        raise ConfigurationError(
            f"{prefix}_ENV must be development, testing or production, not {environment!r}"
        )
    if environment == "production":
        require_explicit(prefix, settings, production_required)
    if environment == "testing" and "BROKER_URL" not in settings["EXPLICIT_SETTINGS"]:
        settings["BROKER_URL"] = TEST_BROKER_URL
    return settings
