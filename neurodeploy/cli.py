"""Thin commands: each parses its arguments and calls one function of a stage."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from neurodeploy.errors import ConfigError, NeurodeployError

cli = typer.Typer(
    help="Train spiking actors with proxy-target TD3, export them through NIR to Loihi 2 / Lava, "
    "and measure them in closed loop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


@cli.command()
def train(
    recipe: Annotated[
        str | None, typer.Argument(help="recipe name in train/ or a TOML path")
    ] = None,
    env: Annotated[str | None, typer.Option(help="gymnasium environment id")] = None,
    algo: Annotated[str | None, typer.Option(help="pt-td3 | td3 | bc")] = None,
    neuron: Annotated[str | None, typer.Option(help="lif | clif | dn | loihi | ann")] = None,
    steps: Annotated[int | None, typer.Option(help="environment steps in total")] = None,
    seed: Annotated[int | None, typer.Option(help="the run's seed (default 0)")] = None,
    seeds: Annotated[
        str | None,
        typer.Option(help="train several seeds in one process, vectorised: 0-4 or 0,2,7"),
    ] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    out: Annotated[Path | None, typer.Option(help="run directory (--seeds: one per seed)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in --out")] = False,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="any other option: KEY=VALUE (TOML value)")
    ] = None,
    help_options: Annotated[
        bool, typer.Option("--help-options", help="list every --set option and exit")
    ] = False,
) -> None:
    """Train a spiking or ANN actor with (proxy-target) TD3 from a recipe."""
    from neurodeploy.sweep.spec import parse_seeds
    from neurodeploy.train.config import options_help, parse_set, resolve
    from neurodeploy.train.loop import train as run_training
    from neurodeploy.train.seeds import train_seeds

    if help_options:
        print(options_help())
        return
    if seeds is not None and seed is not None:
        raise ConfigError("give --seed (one run) or --seeds (several in one process), not both")

    overrides = {"env": env, "algo": algo, "neuron": neuron, "steps": steps, "seed": seed}
    overrides.update(parse_set(set_ or []))
    cfg, name = resolve(recipe, overrides)
    if seeds is not None:
        seed_list = parse_seeds(seeds)
        out = out or Path("runs") / f"{name}-{cfg.algo}-{cfg.neuron}-seeds{seeds}"
        console.print(f"run directories: {out}/seed<k> for seeds {seed_list}")
        runs = train_seeds(cfg, seed_list, out, resume, sys.stderr.isatty(), device)
        console.print(f"[green]done[/green]: policies in {', '.join(str(r) for r in runs)}")
        return
    run_dir = out or Path("runs") / f"{name}-{cfg.algo}-{cfg.neuron}-s{cfg.seed}"
    console.print(f"run directory: {run_dir}")
    run_training(cfg, run_dir, resume=resume, progress=sys.stderr.isatty(), device=device)
    console.print(f"[green]done[/green]: policy in {run_dir / 'policy.pt'}")


@cli.command()
def export(
    source: Annotated[
        Path | None, typer.Argument(help="run directory, policy.pt or zoo:NAME")
    ] = None,
    target: Annotated[str, typer.Option(help="nir | lava | loihi2 | onnx")] = "loihi2",
    out: Annotated[Path | None, typer.Option(help="bundle directory")] = None,
    from_nir: Annotated[Path | None, typer.Option(help="compile this NIR graph instead")] = None,
    observations: Annotated[int, typer.Option(help="observations for the fidelity checks")] = 256,
    nir_flavour: Annotated[
        str | None,
        typer.Option(help="policy.nir's time unit: generic (dt 1, default) | snntorch | norse"),
    ] = None,
    dt: Annotated[
        float | None,
        typer.Option(help="dt of a --from-nir graph that states none (snnTorch 1e-4, norse 1e-3)"),
    ] = None,
    allow_mismatch: Annotated[
        bool, typer.Option(help="write the bundle even if a spike-exact fidelity check differs")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print fidelity.json instead")] = False,
) -> None:
    """Export a trained actor to nir, lava, loihi2 or onnx as a deploy bundle."""
    import json

    from neurodeploy import zoo
    from neurodeploy.export.bundle import export_bundle

    if zoo.is_zoo(source) and out is None:  # never write into the installed package
        out = Path.cwd() / f"{str(source)[len(zoo.PREFIX) :]}-bundle-{target}"
    source = zoo.resolve_source(source)
    bundle = export_bundle(
        source, target, out, from_nir, observations, nir_flavour, dt, allow_mismatch
    )
    fidelity = json.loads((bundle / "fidelity.json").read_text())
    if json_out:
        print(json.dumps(fidelity))
        return
    console.print(f"bundle: {bundle}")
    console.print(_fidelity_table(fidelity))


def _fidelity_table(fidelity: dict) -> Table:
    """One row per fidelity check of fidelity.json: passed, or what differed."""
    table = Table(title=f"fidelity checks ({fidelity.get('observations', '?')} observations)")
    for column in ("check", "result", "detail"):
        table.add_column(column)
    for name, check in fidelity.items():
        if not isinstance(check, dict) or name == "nir":
            continue
        if "identical" in check:
            spikes = sum(check.get("spikes", []))
            wrong = sum(check.get("mismatched_spikes", []))
            result = "[green]identical[/green]" if check["identical"] else "[red]differs[/red]"
            detail = f"{wrong} of {spikes} spikes differ"
            if check.get("adjustment"):
                detail += f" ({check['adjustment']})"
        elif "action_rmse" in check:
            result = "quantisation"
            detail = (
                f"{check['output_spikes_differing']} of {check['output_spikes']} output spikes "
                f"differ ({100 * check['identical_output_spike_fraction']:.1f} % of the "
                "step x neuron cells, silent ones included, identical), "
                f"action RMSE {check['action_rmse']:.3f} (max {check['action_max_error']:.3f})"
            )
        else:
            result = "measured"
            detail = ", ".join(
                f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in check.items()
            )
        table.add_row(name.replace("_", " "), result, detail)
    return table


@cli.command()
def run(
    path: Annotated[
        Path, typer.Argument(help="run directory, policy file, deploy bundle or zoo:NAME")
    ],
    backend: Annotated[
        str, typer.Option(help="torch | lava | loihi2-sim | emulator | onnx")
    ] = "torch",
    episodes: Annotated[int, typer.Option(help="episodes to run")] = 5,
    seed: Annotated[int, typer.Option(help="episode i is reset with seed + i")] = 0,
    envs: Annotated[
        int,
        typer.Option(help="environments stepped in lock-step, one policy copy each (seed + i)"),
    ] = 1,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    record: Annotated[
        Path | None,
        typer.Option(help="write the episodes to FILE.gif (or .mp4): env beside spike rasters"),
    ] = None,
) -> None:
    """Run an exported policy in closed loop (torch, Lava, Loihi 2 sim, emulator, onnx)."""
    import json

    from neurodeploy import zoo
    from neurodeploy.hardware.record import record_policy
    from neurodeploy.hardware.runner import run_policy

    path = zoo.resolve_source(path)

    if record is None:
        summary = run_policy(path, backend, episodes, seed, envs=envs).summary()
    elif envs != 1:
        raise ConfigError(f"--record films one environment; leave out --envs {envs}")
    else:
        summary = record_policy(path, record, backend, episodes, seed).summary()
    if json_out:
        print(json.dumps(summary))
        return
    console.print(
        f"{backend}: return {summary['return_mean']:.2f} ± {summary['return_std']:.2f} over "
        f"{summary['episodes']} episodes (lengths {summary['episode_lengths']}); latency per "
        f"control step median {summary['latency_ms_median']:.3f} ms, "
        f"p99 {summary['latency_ms_p99']:.3f} ms"
        + (
            f" per batch of {envs} envs; {summary['control_steps_per_s']:.1f} control steps/s"
            if envs > 1
            else ""
        )
    )
    if summary.get("output_mismatches"):
        console.print(
            f"[yellow]{summary['output_mismatches']} actions' Lava output spikes differed from "
            "the float reference[/yellow]"
        )
    if record is not None:
        console.print(f"recording: {record}")


@cli.command("bench-energy")
def bench_energy(
    path: Annotated[
        Path, typer.Argument(help="loihi2 bundle, or a run directory with bundle-loihi2")
    ],
    hardware: Annotated[
        str, typer.Option(help="comma-separated profiles from hardware/")
    ] = "loihi,loihi2,paper,cmos45nm",
    episodes: Annotated[int, typer.Option(help="episodes (episode i: seed i)")] = 3,
    json_out: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Count synaptic ops and neuron updates, and estimate energy per hardware profile."""
    import json

    from neurodeploy import zoo
    from neurodeploy.hardware.bench import bench_energy as run_bench

    if zoo.is_zoo(path):
        name = str(path)[len(zoo.PREFIX) :]
        raise ConfigError(
            f"bench-energy measures the exported core: run `neurodeploy export {path}` first, "
            f"then `neurodeploy bench-energy {name}-bundle-loihi2`"
        )

    report = run_bench(path, hardware.split(","), episodes)
    if json_out:
        print(json.dumps(report))
        return
    for name, row in report["profiles"].items():
        ann = "n/a" if row["ann_nj"] is None else f"{row['ann_nj']:.3f} nJ"
        console.print(f"{name}: SNN {row['snn_nj']:.3f} nJ per inference, ANN {ann}")
    console.print("report: energy.md, energy.json, energy.png, rates.png next to the bundle")


