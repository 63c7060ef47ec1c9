# Two entry points for a fresh machine (see README): `make demo` and `make test`.
# Each creates .venv if missing, installs the CPU build of torch first (a plain `pip install
# torch` would pull gigabytes of CUDA packages), then avscene with its extras (the tests add
# TensorFlow's CPU build).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test test-slow bench browser clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[eval]"
	touch $(STAMP)

# The tests also need TensorFlow (the [tf] extra: tests/tf_release proves import-tf exact)
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,eval,tf]"
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(PY) -m avscene demo --clips $(or $(CLIPS),../shared/clips)

test: $(TEST_STAMP) browser
	$(PY) -m pytest -q

test-slow: $(TEST_STAMP)
	$(PY) -m pytest -q -m slow

# Headless Chromium for tests/test_report_browser.py (Debian's chromium + chromium-driver),
# installed only when missing. Without apt-get (not Debian/Ubuntu) it says so and the browser
# test skips; with apt-get a failed install fails the target, so CI never skips silently.
browser:
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make browser: no apt-get here; install Chromium at /usr/bin/chromium to run the browser test"; exit 0; fi; \
	SUDO=; if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
	echo "make browser: installing Debian's chromium and chromium-driver"; \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver

clean:
	rm -rf $(VENV) runs .pytest_cache
