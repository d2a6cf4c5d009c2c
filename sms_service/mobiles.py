"""Mainland mobile numbers: validate and normalise what tenants send, mask what we show and log."""

from __future__ import annotations

import re

from sms_service.providers.base import mask_mobile

MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
PREFIXES = ("+86", "0086", "86")

__all__ = ["MAINLAND_MOBILE", "mask_mobile", "normalise_mobile"]


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
