# The commands a new user runs: `make demo` and `make test`. Both install first if needed.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEPS   := pyproject.toml requirements.txt requirements-lava.txt

.PHONY: install test test-all demo lint clean

install: $(STAMP)

# Re-runs only when a dependency file changes; a second `make install` is a no-op.
$(STAMP): $(DEPS)
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "neurodeploy needs Python 3.11, got " + sys.version' \
		|| { echo "error: set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps --ignore-requires-python -r requirements-lava.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	@# OSMesa renders MuJoCo offscreen for `run --record`; optional, so a failure only says so
	@dpkg -s libosmesa6 >/dev/null 2>&1 || apt-get install -y -q libosmesa6 >/dev/null 2>&1 \
		|| { apt-get update -q && apt-get install -y -q libosmesa6; } >/dev/null 2>&1 \
		|| echo "note: recording MuJoCo envs (run --record) needs OSMesa: sudo apt-get install libosmesa6"
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

DEMO_DIR   ?= runs/demo
DEMO_STEPS ?= 2000

# Trains PT-LIF on the pendulum recipe (shortened to DEMO_STEPS), exports it to Loihi 2
# (netx file + Lava fixed-point graph, checked spike for spike), runs it in closed loop on
# Lava's bit-accurate simulator, and reports energy per hardware profile.
# Re-running continues the same run directory and writes a fresh bundle.
demo: $(STAMP)
	$(BIN)/neurodeploy train pendulum --steps $(DEMO_STEPS) --out $(DEMO_DIR) \
		$$(test -f $(DEMO_DIR)/config.toml && echo --resume)
	rm -rf $(DEMO_DIR)/bundle-loihi2
	$(BIN)/neurodeploy export $(DEMO_DIR) --target loihi2 --observations 64
	$(BIN)/neurodeploy run $(DEMO_DIR) --backend loihi2-sim --episodes 2
	$(BIN)/neurodeploy bench-energy $(DEMO_DIR) --episodes 2

lint: $(STAMP)
	$(BIN)/ruff check neurodeploy tests benchmarks
	$(BIN)/ruff format --check neurodeploy tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
