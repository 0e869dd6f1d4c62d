# Two entry points: `make run` (set up + start the app) and `make test` (set up + run the tests).
# Both are idempotent: a finished step is skipped by its stamp file.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
THREEDMOL_VERSION := 2.5.5

.PHONY: run test test-all setup browser-deps clean

$(VENV)/.stamp: requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# 3Dmol.js for offline 3D views: from the npm registry, unpacked into the ignored static/ folder.
static/3Dmol-min.js:
	mkdir -p static .cache/npm
	cd .cache/npm && npm pack --silent 3dmol@$(THREEDMOL_VERSION) >/dev/null
	tar -xzf .cache/npm/3dmol-$(THREEDMOL_VERSION).tgz -C .cache/npm package/build/3Dmol-min.js
	cp .cache/npm/package/build/3Dmol-min.js $@

setup: $(VENV)/.stamp static/3Dmol-min.js

# Debian's chromium for the real-browser tests (skipped where apt is unavailable).
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "chromium not installed: browser tests will be skipped"; fi; \
	fi

run: setup
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

test: setup browser-deps
	$(PY) -m pytest -q

test-all: setup browser-deps
	$(PY) -m pytest -q -m "slow or not slow"

clean:
	rm -rf $(VENV) static .cache runs
