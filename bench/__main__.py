"""``python -m bench [--smoke] [--only accept,dispatch]``: run the benchmarks, print one table and write
``bench/results.md``. Each figure is a ratio against a floor measured in the same run."""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench import accept, dispatch
from bench.stack import machine_description

RESULTS = Path(__file__).with_name("results.md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the benchmarks still work")
    parser.add_argument("--only", default="accept,dispatch")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    selected = set(args.only.split(","))
    log_dir = Path(tempfile.mkdtemp(prefix="bench-"))

    results = []
    if "accept" in selected:
        results.append(accept.run(log_dir, seconds=1 if args.smoke else 10, rounds=1 if args.smoke else 2))
    if "dispatch" in selected:
        results.append(
            dispatch.run(
                log_dir,
                total=200 if args.smoke else 20_000,
                naive_total=10 if args.smoke else 400,
                worker_concurrency=4,
            )
        )

    report = render(results, smoke=args.smoke)
    print(report)
    output = args.output or (Path(log_dir) / "results.md" if args.smoke else RESULTS)
    output.write_text(report)
    print(f"written to {output}; process logs in {log_dir}")
    return 0 if args.smoke or all(result["ok"] for result in results) else 1


def render(results: list[dict], smoke: bool) -> str:
    lines = [
        "# Benchmark results" + (" (smoke mode: sizes too small to mean anything)" if smoke else ""),
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine_description()}",
        "",
        "| benchmark | measure | service | floor | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for measure, service, floor, ratio, target in result["rows"]:
            ratio_text = f"{ratio:.2f}" if ratio is not None else ""
            lines.append(
                f"| {result['name']} | {measure} | {service} | {floor} | {ratio_text} | {target} | |"
            )
        lines[-1] = lines[-1][: -len("| |")] + ("| yes |" if result["ok"] else "| **no** |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
