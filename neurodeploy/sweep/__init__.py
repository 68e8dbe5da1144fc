"""Multi-seed sweeps on Ray and paper-style result tables.

- ``spec.py``: what a sweep is (recipe, ``--seeds``, ``--grid``, overrides), its trials, the
  trial directory names and the ``sweep.json`` manifest.
- ``runner.py``: runs every trial as a Ray task (``neurodeploy sweep``); a trial is an
  ordinary run directory, resumed from its checkpoint when the sweep is rerun.
- ``report.py``: aggregates a sweep directory (``neurodeploy report``): returns mean ± std
  over seeds, the paper's APG against a baseline group, firing rates, SOPs per action.
- ``pareto.py``: for a grid over ``sop_budget`` or ``hidden``, every trial exported and
  measured by bench-energy, and its return drawn against nJ per inference per profile.

See ``docs/scaling.md``.
"""
