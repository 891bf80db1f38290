# One verb per chore. Each target builds .venv on a fresh machine first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint typecheck imports bench goldens serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/meshplane demo

test: $(STAMP)
	$(BIN)/pytest

check: lint typecheck imports

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src/meshplane

imports: $(STAMP)
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

goldens: $(STAMP)
	REFRESH_GOLDENS=1 $(BIN)/pytest tests/translate -q

serve: $(STAMP)
	$(BIN)/meshplane serve --data-dir .meshplane

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
