"""What an SMS costs: the rendered text, 【sign name】 included, in billed segments (the mainland rule)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from sms_service.accepting.templates import PLACEHOLDER

SINGLE = 70  # characters (not bytes) that fit in one message
PART = 67  # characters per part of a longer one (the rest carries the parts' header)


def rendered(sign_name: str, content: str, variables: Mapping[str, str]) -> str:
    """The text a mobile receives, as the upstreams render it: the sign name in 【】, then the content."""
    text = PLACEHOLDER.sub(lambda match: str(variables.get(match.group(1), "")), content)
    return f"【{sign_name}】{text}"


def billed_segments(text: str) -> int:
    """70 characters or fewer is one segment; longer is ceil(length / 67)."""
    return 1 if len(text) <= SINGLE else math.ceil(len(text) / PART)
