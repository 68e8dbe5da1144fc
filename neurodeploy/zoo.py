"""The policy zoo: trained spiking policies that ship inside the package.

Each entry is a folder ``zoo/<name>/`` (``neurodeploy/recipes/zoo/<name>/`` in a wheel)
holding ``policy.pt`` (a policy payload, loaded weights-only like every policy file) and
``card.json``: what it is (env, method, neuron, seed, steps), what it does (torch and
loihi2-sim returns over 10 episodes, firing rate, SOPs per action, nJ per inference per
hardware profile, file size) and where it came from (the exact command, recipe, ``--set``
values and commit). ``benchmarks/zoo.py`` writes entries; ``neurodeploy zoo`` lists them.

``zoo:NAME`` names an entry where a run directory or policy file is accepted
(``export``, ``run``; ``bench-energy`` takes the exported bundle): :func:`resolve_source`
turns it into the entry's ``policy.pt``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from neurodeploy.errors import ConfigError
from neurodeploy.paths import recipe_dir

PREFIX = "zoo:"
# The numerics a card's torch returns are measured and reproduced under, set in the process
# environment before torch loads: MKL's conditional numerical reproducibility, so torch's
# float matrix products give the same bits on any x86 CPU, on one thread. Its default code
# path differs between CPUs, and a closed loop amplifies the last bit: QuadHover's torch
# returns differed by up to 0.15 % per episode between two machines without it.
NUMERICS = {"MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": "1"}
CARD = "card.json"
POLICY = "policy.pt"


@dataclass(frozen=True)
class Entry:
    name: str
    folder: Path
    card: dict

    @property
    def policy(self) -> Path:
        return self.folder / POLICY


def _folder() -> Path | None:
    try:
        return recipe_dir("zoo")
    except ConfigError:
        return None


def entries() -> list[Entry]:
    """Every shipped entry, by name."""
    folder = _folder()
    if folder is None:
        return []
    found = []
    for card in sorted(folder.glob(f"*/{CARD}")):
        try:
            data = json.loads(card.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"zoo entry {card.parent.name}: unreadable {CARD} ({exc})") from None
        found.append(Entry(card.parent.name, card.parent, data))
    return found


def entry(name: str) -> Entry:
    known = {e.name: e for e in entries()}
    if name not in known:
        raise ConfigError(
            f"no zoo entry {name!r}; `neurodeploy zoo` lists them: {', '.join(known) or 'none'}"
        )
    return known[name]


def is_zoo(source: str | Path | None) -> bool:
    return isinstance(source, str | Path) and str(source).startswith(PREFIX)


def resolve_source(source: str | Path | None) -> Path | None:
    """``zoo:NAME`` -> the entry's policy.pt; any other path is returned unchanged."""
    if not is_zoo(source):
        return None if source is None else Path(source)
    return entry(str(source)[len(PREFIX) :]).policy
