# The commands a new user runs: `make demo` and `make test`. Both install first if needed.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEPS   := pyproject.toml requirements.txt requirements-lava.txt requirements-test.txt

.PHONY: install test test-all demo lint clean

install: $(STAMP)

# Re-runs only when a dependency file changes; a second `make install` is a no-op.
$(STAMP): $(DEPS)
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "neurodeploy needs Python 3.11, got " + sys.version' \
		|| { echo "error: set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps --ignore-requires-python -r requirements-lava.txt
	$(BIN)/pip install -q --no-deps -r requirements-test.txt
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
DEMO_ZOO   ?= pendulum-pt-lif

# Part 1 shows that training runs: PT-LIF on the pendulum recipe, shortened to DEMO_STEPS
# (far too short to control; re-running continues the same run directory).
# Part 2 deploys a controller that works: the zoo's trained Pendulum PT-LIF policy is
# exported to Loihi 2 (netx file + Lava fixed-point graph, checked spike for spike), run in
# closed loop on torch and on Lava's bit-accurate simulator, its energy estimated per
# hardware profile, and one loihi2-sim episode recorded as a GIF.
demo: $(STAMP)
	@echo "== 1/2: training runs ($(DEMO_STEPS) steps: a mechanical check, not a controller)"
	$(BIN)/neurodeploy train pendulum --steps $(DEMO_STEPS) --set start_steps=1000 --out $(DEMO_DIR) \
		$$(test -f $(DEMO_DIR)/config.toml && echo --resume)
	@echo "== 2/2: deploying the zoo's trained controller zoo:$(DEMO_ZOO) to Loihi 2"
	rm -rf $(DEMO_DIR)/zoo-bundle-loihi2
	$(BIN)/neurodeploy export zoo:$(DEMO_ZOO) --target loihi2 --observations 64 \
		--out $(DEMO_DIR)/zoo-bundle-loihi2
	$(BIN)/neurodeploy run $(DEMO_DIR)/zoo-bundle-loihi2 --backend torch --episodes 3
	$(BIN)/neurodeploy run $(DEMO_DIR)/zoo-bundle-loihi2 --backend loihi2-sim --episodes 3
	$(BIN)/neurodeploy bench-energy $(DEMO_DIR)/zoo-bundle-loihi2 --episodes 2
	$(BIN)/neurodeploy run $(DEMO_DIR)/zoo-bundle-loihi2 --backend loihi2-sim --episodes 1 \
		--record $(DEMO_DIR)/pendulum-loihi2-sim.gif

lint: $(STAMP)
	$(BIN)/ruff check neurodeploy tests benchmarks
	$(BIN)/ruff format --check neurodeploy tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
