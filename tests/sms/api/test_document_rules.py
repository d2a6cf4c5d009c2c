"""The rules the SMS document states as patterns are the rules the service enforces."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from sms_service.accepting.templates import BROKEN_PLACEHOLDER, OPT_OUT_INSTRUCTIONS
from sms_service.api.templates import CONTENT, MARKETING_RULE
from sms_service.mobiles import MOBILE_PATTERN, normalise_mobile

DOCUMENTED_CONTENT = re.compile(CONTENT["pattern"])
MARKETING_ENDING = re.compile(MARKETING_RULE["then"]["properties"]["content"]["pattern"])


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="${}a_1 x洗", max_size=14))
def test_the_documented_content_pattern_accepts_exactly_the_contents_the_service_accepts(content):
    assert bool(DOCUMENTED_CONTENT.match(content)) == (BROKEN_PLACEHOLDER.search(content) is None)


@settings(max_examples=500, deadline=None)
@given(st.from_regex(MOBILE_PATTERN, fullmatch=True))
def test_every_mobile_the_pattern_allows_is_a_mobile_the_service_accepts(mobile):
    assert normalise_mobile(mobile) is not None


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=20), st.sampled_from(OPT_OUT_INSTRUCTIONS), st.sampled_from(["", " ", "\n"]))
def test_the_documented_marketing_ending_matches_the_service_rule(text, instruction, trailing):
    content = text + instruction + trailing
    assert MARKETING_ENDING.search(content)
    assert content.rstrip().endswith(OPT_OUT_INSTRUCTIONS)