@cli.command()
def sweep(
    recipe: Annotated[str, typer.Argument(help="recipe name in train/ or a TOML path")],
    seeds: Annotated[str, typer.Option(help="seeds: a range 0-4 or a list 0,2,7")] = "0-4",
    grid: Annotated[
        list[str] | None,
        typer.Option(help="KEY=V1,V2,... (repeatable); trials = grid points x seeds"),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="environment steps per trial")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="any other option: KEY=VALUE (TOML value)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="sweep directory")] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster HOST:PORT (default: a local Ray here)")
    ] = None,
    cpus_per_trial: Annotated[float, typer.Option(help="CPUs Ray reserves per trial")] = 1,
    num_cpus: Annotated[
        int | None, typer.Option(help="CPUs of the local Ray (default: all cores)")
    ] = None,
    retries: Annotated[
        int, typer.Option(help="Ray retries of a trial whose worker died (0: report it)")
    ] = 0,
    device: Annotated[
        str, typer.Option(help="each trial's device: auto | cpu | cuda[:N]")
    ] = "auto",
    gpus_per_trial: Annotated[
        float | None, typer.Option(help="GPU share Ray reserves per trial (cuda default 1/8)")
    ] = None,
) -> None:
    """Run every (grid point x seed) as a trial on Ray; rerunning resumes unfinished trials."""
    from neurodeploy.sweep.runner import run_sweep
    from neurodeploy.sweep.spec import SweepSpec, parse_grid, parse_seeds
    from neurodeploy.train.config import parse_set

    overrides = parse_set(set_ or [])
    if steps is not None:
        overrides["steps"] = steps
    spec = SweepSpec(recipe, parse_seeds(seeds), parse_grid(grid or []), overrides)
    out = out or Path("runs") / f"sweep-{Path(recipe).stem}"
    result = run_sweep(
        spec, out, address, num_cpus, cpus_per_trial, retries, err_console, sys.stderr.isatty(),
        device, gpus_per_trial,
    )  # fmt: skip
    console.print(
        f"[green]done[/green]: {len(result.done)} trials run, {len(result.skipped)} finished "
        f"before; report with `neurodeploy report {out}`"
    )


