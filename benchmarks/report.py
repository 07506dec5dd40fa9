"""How long `screening report` takes on a batch results folder, and how much memory it holds.

One run: write the synthetic population (benchmarks/population.py), screen it with
`screening batch` (benchmarks/bench_rules.crit, --workers 2), then, each in its own process:

* the baseline: read results.jsonl and ``json.loads`` every line (the floor: a report must read
  every result once);
* `screening report RUN --out report.html` (reads the results once for counts and the worklist,
  then re-reads each patient's line for its page while writing).

Prints wall and CPU seconds (CPU is what to compare on a shared machine), CPU per patient, the ratio
to the baseline, the peak resident memory of each (``ru_maxrss``) beside the size of results.jsonl,
and the size of the HTML.

    .venv/bin/python benchmarks/report.py               # 10,000 patients
    .venv/bin/python benchmarks/report.py --patients 2000
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCREENING = str(Path(sys.executable).with_name("screening"))
BASELINE = """
import json, sys
n = 0
with open(sys.argv[1], "rb") as stream:
    for line in stream:
        if line.strip():
            json.loads(line)
            n += 1
print(n)
"""


MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
"""


def timed(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one command, measured by a process of its own
    (so that the batch run before it does not count in RUSAGE_CHILDREN)."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], check=True, capture_output=True, text=True)
    wall, cpu, peak = map(float, out.stdout.split())
    return wall, cpu, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from population import write_ndjson

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        population = write_ndjson(tmp / "pop.ndjson", args.patients, args.seed)
        run = tmp / "run"
        subprocess.run([SCREENING, "batch", str(HERE / "bench_rules.crit"), "--patients", str(population),
                        "--out", str(run), "--as-of", "2026-11-25", "--workers", "2"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        results = run / "results.jsonl"
        size = results.stat().st_size / 1e6
        base_s, base_cpu, base_mb = timed([sys.executable, "-c", BASELINE, str(results)])
        html = tmp / "report.html"
        report_s, report_cpu, report_mb = timed([SCREENING, "report", str(run), "--out", str(html)])
        html_mb = html.stat().st_size / 1e6
    n = args.patients
    print(f"patients: {n:,}; results.jsonl {size:.1f} MB")
    print("                                    wall s    CPU s   CPU ms/patient  peak RSS")
    print(f"baseline (json.loads every line):  {base_s:7.2f}  {base_cpu:7.2f}  {1000 * base_cpu / n:13.3f}  {base_mb:5.0f} MB")
    print(f"screening report:                  {report_s:7.2f}  {report_cpu:7.2f}  {1000 * report_cpu / n:13.3f}  "
          f"{report_mb:5.0f} MB   (CPU {report_cpu / base_cpu:.1f} x the baseline)")
    print(f"report.html: {html_mb:.1f} MB ({1000 * html_mb / n:.1f} KB per patient)")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
