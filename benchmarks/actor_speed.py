"""Forward and forward+backward speed of the PT-LIF actor against the reference SNN_Actor.

Hopper sizes (obs 11, act 3), batch 256, T=5, hidden 256-256, population 10.

    python benchmarks/actor_speed.py --reference /path/to/Proxy-Target-with-PLIF
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from neurodeploy.snn import ActorConfig, build_actor, kernels

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from _results import write_section  # noqa: E402

OBS, ACT, BATCH = 11, 3, 256


def timed(fn, repeats: int) -> float:
    for _ in range(5):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def measure(actor, obs, repeats):
    def forward():
        with torch.no_grad():
            actor(obs)

    def forward_backward():
        actor.zero_grad(set_to_none=True)
        actor(obs).pow(2).mean().backward()

    return timed(forward, repeats), timed(forward_backward, repeats)


def reference_actor(path: str):
    sys.path.insert(0, path)
    from SAN import SNN_Actor  # the reference implementation, never committed here

    return SNN_Actor(OBS, ACT, 1.0, "LIF", device=torch.device("cpu"))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reference", required=True, help="checkout of Proxy-Target-with-PLIF")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.manual_seed(0)
    obs = torch.randn(BATCH, OBS)
    ours = build_actor(ActorConfig(OBS, ACT, [-1.0] * ACT, [1.0] * ACT))
    ref = reference_actor(args.reference)
    candidates = {
        "neurodeploy, eager": (ours, False),
        "neurodeploy, torch.compile kernels": (ours, True),
        "reference SNN_Actor (8d1635f)": (ref, False),
    }
    best: dict[str, tuple[float, float]] = {}
    for _ in range(3):  # interleave to even out machine noise; keep the best
        for name, (actor, compiled) in candidates.items():
            kernels.set_compile(compiled)
            f, fb = measure(actor, obs, args.repeats)
            old = best.get(name, (float("inf"), float("inf")))
            best[name] = (min(old[0], f), min(old[1], fb))
    rf, rfb = best["reference SNN_Actor (8d1635f)"]
    lines = [
        "| actor | forward, no grad (ms) | forward+backward (ms) | speed-up fwd / fwd+bwd |",
        "|---|---|---|---|",
    ]
    for name, (f, fb) in best.items():
        lines.append(f"| {name} | {f:.2f} | {fb:.2f} | {rf / f:.2f}x / {rfb / fb:.2f}x |")
    body = (
        "PT-LIF actor, Hopper sizes (obs 11, act 3), batch 256, T=5, hidden 256-256, "
        f"population 10. Best of 3 x {args.repeats} repeats, interleaved. "
        "Goals: 3x (no-grad forward) and 2x (forward+backward) over the reference.\n\n"
        + "\n".join(lines)
    )
    print(body)
    write_section("actor_speed", "Actor speed (issue 3)", body)


if __name__ == "__main__":
    main()
