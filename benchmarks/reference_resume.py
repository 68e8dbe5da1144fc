"""Does ``benchmarks/reference_run.py`` resume the authors' code exactly after a kill?

The reference Hopper run of issue 15 was killed and resumed once (at step 60,323) before its
one high evaluation (682.4 at 80k). Our own trainer's resume is tested bitwise; this checks
the reference wrapper's the same way, on Pendulum-v1 (cheap): one run straight through, one
SIGKILLed right after a checkpoint taken during the learning phase and then rerun with the
same command. Every evaluation return and every tensor of the last checkpoint must match.

    python benchmarks/reference_resume.py --reference /tmp/ref
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

from neurodeploy.errors import NeurodeployError  # noqa: E402
from neurodeploy.train.checkpoint import safe_torch_load as load  # noqa: E402

RUN = Path(__file__).parent / "reference_run.py"
SETTINGS = ["--env", "Pendulum-v1", "--seed", "3", "--steps", "1600", "--start-steps", "1000",
            "--eval-every", "200", "--eval-episodes", "2", "--checkpoint-every", "400"]  # fmt: skip
KILL_AFTER = 1200  # the checkpoint after 200 updates


def command(reference: Path, out: Path) -> list[str]:
    return [sys.executable, str(RUN), "--reference", str(reference), *SETTINGS, "--out", str(out)]


def checkpoint_step(out: Path) -> int:
    try:
        return int(load(out / "checkpoint" / "state.pt")["counters"]["step"])
    except (OSError, RuntimeError, KeyError, EOFError, NeurodeployError):  # not written yet
        return 0


def evaluations(out: Path) -> list[tuple[str, str]]:
    with (out / "metrics.csv").open() as f:
        return [(r["step"], r["eval_return_mean"]) for r in csv.DictReader(f)]


def tensors(obj, prefix="") -> dict:
    """Every tensor in a nested checkpoint, by its path."""
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    items = (
        obj.items()
        if isinstance(obj, dict)
        else enumerate(obj)
        if isinstance(obj, list | tuple)
        else []
    )
    found = {}
    for key, value in items:
        found.update(tensors(value, f"{prefix}/{key}"))
    return found


def verdict(same: bool) -> str:
    return "identical" if same else "differ"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="checkout at 8d1635f")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        whole, killed = Path(tmp) / "whole", Path(tmp) / "killed"
        subprocess.run(command(args.reference, whole), env=env, check=True, capture_output=True)
        proc = subprocess.Popen(command(args.reference, killed), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        while proc.poll() is None and checkpoint_step(killed) < KILL_AFTER:
            time.sleep(0.05)
        if proc.poll() is not None:
            sys.exit("error: the run finished before it could be killed")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at = checkpoint_step(killed)
        subprocess.run(command(args.reference, killed), env=env, check=True, capture_output=True)
        a, b = evaluations(whole), evaluations(killed)
        ta = tensors(load(whole / "checkpoint" / "state.pt"))
        tb = tensors(load(killed / "checkpoint" / "state.pt"))
    same_tensors = ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    body = "\n".join([
        "The authors' code (madao2333/Proxy-Target-with-PLIF at 8d1635f, LIF, proxy target) run "
        f"through `benchmarks/reference_run.py` on Pendulum-v1 ({' '.join(SETTINGS[2:])}): once "
        f"straight through, once SIGKILLed after its checkpoint at step {at:,} and rerun.",
        "",
        "| check | result |",
        "|---|---|",
        f"| evaluation returns, every row ({len(a)} rows) | {verdict(a == b)} |",
        f"| tensors of the last checkpoint ({len(ta)}) | {verdict(same_tensors)} |",
    ])  # fmt: skip
    print(body)
    write_section("reference_resume", "The reference run resumes exactly (issue 15)", body)


if __name__ == "__main__":
    main()
