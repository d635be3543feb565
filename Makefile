# The README's two commands: `make demo` and `make test`. Both create .venv when absent.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
MLCTL := $(VENV)/bin/mlctl
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/generate_example_data.py
	$(MLCTL) plan -e dev
	$(MLCTL) apply -e dev --auto-approve
	@echo ""
	@echo "Next, try:"
	@echo "  $(MLCTL) models list -e dev                 # registry: stages and versions"
	@echo "  $(MLCTL) runs list -e dev                   # tracked training runs"
	@echo "  edit environments/dev/models.yaml (e.g. max_depth), then: $(MLCTL) plan -e dev"
	@echo "  $(MLCTL) rollback churn-predictor -e dev    # after a second version reaches production"

test: $(STAMP)
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/plan_scale.py

clean:
	rm -rf $(VENV) .mlctl state/*.json state/*.lock state/*.backup