@cli.command()
def report(
    sweep_dir: Annotated[Path, typer.Argument(help="sweep directory (has sweep.json)")],
    baseline: Annotated[
        list[str] | None,
        typer.Option(
            help="grid KEY=VALUE the APG compares against, e.g. neuron=ann (repeatable; "
            "default: those of the report.json being rebuilt)"
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="folder for the report (default: sweep)")] = None,
    hardware: Annotated[
        str,
        typer.Option(help="profiles of the return-vs-energy picture (sop_budget/hidden grids)"),
    ] = "loihi,loihi2,paper,cmos45nm",
    energy_episodes: Annotated[
        int, typer.Option(help="bench-energy episodes per trial for that picture")
    ] = 3,
) -> None:
    """Aggregate a sweep: returns mean ± std over seeds, APG, firing rate, SOPs per action;
    over sop_budget or hidden: return against energy of each deployed policy."""
    from neurodeploy.sweep.report import markdown, stored_baselines, write_report

    if baseline is None:  # a rebuild keeps the report's APG tables
        baseline = stored_baselines(out) if out else None
        baseline = baseline or stored_baselines(sweep_dir)  # a new --out: the sweep's own
    profiles = [p.strip() for p in hardware.split(",") if p.strip()]
    result = write_report(
        sweep_dir, baseline, out, profiles, energy_episodes, progress=sys.stderr.isatty()
    )
    print(markdown(result), end="")
    pareto = ", pareto.png" if "pareto" in result else ""
    console.print(f"report: report.md, report.json, curves.png{pareto} in {out or sweep_dir}")


