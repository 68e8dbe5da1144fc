"""Where the recipe folders (train/, export/, hardware/) are: in the wheel or in a checkout."""

from __future__ import annotations

from pathlib import Path

from neurodeploy.errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent


def recipe_dir(kind: str) -> Path:
    """``neurodeploy/recipes/<kind>`` in an installed wheel, ``<repo>/<kind>`` in a checkout."""
    for candidate in (_PACKAGE / "recipes" / kind, _PACKAGE.parent / kind):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"the {kind}/ recipe folder is missing from the installation")


def recipe_path(kind: str, name: str) -> Path:
    folder = recipe_dir(kind)
    path = folder / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.toml"))
        raise ConfigError(
            f"no {kind} recipe named {name!r}; available: {', '.join(known) or 'none'}"
        )
    return path
