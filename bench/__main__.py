"""``python -m bench [--smoke] [--only accept,batch,dispatch,latency,payment,scale]``: run the benchmarks,
print one table and write ``bench/results.md``. Each figure is a ratio against a floor measured in the same
run (or an absolute target), with the absolute numbers beside it."""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import accept, batch, dispatch, latency, payment, scale
from bench.stack import OVERRIDES, machine_description, own_vhost

RESULTS = Path(__file__).with_name("results.md")

BENCHMARKS = {
    "accept": accept.run,
    "batch": batch.run,
    "dispatch": dispatch.run,
    "latency": latency.run,
    "payment": payment.run,
    "scale": scale.run,
}
FULL = {
    "accept": {"seconds": 5, "rounds": 7},
    "batch": {"requests_count": 15},
    "dispatch": {"total": 20_000, "naive_total": 400},
    "latency": {"seconds": 30},
    "payment": {"seconds": 10, "notifications": 4000},
    "scale": {"rows": 10_000_000, "lookups": 1000},
}
#: Tiny sizes: the benchmarks still work (``make test`` runs this); the figures mean nothing.
SMOKE = {
    "accept": {"seconds": 1, "rounds": 1},
    "batch": {"requests_count": 2},
    "dispatch": {"total": 200, "naive_total": 10},
    "latency": {"seconds": 2, "rate": 20},
    "payment": {"seconds": 1, "notifications": 40},
    "scale": {"rows": 20_000, "lookups": 20},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the benchmarks still work")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help="comma-separated: " + ", ".join(BENCHMARKS)
    )
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a service setting for this run (e.g. SMS_PUBLISH_LINGER_MS=0; empty VALUE unsets it)",
    )
    args = parser.parse_args(argv)
    for setting in args.set:
        name, separator, value = setting.partition("=")
        if not separator or not name.isupper():
            parser.error(f"--set takes NAME=VALUE, not {setting!r}")
        OVERRIDES[name] = value
    selected = set(args.only.split(","))
    log_dir = Path(tempfile.mkdtemp(prefix="bench-"))

    unknown = selected - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    sizes = SMOKE if args.smoke else FULL
    results = []
    with own_vhost():
        for name, benchmark in BENCHMARKS.items():
            if name in selected:
                print(f"running {name} …", flush=True)
                try:
                    results.append(benchmark(log_dir, **sizes[name]))
                except Exception as exc:  # the other benchmarks' figures are still worth the table
                    traceback.print_exc()
                    error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                    results.append({"name": name, "rows": [("error", error, "", None, "")], "ok": False})

    report = render(results, smoke=args.smoke)
    print(report)
    output = args.output or (Path(log_dir) / "results.md" if args.smoke else RESULTS)
    output.write_text(report)
    print(f"written to {output}; process logs in {log_dir}")
    if any(row[0] == "error" for result in results for row in result["rows"]):
        return 2  # a benchmark broke: smoke mode exists to notice that
    return 0 if args.smoke or all(result["ok"] for result in results) else 1


def render(results: list[dict], smoke: bool) -> str:
    lines = [
        "# Benchmark results" + (" (smoke mode: sizes too small to mean anything)" if smoke else ""),
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine_description()}",
        "",
        *(
            [f"Settings overridden: {', '.join(f'`{k}={v}`' for k, v in OVERRIDES.items())}", ""]
            if OVERRIDES
            else []
        ),
        "| benchmark | measure | service | floor | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for measure, service, floor, ratio, target in result["rows"]:
            ratio_text = f"{ratio:.2f}" if ratio is not None else ""
            lines.append(
                f"| {result['name']} | {measure} | {service} | {floor} | {ratio_text} | {target} | |"
            )
        verdict = "yes" if result["ok"] else "**no**"
        lines.append(f"| {result['name']} | **every target above** | | | | | {verdict} |")
    for result in results:
        if result.get("notes"):
            lines += ["", f"{result['name']}:", "", *result["notes"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
