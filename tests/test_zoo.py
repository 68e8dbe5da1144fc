"""The shipped policy zoo: every card's numbers are reproduced, and zoo:NAME works everywhere."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from neurodeploy import zoo
from neurodeploy.errors import ConfigError

NEURODEPLOY = str(Path(sys.executable).parent / "neurodeploy")
ENTRIES = zoo.entries()
CARD_FIELDS = {"name", "env", "method", "neuron", "seed", "steps", "returns", "firing_rate",
               "sops_per_action", "nj_per_inference", "file_bytes", "provenance"}  # fmt: skip


def test_the_zoo_ships_policies_under_10_mb():
    assert ENTRIES, "the zoo is empty"
    total = sum(f.stat().st_size for e in ENTRIES for f in e.folder.iterdir())
    assert total < 10e6


@pytest.fixture(scope="module")
def zoo_returns():
    """Every entry's first three torch episodes, in one process of its own: MKL reads the
    card's numerics when torch loads it."""
    code = (
        "import json, sys\nfrom neurodeploy import zoo\n"
        "from neurodeploy.hardware.runner import run_policy\n"
        "print(json.dumps({name: [float(x) for x in run_policy(zoo.resolve_source(f'zoo:{name}'),"
        " 'torch', episodes=3, seed=0).returns] for name in sys.argv[1:]}))"
    )
    env = {**os.environ, **zoo.NUMERICS}
    out = subprocess.run([sys.executable, "-c", code, *(e.name for e in ENTRIES)], env=env,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_card_torch_return_is_reproduced(entry, zoo_returns):
    card = entry.card
    assert CARD_FIELDS <= set(card)
    assert {"command", "recipe", "set"} <= set(card["provenance"])
    assert card["file_bytes"] == entry.policy.stat().st_size
    assert card["torch_numerics"] == zoo.NUMERICS
    returns = zoo_returns[entry.name]
    assert returns == pytest.approx(card["returns"]["torch"]["per_episode"][:3], rel=1e-4)


def test_unknown_entry_is_one_line():
    with pytest.raises(ConfigError, match="no zoo entry 'nope'"):
        zoo.resolve_source("zoo:nope")


def test_zoo_lists_and_exports_from_any_directory(tmp_path):
    listing = subprocess.run([NEURODEPLOY, "zoo"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    for e in ENTRIES:
        assert e.name in listing.stdout
    name = ENTRIES[0].name
    out = subprocess.run(
        [NEURODEPLOY, "export", f"zoo:{name}", "--target", "nir", "--observations", "16"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    manifest = json.loads((tmp_path / f"{name}-bundle-nir" / "manifest.json").read_text())
    assert manifest["target"] == "nir"
    assert not (ENTRIES[0].folder / "bundle-nir").exists()  # nothing written into the package
