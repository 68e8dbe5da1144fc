"""Write a benchmark's section into docs/results.md (replacing the previous one)."""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results.md"
HEADER = (
    "# Results\n\n"
    "Every number here comes from a script in `benchmarks/`; each section names its command.\n"
)


def machine() -> str:
    import torch

    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )


def head_commit() -> str:
    """The repository's HEAD, short form: what a published number was measured at."""
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=RESULTS.parent.parent,
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip()


def write_section(key: str, title: str, body: str) -> None:
    """Replace the section marked ``key`` in docs/results.md with ``body``."""
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    stamp = datetime.date.today().isoformat()
    section = (
        f"<!-- {key} -->\n## {title}\n\nCommand: `{command}`  \nMachine: {machine()}  \n"
        f"Date: {stamp}\n\n{body.strip()}\n<!-- /{key} -->\n"
    )
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(rf"<!-- {key} -->.*?<!-- /{key} -->\n", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text + "\n" + section
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
