"""Run-directory metrics: metrics.csv, TensorBoard events and curves.png."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

from neurodeploy.train.checkpoint import atomic_write_bytes

BASE_COLUMNS = [
    "step",
    "episode_return",
    "eval_return_mean",
    "eval_return_std",
    "critic_loss",
    "actor_loss",
    "proxy_loss",
    "bc_loss",
    "smooth_loss",  # CAPS smoothness weights set
    "sops_per_action",  # sop_budget: the actor's SOPs per action on the training batches
    "sop_lambda",  # sop_budget: its Lagrange multiplier
    "output_grad",  # share of the output units the actor loss passes a gradient through
    "slope",
    "guide_share",
    "steps_per_s",
]


class Metrics:
    """One CSV row per evaluation. On resume, rows after the checkpoint are dropped."""

    def __init__(
        self,
        run_dir: Path,
        layer_names: list[str],
        resume_step: int | None = None,
        title: str = "",
    ):
        self.csv_path = run_dir / "metrics.csv"
        self.title = title  # curves.png: env, run and method
        self.png_path = run_dir / "curves.png"
        self.columns = BASE_COLUMNS + [f"rate_{n}" for n in layer_names]
        self.rows: list[dict] = []
        if resume_step is not None and self.csv_path.exists():
            with self.csv_path.open() as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self._write_csv()
        self.tb = tensorboard_writer(run_dir / "tensorboard", resume_step)

    def log(self, row: dict) -> None:
        row = {c: row.get(c, "") for c in self.columns}
        self.rows.append(row)
        self._write_csv()
        if self.tb is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, float) and math.isfinite(value):
                    self.tb.add_scalar(key, value, row["step"])
            self.tb.flush()
        self._plot()

    def _write_csv(self) -> None:
        lines = [",".join(self.columns)]
        for row in self.rows:
            lines.append(",".join(_fmt(row.get(c, "")) for c in self.columns))
        atomic_write_bytes(self.csv_path, ("\n".join(lines) + "\n").encode())

    def _plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        pts = [
            (int(r["step"]), float(r["eval_return_mean"]), float(r["eval_return_std"] or 0))
            for r in self.rows
            if r.get("eval_return_mean") not in ("", None)
        ]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        if pts:
            steps, mean, std = zip(*pts, strict=True)
            ax.plot(steps, mean, marker="o")
            lower = [m - s for m, s in zip(mean, std, strict=True)]
            upper = [m + s for m, s in zip(mean, std, strict=True)]
            ax.fill_between(steps, lower, upper, alpha=0.2)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("eval return")
        ax.set_title(self.title, fontsize=10)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        tmp = self.png_path.with_suffix(".tmp.png")
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        tmp.replace(self.png_path)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def tensorboard_writer(log_dir: Path, resume_step: int | None):
    """TensorBoard's writer, or None (with one warning) where the package is not installed:
    metrics.csv holds every logged value either way (a GPU host may carry no TensorBoard)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn("tensorboard is not installed: metrics go to metrics.csv only", stacklevel=3)
        return None
    return SummaryWriter(str(log_dir), purge_step=resume_step)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
