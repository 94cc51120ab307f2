# Two promises: `make demo` and `make test` work on a fresh machine with Python 3.11 and git.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
REPORTS := reports

.PHONY: demo test lint typecheck pytest docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip

# An editable install runs the checkout's sources: compileall writes their bytecode once, so
# that a start does not compile them again where PYTHONDONTWRITEBYTECODE is set (bench/README.md).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -qq -e .
	$(BIN)/python -m compileall -q runner
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -qq -e '.[dev]'
	$(BIN)/python -m compileall -q runner
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed-dev
	mkdir -p $(REPORTS)
	$(BIN)/python -m runner validate workflows/
	$(BIN)/python -m runner graph workflows/rlm_cache_change.star -o $(REPORTS)/rlm_cache_change.mmd
	$(BIN)/python -m runner compile workflows/rlm_cache_change.star -o $(REPORTS)/rlm_cache_change.json
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m runner run workflows/rlm_cache_change.star \
		--mock-script workflows/mocks/rlm_cache_change.yaml --report-dir $(REPORTS) \
		--input 'test_command=["python", "-m", "pytest", "tests/test_ir.py"]'
	$(BIN)/python -m runner report last -o $(REPORTS)/rlm_cache_change.md
	$(BIN)/python -m runner report last --format junit -o $(REPORTS)/rlm_cache_change.junit.xml
	# The learning loop's worked example (docs/learning.md); without --promote it commits nothing.
	$(BIN)/python -m runner learn workflows/label_tickets.yaml \
		--mock-script workflows/mocks/label_tickets.yaml --report-dir $(REPORTS)
	@echo "Reports written to $(REPORTS)/"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff format --check runner tests bench
	$(BIN)/ruff check runner tests bench
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions action.yml
	$(BIN)/zizmor --offline .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy --strict runner

pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

test: lint typecheck pytest

docs: $(VENV)/.installed-dev
	$(BIN)/python -m runner.docgen > docs/workflow-language.md
	$(BIN)/python -m runner.docgen_config configuration > docs/configuration.md
	$(BIN)/python -m runner.docgen_config mock-script > docs/mock-script.md

# Every benchmark runs, each printing its figures; the target fails when any missed its own.
BENCHES = startup validate summary engine cli providers
bench: $(VENV)/.installed
	@failed=""; for name in $(BENCHES); do \
		echo "== bench/$$name.py"; $(BIN)/python bench/$$name.py || failed="$$failed $$name"; \
	done; if [ -n "$$failed" ]; then echo "over target:$$failed"; exit 1; fi

clean:
	rm -rf $(VENV) $(REPORTS) .mypy_cache .ruff_cache .pytest_cache
