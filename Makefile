# Two entry points for a fresh machine (see README): `make demo` and `make test`.
# Each creates .venv if missing, installs the CPU build of torch first (a plain `pip install
# torch` would pull gigabytes of CUDA packages), then avscene with its extras.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test,eval]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m avscene demo --clips $(or $(CLIPS),../shared/clips)

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) runs .pytest_cache
