"""Run schemathesis over every operation of a service, in-process (WSGI) or over HTTP, and collect failures.

Each operation gets generated cases in positive mode with a valid key, negative mode (invalid data) with a
valid key, and positive mode with an invalid key. Every answer must be a non-5xx that matches the OpenAPI
document, and, except for the upstream-facing endpoints, the ``{code, data, message}`` envelope.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

CHECKS = [not_a_server_error, response_schema_conformance]
# Upstream-facing endpoints answer in the upstream's own format on success (Aliyun/Tencent acks) or always
# (the payment notifications): the envelope rule does not apply to them.
UPSTREAM_FORMAT_ALWAYS = ("/api/v1/payment/notify/",)
UPSTREAM_FORMAT_ON_SUCCESS = ("/api/v1/sms/receipts/",)


@dataclass(frozen=True)
class Pass:
    """One pass over every operation: how to generate and which key to send. ``expects_acceptance``: the
    data is valid and so is the key, so the service should accept much of it (see validation_mismatches)."""

    mode: GenerationMode
    api_key: str
    examples: int
    expects_acceptance: bool = False
    # "METHOD /path" → {path parameter or body field: value}: ids of things that exist (a template to send
    # with), without which every valid case of that operation would only find nothing (404).
    existing: dict[str, dict[str, str]] = field(default_factory=dict)
    # body field name → a valid value no generator can make (a parseable RSA key), put in place of the
    # generated string of that field at any depth (a "***" or null is left as generated).
    supplied: dict[str, str] = field(default_factory=dict)
    # "METHOD /path" → a function turning the generated case into what an upstream signs and sends (its
    # headers, body and path), for operations that accept only that (see tests.reliability.notify_cases).
    signed_by_upstream: dict[str, Callable[[Case], None]] = field(default_factory=dict)


# Answers that say nothing about the data sent (schemathesis leaves them out of the same reckoning).
NOT_ABOUT_THE_DATA = {401, 403, 404, 409, 429}


@dataclass
class FuzzReport:
    cases: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    # statuses per operation of the passes that expect acceptance
    accepting: dict[str, dict[int, int]] = field(default_factory=dict)

    def record(self, status: int, operation: str | None = None) -> None:
        self.cases += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if operation is not None:
            counts = self.accepting.setdefault(operation, {})
            counts[status] = counts.get(status, 0) + 1

    def validation_mismatches(self) -> dict[str, dict[int, int]]:
        """Operations whose valid generated data the service mostly refuses as invalid: the document does not
        carry the rules the service enforces. The rule of schemathesis' "schema validation mismatch" warning:
        no case accepted, and 10 % or more of the 4xx answers are about the data (not 401/403/404/409/429)."""
        mismatches = {}
        for operation, counts in self.accepting.items():
            if any(status < 400 for status in counts):
                continue
            client_errors = {status: n for status, n in counts.items() if 400 <= status < 500}
            about_data = sum(n for status, n in client_errors.items() if status not in NOT_ABOUT_THE_DATA)
            considered = about_data + client_errors.get(404, 0)
            if considered and about_data / considered >= 0.1:
                mismatches[operation] = counts
        return mismatches


def envelope_problem(path: str, status: int, body: bytes) -> str | None:
    """Why an answer is not the envelope (None when it is, or when the endpoint speaks an upstream format)."""
    if path.startswith(UPSTREAM_FORMAT_ALWAYS) or (
        path.startswith(UPSTREAM_FORMAT_ON_SUCCESS) and status == 200
    ):
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return f"not JSON: {body[:120]!r}"
    if not isinstance(payload, dict) or set(payload) != {"code", "data", "message"}:
        return f"not the envelope: {body[:160]!r}"
    expected = 0 if status == 200 else status
    if payload["code"] != expected or not isinstance(payload["message"], str) or not payload["message"]:
        return f"code {payload['code']!r} for HTTP {status}"
    return None


def fuzz(schema, passes: list[Pass], base_url: str | None = None, seed: int = 20260510) -> FuzzReport:
    """Generate and send cases for every operation of ``schema``; collect what fails, never stop early."""
    report = FuzzReport()
    session = requests.Session() if base_url else None
    operations = [result.ok() for result in schema.get_all_operations()]
    for fuzz_pass in passes:
        for operation in operations:
            run = _runner(operation, fuzz_pass, report, base_url, session)
            run._hypothesis_internal_use_seed = seed  # reproducible runs
            try:
                run()
            except Unsatisfiable:
                pass  # nothing to make invalid (e.g. GET /me in negative mode): the other passes cover it
    return report


def _supply(body, supplied: dict[str, str]) -> None:
    stack = [body]
    while supplied and stack:
        item = stack.pop()
        if isinstance(item, dict):
            for name, value in item.items():
                if name in supplied and isinstance(value, str) and value != "***":
                    item[name] = supplied[name]
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _runner(operation, fuzz_pass: Pass, report: FuzzReport, base_url: str | None, session):
    headers = {"X-Api-Key": fuzz_pass.api_key}
    transport = {"base_url": base_url, "session": session, "timeout": 30} if base_url else {}

    @settings(
        max_examples=fuzz_pass.examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=fuzz_pass.mode))
    def run(case) -> None:
        for name, value in fuzz_pass.existing.get(f"{case.method} {case.path}", {}).items():
            if name in (case.path_parameters or {}):
                case.path_parameters[name] = value
            elif isinstance(case.body, dict) and name in case.body:
                case.body[name] = value
        _supply(case.body, fuzz_pass.supplied)
        sign = fuzz_pass.signed_by_upstream.get(f"{case.method} {case.path}")
        if sign is not None:
            sign(case)
        response = case.call(headers=headers, **transport)
        operation_label = f"{case.method} {case.path}" if fuzz_pass.expects_acceptance else None
        report.record(response.status_code, operation_label)
        label = f"{case.method} {case.formatted_path} [{fuzz_pass.mode.value}]"
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except Exception as exc:  # schemathesis raises a group of check failures
            report.failures.append(f"{label} → {response.status_code}: {str(exc)[:600]}")
            return
        problem = envelope_problem(case.path, response.status_code, response.content)
        if problem:
            report.failures.append(f"{label} → {response.status_code}: {problem}")

    return run
