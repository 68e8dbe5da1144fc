"""Wall time of the default test suite (what ``make test`` and CI run), repeated.

python benchmarks/suite_time.py --repeats 2
python benchmarks/suite_time.py --repeats 1 --threads 1,2

Runs ``python -m pytest -q`` from the repository root, as the Makefile does, once per repeat
and per torch thread count (``OMP_NUM_THREADS``; ``default`` leaves it unset, as make test
does: torch then takes one thread per core), one after the other; run it with nothing else
on the machine. Records each run's wall time, its outcome line and its slowest tests. Issue 15
asks for the default run to stay under 15 minutes; the slow-marked tests (``make test-all``)
are not counted.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import head_commit, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 15 * 60


def run_suite(slowest: int, threads: str) -> tuple[float, str, list[str]]:
    """One default run with ``threads`` torch threads per process: its wall time, pytest's
    outcome line and its slowest tests."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--durations={slowest}"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if threads != "default":
        env["OMP_NUM_THREADS"] = threads
    start = time.perf_counter()
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    lines = out.stdout.splitlines()
    summary = next((s.strip("= ") for s in reversed(lines) if " in " in s and "passed" in s), "")
    if out.returncode != 0 or not summary:
        tail = "\n".join(lines[-30:])
        raise SystemExit(f"the suite failed (exit {out.returncode}); its last lines:\n{tail}")
    start_at = next(i for i, s in enumerate(lines) if "slowest" in s) + 1
    durations = [s for s in lines[start_at:] if re.match(r"^\d+\.\d+s ", s)][:slowest]
    return wall, summary, durations


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--slowest", type=int, default=8)
    parser.add_argument(
        "--threads", default="default", help="OMP_NUM_THREADS values (1,2) or default (unset)"
    )
    args = parser.parse_args()
    threads = args.threads.split(",")
    if not all(t == "default" or (t.isdigit() and int(t) >= 1) for t in threads):
        raise SystemExit(f"--threads {args.threads!r}: expected default or counts such as 1,2")
    if args.repeats < 1 or args.slowest < 1:
        raise SystemExit("--repeats and --slowest must be at least 1")
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    if dirty:
        raise SystemExit("the working tree has uncommitted changes: commit them first, so the "
                         "measured suite is a commit's")  # fmt: skip
    commit = head_commit()
    runs = []  # (repeat, threads, wall, summary, slowest)
    for i in range(args.repeats):
        for t in threads:
            runs.append((i + 1, t, *run_suite(args.slowest, t)))
            print(f"run {i + 1}, {t} threads: {runs[-1][2]:.1f} s ({runs[-1][3]})", flush=True)
    walls = [r[2] for r in runs]
    rows = "\n".join(
        f"| {i} | {t} | {w:,.1f} | {w / TARGET_S:.2f} | {s} |" for i, t, w, s, _ in runs
    )
    slowest = "\n".join(f"    {d}" for d in runs[0][4])
    body = f"""
Commit {commit}; the default suite (`-m 'not slow'`), one run after another, nothing else
running. Target (issue 15): under {TARGET_S} s.

| run | torch threads | wall s | of 15 min | pytest |
|---|---|---|---|---|
{rows}

Longest {max(walls):,.1f} s. Slowest tests of the first run ({runs[0][1]} threads):

{slowest}
"""
    write_section("suite_time", "Default test suite time (issue 15)", body)


if __name__ == "__main__":
    main()
