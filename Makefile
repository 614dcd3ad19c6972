# The two quick-start targets. Both create .venv on first use (torch + torchvision come from the
# machine's local package files where present; about a minute).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test

$(BIN)/regmix: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/regmix

setup: $(BIN)/regmix

demo: setup
	$(BIN)/regmix demo

test: setup
	$(BIN)/python -m pytest -q
	REGMIX_PROFILE=ci $(BIN)/python -m pytest -q -p no:cacheprovider --nbmake notebooks/ --nbmake-kernel=python3 --nbmake-timeout=600
