# The two commands of the README. Each one sets up everything it needs on a
# fresh machine (a virtualenv with newsstream and its dependencies from PyPI),
# so `make demo` and `make test` are all a new user or CI ever types.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench schemas clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/newsstream demo

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q -ra

bench: $(BIN)/.installed
	$(BIN)/python bench/pipeline.py

schemas: $(BIN)/.installed
	$(BIN)/newsstream schemas export

clean:
	rm -rf $(VENV) .newsstream .pytest_cache
