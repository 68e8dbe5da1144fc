"""Closed-loop fidelity of a stateful policy: torch float vs Lava float vs Loihi 2 fixed point.

Exports RUN to lava and loihi2 (bundles inside RUN), flies the same episodes (seeds 0..N-1)
on torch, lava (floating_pt), the fixed-point emulator and loihi2-sim (Lava fixed_pt), and
reports the returns and the spike-level fidelity of the export.

    python benchmarks/stateful_fidelity.py runs/slopes/fixed-k1-s0 --episodes 5
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

from neurodeploy.export.bundle import export_bundle  # noqa: E402
from neurodeploy.hardware.runner import run_policy  # noqa: E402

BACKENDS = (("torch", "lava"), ("lava", "lava"), ("emulator", "loihi2"), ("loihi2-sim", "loihi2"))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", type=Path)
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--observations", type=int, default=200)
    args = parser.parse_args()
    bundles = {}
    for target in ("lava", "loihi2"):
        bundles[target] = args.run / f"bundle-{target}"
        if not bundles[target].exists():
            export_bundle(args.run, target, bundles[target], observations=args.observations)
    fid = {t: json.loads((b / "fidelity.json").read_text()) for t, b in bundles.items()}
    results = {}
    for backend, target in BACKENDS:
        results[backend] = run_policy(bundles[target], backend, args.episodes, seed=0)
    torch_mean = np.mean(results["torch"].returns)
    lines = [
        "| backend | return mean ± std | gap to torch | per-episode returns | control steps/s |",
        "|---|---|---|---|---|",
    ]
    for backend, result in results.items():
        s = result.summary()
        gap = (s["return_mean"] - torch_mean) / abs(torch_mean) * 100
        episodes = ", ".join(f"{r:.1f}" for r in result.returns)
        lines.append(
            f"| {backend} | {s['return_mean']:.1f} ± {s['return_std']:.1f} | {gap:+.1f} % | "
            f"{episodes} | {s['control_steps_per_s']:.0f} |"
        )
    f_vs_x = fid["loihi2"]["float_vs_fixed"]
    body = (
        f"Policy `{args.run}`, {args.episodes} episodes (seeds 0..{args.episodes - 1}), the "
        "same episodes on every backend.\n\n" + "\n".join(lines) + "\n\n"
        f"Export fidelity on a {fid['loihi2']['observations']}-step trajectory (state carried): "
        f"torch vs Lava float identical = {fid['lava']['reference_vs_lava_float']['identical']}; "
        f"emulator vs Lava fixed_pt identical = "
        f"{fid['loihi2']['emulator_vs_lava_fixed']['identical']}; netx vs Lava fixed_pt "
        f"identical = {fid['loihi2']['netx_vs_lava_fixed']['identical']}; float vs fixed point: "
        f"{f_vs_x['identical_output_spike_fraction'] * 100:.1f} % identical output spikes, "
        f"action RMSE {f_vs_x['action_rmse']:.3f} (max {f_vs_x['action_max_error']:.3f})."
    )
    print(body)
    write_section("stateful-fidelity", "Stateful policy in closed loop on Lava (issue 7)", body)


if __name__ == "__main__":
    main()
