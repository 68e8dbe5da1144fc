"""Add a trained policy to the zoo (``zoo/<name>/``): its policy.pt and a card of measured numbers.

The card's numbers are measured here, by the same code users run:

* torch and loihi2-sim returns over ``--episodes`` episodes (episode i reset with seed i,
  as ``neurodeploy run --episodes N --seed 0``), per episode;
* firing rate, SOPs per action and nJ per inference per hardware profile, from
  ``bench-energy`` on the exported loihi2 bundle (spikes counted on the bit-exact emulator);
* the file size, and the provenance: the command that trained it, its recipe and the
  values that differ from the recipe (the ``--set`` values), and the commit.

    python benchmarks/zoo.py pendulum-pt-lif --policy results/pendulum/.../policy.pt \
        --command "neurodeploy sweep pendulum --seeds 0-4 ..."
    python benchmarks/zoo.py --table      # only rewrite docs/results.md's zoo section
    python benchmarks/zoo.py --torch-again   # every card's torch returns measured again
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

from neurodeploy.zoo import NUMERICS

os.environ.update(NUMERICS)  # before torch loads MKL: the cards' torch returns reproduce anywhere

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

from neurodeploy.export.bundle import export_bundle  # noqa: E402
from neurodeploy.hardware.bench import bench_energy  # noqa: E402
from neurodeploy.hardware.runner import run_policy  # noqa: E402
from neurodeploy.train.config import TrainConfig, resolve  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "zoo"


def returns(policy: Path, backend: str, episodes: int, hover: bool = False) -> dict:
    """Returns per episode; for QuadHover also the hover error (as benchmarks/quad.py: mean
    distance to the target over the last 100 of 500 steps, a crash staying where it fell)."""
    distances: dict[int, list[float]] = {}

    def observe(episode, obs):
        distances.setdefault(episode, []).append(float(np.linalg.norm(obs[:3])))

    result = run_policy(policy, backend, episodes, seed=0, observe=observe if hover else None)
    values = [float(r) for r in result.returns]
    out = {"mean": float(np.mean(values)), "std": float(np.std(values)), "per_episode": values}
    if hover:
        from quad_bc import tail_error

        out["hover_error_m"] = float(np.mean([tail_error(d) for d in distances.values()]))
    return out


def provenance(run_config: Path, recipe: str, command: str) -> dict:
    cfg = TrainConfig.from_dict(tomllib.loads(run_config.read_text()), str(run_config))
    base, _ = resolve(recipe, {})
    changed = {k: v for k, v in cfg.to_dict().items() if base.to_dict()[k] != v}
    from _results import head_commit

    return {"command": command, "recipe": recipe, "set": changed, "card_commit": head_commit()}


def policy_step(policy: Path) -> int | None:
    """The evaluation step of the policy file: the last row for policy.pt, the best for best.pt."""
    import csv

    with (policy.parent / "metrics.csv").open() as f:
        rows = [(int(r["step"]), float(r["eval_return_mean"])) for r in csv.DictReader(f)]
    if not rows:
        return None
    return max(rows, key=lambda r: r[1])[0] if policy.name == "best.pt" else rows[-1][0]


def table() -> None:
    """Record every card's numbers in docs/results.md (measured when the card was made)."""
    from _results import write_section

    lines = ["| entry | env | torch return | loihi2-sim return | hover error m (torch / sim) "
             "| firing | SOPs/action | loihi2 nJ SNN / ANN | command |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for card in sorted(ZOO.glob("*/card.json")):
        c = json.loads(card.read_text())
        t, sim = c["returns"]["torch"], c["returns"]["loihi2-sim"]
        hover = (f"{t['hover_error_m']:.3f} / {sim['hover_error_m']:.3f}"
                 if "hover_error_m" in t else "-")  # fmt: skip
        lines.append(
            f"| {c['name']} | {c['env']} | {t['mean']:.1f} ± {t['std']:.1f} | "
            f"{sim['mean']:.1f} ± {sim['std']:.1f} | {hover} | {100 * c['firing_rate']:.1f} % | "
            f"{c['sops_per_action']:,.0f} | {c['nj_per_inference']['loihi2']:.1f} / "
            f"{c['ann_nj_per_inference']['loihi2']:.1f} | `{c['provenance']['command']}` |"
        )
    body = (
        "Each entry measured by `python benchmarks/zoo.py NAME --policy ...` when its card "
        "was made: 10 episodes (episode i reset with seed i) on torch and loihi2-sim, energy "
        "from bench-energy on the exported loihi2 bundle (3 episodes). Torch returns under "
        "MKL's reproducible numerics on one thread (`neurodeploy.zoo.NUMERICS`; measured again "
        "with `python benchmarks/zoo.py --torch-again`): MKL documents that mode as giving "
        "the same bits on every x86 CPU; without it, QuadHover's torch returns differed by up "
        "to 0.15 % per episode between two machines (one checked here)."
        "\n\n" + "\n".join(lines)
    )
    print(body)
    write_section("zoo", "Policy zoo (issue 16)", body)


def measure_torch_again() -> None:
    """Measure every card's torch returns again (same episodes, under NUMERICS), keeping
    the rest of the card: for cards measured before their numerics were fixed."""
    for path in sorted(ZOO.glob("*/card.json")):
        card = json.loads(path.read_text())
        hover = "hover_error_m" in card["returns"]["torch"]
        card["returns"]["torch"] = returns(
            path.parent / "policy.pt", "torch", card["episodes"], hover
        )
        card["torch_numerics"] = NUMERICS
        path.write_text(json.dumps(card, indent=2) + "\n")
        print(f"{card['name']}: torch {card['returns']['torch']['mean']:.2f}")
    table()


def main() -> None:
    if sys.argv[1:] == ["--table"]:
        table()
        return
    if sys.argv[1:] == ["--torch-again"]:
        measure_torch_again()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--policy", type=Path, required=True, help="policy.pt of a finished run")
    parser.add_argument("--recipe", required=True, help="the recipe it was trained from")
    parser.add_argument("--command", required=True, help="the exact command that trained it")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--min-return", type=float, help="refuse a policy below this return")
    parser.add_argument("--max-hover-error", type=float, help="QuadHover: refuse above this (m)")
    args = parser.parse_args()
    run_config = args.policy.parent / "config.toml"
    if not run_config.is_file():
        sys.exit(f"error: {run_config} is missing; the policy must come from a run directory")
    cfg = tomllib.loads(run_config.read_text())
    dest = ZOO / args.name
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        entry = tmp / args.name
        entry.mkdir()
        shutil.copy2(args.policy, entry / "policy.pt")
        hover = "QuadHover" in cfg["env"]
        torch_returns = returns(entry / "policy.pt", "torch", args.episodes, hover)
        bundle = export_bundle(entry / "policy.pt", "loihi2", tmp / "bundle", observations=128)
        sim_returns = returns(bundle, "loihi2-sim", args.episodes, hover)
        worst = min(torch_returns["mean"], sim_returns["mean"])
        if args.min_return is not None and worst < args.min_return:
            sys.exit(f"error: {args.policy} returns {worst:.1f} < --min-return {args.min_return}")
        if args.max_hover_error is not None:
            error = max(r["hover_error_m"] for r in (torch_returns, sim_returns))
            if error > args.max_hover_error:
                sys.exit(f"error: hover error {error:.3f} m > --max-hover-error")
        energy = bench_energy(bundle, episodes=3, out=tmp / "energy", latency_episodes=1)
        rates = energy["firing_rates"]
        card = {
            "name": args.name,
            "env": cfg["env"],
            "method": cfg["algo"],
            "neuron": cfg["neuron"],
            "mode": cfg.get("mode", "reset"),
            "seed": cfg["seed"],
            "steps": cfg["steps"],
            "episodes": args.episodes,
            "eval_seed": 0,
            "returns": {"torch": torch_returns, "loihi2-sim": sim_returns},
            "torch_numerics": NUMERICS,
            "firing_rate": float(np.mean([v for k, v in rates.items() if k != "encoder"])),
            "firing_rates": rates,
            "sops_per_action": energy["ops"]["sops"],
            "nj_per_inference": {n: p["snn_nj"] for n, p in energy["profiles"].items()},
            "ann_nj_per_inference": {n: p["ann_nj"] for n, p in energy["profiles"].items()},
            "file_bytes": (entry / "policy.pt").stat().st_size,
            "provenance": {
                **provenance(run_config, args.recipe, args.command),
                "policy_file": args.policy.name,
                "policy_step": policy_step(args.policy),
            },  # fmt: skip
        }
        (entry / "card.json").write_text(json.dumps(card, indent=2) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(exist_ok=True)
        shutil.copytree(entry, dest)
    print(json.dumps({k: card[k] for k in ("name", "returns", "sops_per_action")}, indent=1))
    table()


if __name__ == "__main__":
    main()