@cli.command("zoo")
def zoo_list(
    json_out: Annotated[bool, typer.Option("--json", help="print every card as JSON")] = False,
) -> None:
    """List the trained policies that ship with neurodeploy (use them as zoo:NAME)."""
    import json

    from neurodeploy import zoo

    entries = zoo.entries()
    if json_out:
        print(json.dumps({e.name: e.card for e in entries}))
        return
    table = Table(title="neurodeploy zoo: use as zoo:NAME in export and run")
    for column in (
        "name",
        "env",
        "method",
        "seed",
        "steps",
        "torch return",
        "loihi2-sim return",
        "firing",
        "SOPs/action",
        "nJ/inference",
        "size",
    ):
        table.add_column(column)  # fmt: skip
    for e in entries:
        c = e.card
        ret = {b: f"{r['mean']:.1f} ± {r['std']:.1f}" for b, r in c["returns"].items()}
        nj = ", ".join(f"{k} {v:.1f}" for k, v in c["nj_per_inference"].items())
        table.add_row(
            e.name, c["env"], f"{c['method']} {c['neuron']} ({c.get('mode', 'reset')})",
            str(c["seed"]), f"{c['steps']:,}", ret.get("torch", "-"),
            ret.get("loihi2-sim", "-"), f"{100 * c['firing_rate']:.1f} %",
            f"{c['sops_per_action']:,.0f}", nj, f"{c['file_bytes'] / 1e6:.2f} MB",
        )  # fmt: skip
    console.print(table)
    for e in entries:
        console.print(f"{e.name}: {e.card['provenance']['command']}", soft_wrap=True)


@cli.command()
def info() -> None:
    """Print the stack's versions and run a Lava self-check; exit non-zero on any failure."""
    from neurodeploy.info import selfcheck, versions

    found, failures = versions()
    table = Table(title="neurodeploy stack", show_header=True)
    table.add_column("package")
    table.add_column("version")
    for name, version in found.items():
        table.add_row(name, version if version != "missing" else "[red]missing[/red]")
    console.print(table)
    results, check_failures = selfcheck()
    for name, ok, detail in results:
        mark = "[green]pass[/green]" if ok else "[red]FAIL[/red]"
        console.print(f"{mark} {name}: {detail}")
    failures += check_failures
    for line in failures:
        err_console.print(f"[red]error:[/red] {escape(line)}")
    if failures:
        raise typer.Exit(1)
    console.print("[green]all checks passed[/green]")


def app() -> None:
    """Console-script entry point: user errors print one line, no traceback, and exit 1
    (usage errors such as a bad option value: 2, as click's)."""
    import warnings

    try:  # newer typer carries its own copy of click
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
    except ImportError:
        from click.exceptions import ClickException, NoArgsIsHelpError

    # norse decorates its functions with torch.jit.script, which torch 2.14 deprecates
    warnings.filterwarnings("ignore", r"`torch\.jit\.script` is deprecated", FutureWarning)
    try:
        code = cli(standalone_mode=False)  # click's errors come here, not as its usage box
    except NoArgsIsHelpError:  # typer has printed the help already
        sys.exit(2)
    except ClickException as exc:  # bad value, unknown option or command
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        message = " ".join(exc.format_message().split())  # one line
        err_console.print(f"[red]error:[/red] {escape(message + hint)}", highlight=False,
                          soft_wrap=True)  # fmt: skip
        sys.exit(exc.exit_code)
    except typer.Abort:  # Ctrl-D at a prompt
        err_console.print("[red]error:[/red] aborted", highlight=False)
        sys.exit(1)
    except NeurodeployError as exc:  # escaped: a path may hold [brackets]
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except OSError as exc:  # a read-only filesystem, a full disk, a folder that is a file
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    if isinstance(code, int) and code:  # typer.Exit(code), Ctrl-C (130)
        sys.exit(code)


if __name__ == "__main__":
    app()
