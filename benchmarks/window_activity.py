"""Spikes a per-action-reset core fires on Lava outside its T-step windows, which
``bench-energy`` does not count.

With the reset schedule a layer runs P = T + L Lava steps per action (docs/export.md, "Lava
graph and timing"): its T steps of the action's input (the window), then L steps in which
its bias still drives the membrane until its reset. Spikes fired there reach the next layer
outside that layer's window, so the action's output is unchanged (the emulator runs the
windows only and equals Lava bit for bit), but the chip spends synaptic operations and
active neuron updates on them. This runs the quantised core of each zoo policy on Lava
``fixed_pt`` over the whole timeline of N observations and counts both.

    python benchmarks/window_activity.py --observations 16
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

from neurodeploy import zoo  # noqa: E402
from neurodeploy.export import emulator, loihi2  # noqa: E402
from neurodeploy.export.bundle import fidelity_observations, load_policy  # noqa: E402
from neurodeploy.export.lava_graph import LavaNetwork  # noqa: E402
from neurodeploy.export.nir_graph import actor_layers  # noqa: E402
from neurodeploy.lava_compat import import_lava  # noqa: E402
from neurodeploy.snn.sops import fanout  # noqa: E402

POLICIES = ("pendulum-pt-lif", "idp-pt-lif")  # the zoo's per-action-reset policies


def whole_timeline(fixed, frames: np.ndarray) -> tuple[list[np.ndarray], int]:
    """Every layer's spikes [n, B*P] on Lava fixed_pt, the B actions' frames [T, B, n_in]
    fed back to back, each followed by its L empty steps; returns them and P."""
    source = import_lava("lava.proc.io.source")
    sink = import_lava("lava.proc.io.sink")
    run_steps = import_lava("lava.magma.core.run_conditions").RunSteps
    cfg = import_lava("lava.magma.core.run_configs").Loihi2SimCfg
    T, B, n_in = frames.shape
    net = LavaNetwork.from_fixed(fixed, T)
    P = net.period
    data = np.zeros((n_in, B * P), np.int32)
    for k in range(B):
        data[:, k * P : k * P + T] = frames[:, k].T
    feed = source.RingBuffer(data=data)
    sinks = []
    for lif in net.build(feed.s_out):
        sinks.append(sink.RingBuffer(shape=lif.s_out.shape, buffer=B * P))
        lif.s_out.connect(sinks[-1].a_in)
    feed.run(condition=run_steps(num_steps=B * P), run_cfg=cfg(select_tag="fixed_pt"))
    try:
        return [np.asarray(s.data.get()) != 0 for s in sinks], P
    finally:
        feed.stop()


def count(name: str, n_obs: int) -> dict:
    policy = zoo.resolve_source(f"zoo:{name}")  # its policy.pt
    actor, env_id = load_policy(policy)
    fixed, _ = loihi2.quantize(actor_layers(actor), actor.graded_input)
    obs, _ = fidelity_observations(actor, env_id, policy, n_obs)
    with torch.no_grad():
        actor(obs)
    frames = loihi2.chip_input(actor.spike_trains["encoder"].numpy(), actor.graded_input)
    T, B, _ = frames.shape
    trains, P = whole_timeline(fixed, frames)
    windows = emulator.run(fixed, frames, False)  # [T, B, n] per layer: what bench counts
    rows, sops_in, sops_out = [], 0.0, 0.0
    for layer, spikes in enumerate(trains):
        in_window = np.zeros(B * P, bool)
        for k in range(B):  # layer l (from 0) sees the action's frames l + 1 steps late
            in_window[k * P + layer + 1 : k * P + layer + 1 + T] = True
        inside, outside = int(spikes[:, in_window].sum()), int(spikes[:, ~in_window].sum())
        assert inside == int(windows[layer].sum()), "Lava's windows differ from the emulator"
        fan = (
            fanout(torch.from_numpy(fixed[layer + 1].weight)).numpy()
            if layer + 1 < len(fixed)
            else None
        )
        if fan is not None:  # the output layer's spikes leave the chip: no SOPs
            sops_in += float(spikes[:, in_window].sum(axis=1) @ fan)
            sops_out += float(spikes[:, ~in_window].sum(axis=1) @ fan)
        rows.append((layer, inside, outside))
    encoder = frames != 0
    sops_in += float(encoder.sum(axis=(0, 1)) @ fanout(torch.from_numpy(fixed[0].weight)).numpy())
    return {"name": name, "T": T, "P": P, "B": B, "rows": rows, "in": sops_in, "out": sops_out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--observations", type=int, default=16)
    args = parser.parse_args()
    lines = [
        "Spikes of the zoo's per-action-reset policies on Lava `fixed_pt` over the whole "
        f"timeline of {args.observations} replay observations (P Lava steps per action), "
        "split into each layer's T-step window (what the emulator runs and `bench-energy` "
        "counts; equal to it, checked) and the steps outside it (the bias driving the "
        "membrane until its reset). SOPs: spikes x non-zero outgoing quantised weights; the "
        "encoder's input arrives in the windows only.\n",
        "| policy | T / P | layer | spikes in windows | outside | outside / in |",
        "|---|---|---|---|---|---|",
    ]
    totals = []
    for name in POLICIES:
        r = count(name, args.observations)
        for layer, inside, outside in r["rows"]:
            share = f"{100 * outside / inside:.1f} %" if inside else "-"
            lines.append(
                f"| {name} | {r['T']} / {r['P']} | {layer} | {inside} | {outside} | {share} |"
            )
        totals.append(r)
        print(name, r["rows"], f"SOPs in {r['in']:.0f}, outside {r['out']:.0f}")
    lines += ["", "| policy | SOPs in windows | SOPs outside | left out of bench-energy |"]
    lines.append("|---|---|---|---|")
    for r in totals:
        lines.append(
            f"| {r['name']} | {r['in']:.0f} | {r['out']:.0f} | {100 * r['out'] / r['in']:.1f} % |"
        )
    write_section(
        "window_activity", "Spikes outside the action windows on Lava (issue 21)", "\n".join(lines)
    )


if __name__ == "__main__":
    main()
