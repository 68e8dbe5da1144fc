"""Operation counts and energy / latency per hardware profile (see docs/hardware.md).

Per control step (one action):

- synaptic ops (SOP) of layer i = each spike of its presynaptic population x its neuron's
  non-zero outgoing weights (``neurodeploy/snn/sops.py``, the formula training's
  ``sop_budget`` uses too), or spikes x the mean of those where the trains were not kept;
- neuron updates = every neuron of every on-chip layer, every Lava step (P = T + L);
- ANN MACs = the baseline actor's sum of in x out over its layers (obs -> 256 -> 256 -> act);
- E_snn = SOP * (sop_pj + sop_weight_read_pj) + updates * neuron_update_pj (active for
  neurons that spiked, inactive for the rest, where the profile has them);
- E_ann = MACs * (mac_pj + ann_weight_read_pj): at batch 1 every weight is read once per
  inference, and a chip's per-SOP energy (Loihi's) already includes its synaptic memory, so
  the ANN side counts its weight reads too. Each profile names the platform its ANN side
  models (``ann_platform``) and states its assumptions in one line (``assumptions``);
- on-chip latency (upper bound, one core, no overlap) = P * barrier_ns + SOP * sop_ns +
  updates * neuron_update_ns, for profiles that publish those times.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodeploy.errors import ConfigError
from neurodeploy.paths import recipe_dir
from neurodeploy.snn.sops import fanout

STATUSES = ("measured", "simulated", "estimated")
FIELDS = (
    "sop_pj",
    "neuron_update_active_pj",
    "neuron_update_inactive_pj",
    "mac_pj",
    "sop_ns",
    "neuron_update_ns",
    "barrier_ns",
    "ann_weight_read_pj",  # one weight read per MAC (the ANN's weight memory)
    "sop_weight_read_pj",  # one weight read per SOP, where sop_pj is arithmetic only
)


@dataclass
class Profile:
    name: str
    description: str
    figures: dict[str, dict]  # field -> {"value", "status", "citation"}
    ann_platform: str = ""  # what the ANN side models
    assumptions: str = ""  # one line: what each side counts

    def get(self, key: str) -> float | None:
        item = self.figures.get(key)
        return None if item is None else float(item["value"])


def load_profile(name: str) -> Profile:
    folder = recipe_dir("hardware")
    path = folder / f"{name}.toml"
    if Path(name).name != name or not path.is_file():  # a name, not a path out of the folder
        known = sorted(p.stem for p in folder.glob("*.toml"))
        raise ConfigError(
            f"unknown hardware profile {name!r}; available: {', '.join(known)} "
            f"(add one as {folder}/NAME.toml)"
        )
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    figures = {}
    for key in FIELDS:
        if key in data:
            item = data[key]
            if not isinstance(item, dict) or not {"value", "status", "citation"} <= set(item):
                raise ConfigError(f"{path}: {key} needs value, status and citation")
            if item["status"] not in STATUSES:
                raise ConfigError(f"{path}: {key}.status must be one of {', '.join(STATUSES)}")
            value = item["value"]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (math.isfinite(value) and value >= 0)
            ):
                raise ConfigError(f"{path}: {key}.value must be a number >= 0, not {value!r}")
            figures[key] = item
    if "sop_pj" not in figures:
        raise ConfigError(f"{path}: a profile needs at least sop_pj")
    for key in ("ann_platform", "assumptions"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ConfigError(f"{path}: a profile needs {key} (one line)")
    return Profile(
        data.get("name", name), data.get("description", ""), figures, data["ann_platform"],
        data["assumptions"],
    )  # fmt: skip


ANN_HIDDEN = (256, 256)  # the ANN counterpart: TD3's actor (Fujimoto et al., ICML 2018)


def ann_macs(obs_dim: int, act_dim: int, hidden=ANN_HIDDEN) -> int:
    """MACs per inference of an MLP obs -> hidden... -> act (biases not counted)."""
    sizes = [obs_dim, *hidden, act_dim]
    return int(sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)))


def linear_macs(module) -> int:
    """MACs per inference of an ANN actor: the sum of in x out over its ``nn.Linear`` layers."""
    import torch

    layers = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    return int(sum(m.in_features * m.out_features for m in layers))


def mean_fanout(weights: list[np.ndarray]) -> list[float]:
    """Mean non-zero outgoing weights per presynaptic neuron, for each weight matrix [out, in]."""
    return [float(fanout(w).double().mean()) for w in weights]


def count_ops(
    spikes_per_step: list[float],
    layer_sizes: list[int],
    weights: list[np.ndarray],
    lava_steps: int,
    sops_per_layer: list[float] | None = None,
) -> dict:
    """Per control step: SOPs per layer, neuron updates, spiking neurons, from measured spikes.

    ``spikes_per_step`` and ``layer_sizes`` list the encoder first, then each layer;
    ``weights`` are the on-chip weight matrices (encoder -> layer 0, layer 0 -> layer 1, ...).
    ``sops_per_layer``: the exact count (each spike times its own neuron's non-zero outgoing
    weights, ``workload.synaptic_events``) where the caller kept the spike trains; without
    it, spikes times the mean fan-out.
    """
    fanout = mean_fanout(weights)
    sops = [s * f for s, f in zip(spikes_per_step[:-1], fanout, strict=True)]
    if sops_per_layer is not None:
        sops = [float(s) for s in sops_per_layer]
    updates = sum(layer_sizes[1:]) * lava_steps
    return {
        "sops_per_layer": sops,
        "sops": float(sum(sops)),
        "neuron_updates": float(updates),
        "spiking_neuron_steps": float(sum(spikes_per_step[1:])),
    }


def ann_pj(profile: Profile, macs: int) -> float | None:
    """An ANN's energy per inference at batch 1: MACs x (mac_pj + ann_weight_read_pj), in pJ
    (None where the profile has no MAC figure)."""
    mac_pj = profile.get("mac_pj")
    if mac_pj is None:
        return None
    return macs * (mac_pj + (profile.get("ann_weight_read_pj") or 0.0))


def energy(profile: Profile, ops: dict, macs: int, lava_steps: int) -> dict:
    sop_pj = profile.get("sop_pj")
    active = profile.get("neuron_update_active_pj") or 0.0  # a term not published counts zero
    inactive = profile.get("neuron_update_inactive_pj") or 0.0
    sops = ops["sops"] + ops.get("sops_outside_windows", 0.0)  # all the chip performs
    snn = sops * (sop_pj + (profile.get("sop_weight_read_pj") or 0.0))
    spiking = ops["spiking_neuron_steps"] + ops.get("spiking_outside_windows", 0.0)
    snn += spiking * active + (ops["neuron_updates"] - spiking) * inactive
    ann = ann_pj(profile, macs)
    out = {
        "snn_nj": snn / 1e3,
        "ann_nj": None if ann is None else ann / 1e3,
        "snn_over_ann": None if ann is None else snn / ann,
    }
    times = [profile.get(k) for k in ("barrier_ns", "sop_ns", "neuron_update_ns")]
    if all(t is not None for t in times):
        barrier, sop_ns, nu_ns = times
        out["latency_us"] = (
            lava_steps * barrier + sops * sop_ns + ops["neuron_updates"] * nu_ns
        ) / 1e3
    else:
        out["latency_us"] = None
    return out


def profiles_used(names: list[str]) -> list[Profile]:
    return [load_profile(n.strip()) for n in names if n.strip()]


def citations(profile: Profile) -> list[str]:
    return [
        f"{k} = {v['value']} ({v['status']}; {v['citation']})" for k, v in profile.figures.items()
    ]


def _fmt(value, spec="{:.3f}") -> str:
    return "n/a" if value is None else spec.format(value)


def markdown(report: dict) -> str:
    ops = report["ops"]
    lines = [
        f"# Energy report: {report['policy']}",
        "",
        f"Environment {report['env']}, {report['episodes']} episodes, spikes counted on "
        f"{report['counted_on']}. Per control step: {ops['sops']:.0f} synaptic ops in the "
        f"action windows, {ops.get('sops_outside_windows', 0.0):.0f} more in the empty steps "
        f"after them (both counted in the energy), {ops['neuron_updates']:.0f} neuron updates; "
        f"ANN counterpart {report['ann_macs']:,} MACs (an MLP obs -> "
        f"{' -> '.join(map(str, ANN_HIDDEN))} -> act, whatever the SNN's sizes).",
        "",
    ]
    nb = report.get("neurobench")
    if nb and nb.get("available"):
        lines += [
            f"## NeuroBench workload metrics (neurobench {nb['version']}, {nb['samples']} "
            "control steps)",
            "",
            "| effective ACs | effective MACs | activation sparsity | parameters | "
            "footprint (bytes) | connection sparsity |",
            "|---|---|---|---|---|---|",
            f"| {nb['effective_acs']:.1f} | {nb['effective_macs']:.1f} | "
            f"{nb['activation_sparsity']:.4f} | {nb['parameter_count']} | "
            f"{nb['footprint_bytes']} | {nb['connection_sparsity']:.4f} |",
            "",
            f"Model: {nb['model']}. Per control step (one NeuroBench sample).",
            "",
        ]
    elif nb:
        lines += ["## NeuroBench workload metrics", "", nb["reason"], ""]
    for name, row in report["profiles"].items():
        lines += [
            f"## {name}",
            "",
            "| SNN (nJ/inference) | ANN (nJ/inference) | SNN/ANN | on-chip latency/action (us) |",
            "|---|---|---|---|",
            f"| {_fmt(row['snn_nj'])} | {_fmt(row['ann_nj'])} | "
            f"{_fmt(row['snn_over_ann'], '{:.4f}')} | {_fmt(row['latency_us'])} |",
            "",
            f"ANN side: {row.get('ann_platform', '')}. Assumptions: {row.get('assumptions', '')}",
            "",
            *[f"- {c}" for c in row["citations"]],
            "",
        ]
    lines += [
        "## Measured simulation latency (this machine)",
        "",
        "| backend | median ms/control step | p99 ms | control steps/s |",
        "|---|---|---|---|",
    ]
    for backend, lat in report["simulation_latency"].items():
        lines.append(
            f"| {backend} | {lat['latency_ms_median']:.3f} | {lat['latency_ms_p99']:.3f} | "
            f"{lat['control_steps_per_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def write_report(out: Path, report: dict) -> None:
    """energy.json, energy.md, energy.png and rates.png in ``out``: all four or none."""
    import matplotlib

    from neurodeploy.train.checkpoint import write_together

    matplotlib.use("Agg")
    write_together(out, lambda folder: _write_files(folder, report))


def _write_files(out: Path, report: dict) -> None:
    import json

    import matplotlib.pyplot as plt

    from neurodeploy.train.checkpoint import atomic_write_bytes

    atomic_write_bytes(out / "energy.json", json.dumps(report, indent=2).encode())
    atomic_write_bytes(out / "energy.md", markdown(report).encode())

    source = "/".join(Path(report["policy"]).parts[-2:])
    title = f"{report['env']} · {source} · {report.get('method', 'SNN')}"
    names = list(report["profiles"])
    snn = [report["profiles"][n]["snn_nj"] for n in names]
    ann = [report["profiles"][n]["ann_nj"] or 0.0 for n in names]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(len(names))
    ax.bar(x - 0.2, snn, 0.4, label="SNN")
    ax.bar(x + 0.2, ann, 0.4, label="ANN")
    ax.set_xticks(x, names)
    ax.set_yscale("log")
    ax.set_ylabel("nJ per inference")
    ax.set_title(title, fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "energy.png", dpi=100)
    plt.close(fig)
    rates = report["firing_rates"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(list(rates), list(rates.values()))
    ax.set_ylabel("spikes per neuron per timestep")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "rates.png", dpi=100)
    plt.close(fig)
