"""Mainland mobile numbers: validate and normalise what tenants send, mask what we show and log."""

from __future__ import annotations

import re

MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
PREFIXES = ("+86", "0086", "86")
# What the API documents a mobile as: the 11 digits, optionally behind one of PREFIXES (spaces and dashes,
# which are also ignored, are left out of the document).
MOBILE_PATTERN = r"^(\+86|0086|86)?1[3-9][0-9]{9}$"


def mask_mobile(mobile: str) -> str:
    """138****8000: enough to tell numbers apart in logs without recording who was texted."""
    if len(mobile) < 8:
        return "****"
    return f"{mobile[:3]}****{mobile[-4:]}"


def normalise_mobile(raw: str) -> str | None:
    """The 11-digit number for ``13800138000``, ``+8613800138000``, ``008613800138000`` or
    ``8613800138000``; None when it is not a mainland mobile. Spaces and dashes are ignored."""
    number = re.sub(r"[\s-]", "", str(raw))
    if MAINLAND_MOBILE.match(number):
        return number
    for prefix in PREFIXES:
        if number.startswith(prefix) and MAINLAND_MOBILE.match(number[len(prefix) :]):
            return number[len(prefix) :]
    return None
