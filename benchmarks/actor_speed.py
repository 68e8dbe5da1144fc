"""Forward and forward+backward speed of the PT-LIF actor against the reference SNN_Actor.

Hopper sizes (obs 11, act 3), batch 256, T=5, hidden 256-256, population 10.

    python benchmarks/actor_speed.py --reference /path/to/Proxy-Target-with-PLIF
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from neurodeploy.snn import ActorConfig, build_actor

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
    rows = {}
    for _ in range(2):  # interleave to even out machine noise; keep the best
        for name, actor in (("neurodeploy", ours), ("reference", ref)):
            f, fb = measure(actor, obs, args.repeats)
            best = rows.get(name, (float("inf"), float("inf")))
            rows[name] = (min(best[0], f), min(best[1], fb))
    (of, ofb), (rf, rfb) = rows["neurodeploy"], rows["reference"]
    body = (
        "PT-LIF actor, Hopper sizes (obs 11, act 3), batch 256, T=5, hidden 256-256, population 10. "
        f"Best of 2 x {args.repeats} repeats.\n\n"
        "| actor | forward, no grad (ms) | forward+backward (ms) |\n|---|---|---|\n"
        f"| neurodeploy | {of:.2f} | {ofb:.2f} |\n| reference SNN_Actor (8d1635f) | {rf:.2f} | {rfb:.2f} |\n"
        f"| **speed-up** | **{rf / of:.2f}x** (goal 3x) | **{rfb / ofb:.2f}x** (goal 2x) |\n"
    )
    print(body)
    write_section("actor_speed", "Actor speed (issue 3)", body)


if __name__ == "__main__":
    main()
