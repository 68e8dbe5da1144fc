"""Thin commands: each parses its arguments and calls one function of a stage."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from neurodeploy.errors import NeurodeployError

cli = typer.Typer(
    help="Train spiking actors with proxy-target TD3, export them through NIR to Loihi 2 / Lava, "
    "and measure them in closed loop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _not_built(command: str, issue: int) -> None:
    err_console.print(f"`neurodeploy {command}` is not built yet (tracked as issue {issue}).")
    raise typer.Exit(2)


@cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train() -> None:
    """Train a spiking or ANN actor with (proxy-target) TD3 from a recipe."""
    _not_built("train", 4)


@cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def export() -> None:
    """Export a trained actor to nir, lava, loihi2 or onnx as a deploy bundle."""
    _not_built("export", 5)


@cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run() -> None:
    """Run an exported policy in closed loop (torch, Lava, Loihi 2 sim, emulator, onnx)."""
    _not_built("run", 6)


@cli.command(
    "bench-energy", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def bench_energy() -> None:
    """Count synaptic ops and neuron updates, and estimate energy per hardware profile."""
    _not_built("bench-energy", 6)


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
        err_console.print(f"[red]error:[/red] {line}")
    if failures:
        raise typer.Exit(1)
    console.print("[green]all checks passed[/green]")


def app() -> None:
    """Console-script entry point: user errors print one line, no traceback, and exit 1."""
    try:
        cli()
    except NeurodeployError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    app()
