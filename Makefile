# The interface between stages: `make demo` and `make test` do all set-up from a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# A DuckDB 1.4 engine, as BI drivers bundle, apart from the product's: the tests open the published file with it.
BI_VENV := .venv-bi
BI_STAMP := $(BI_VENV)/.installed

# JupyterLab, only for `make notebooks` (the `notebooks` extra, pinned in its own lock): `make test` never needs it.
NOTEBOOKS_STAMP := $(VENV)/.notebooks-installed
DEMO_DB := build/demo/unpod_runs.duckdb
# The notebooks open UNPOD_RUNS_DB when it is set, else the demo's database (made first if missing).
NOTEBOOKS_DB := $(if $(UNPOD_RUNS_DB),,$(DEMO_DB))

.PHONY: demo test notebooks bench bench-large bench-scale clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "unpod-runs needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	# DuckLake, the PostgreSQL reader and MotherDuck: DuckDB's extensions from their locked wheels, never downloaded at run time.
	$(PY) -c 'import duckdb, duckdb_extensions as x; con = duckdb.connect(); [x.import_extension(n, con=con) for n in ("ducklake", "sqlite", "postgres", "motherduck")]'
	@touch $(STAMP)

$(BI_STAMP): requirements-bi.lock
	$(PYTHON) -m venv $(BI_VENV)
	$(BI_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-bi.lock
	@touch $(BI_STAMP)

$(NOTEBOOKS_STAMP): $(STAMP) requirements-notebooks.lock
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock -r requirements-notebooks.lock
	@touch $(NOTEBOOKS_STAMP)

demo: $(STAMP)
	$(VENV)/bin/unpod-runs demo

$(DEMO_DB): | $(STAMP)
	$(VENV)/bin/unpod-runs demo

# JUPYTER_ARGS passes options on, e.g. make notebooks JUPYTER_ARGS="--no-browser --port 8890".
notebooks: $(NOTEBOOKS_STAMP) $(NOTEBOOKS_DB)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(JUPYTER_ARGS)

test: $(STAMP) $(BI_STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench.py

bench-large: $(STAMP)
	$(PY) benchmarks/bench.py --large

bench-scale: $(STAMP)
	$(PY) benchmarks/scale.py

clean:
	rm -rf $(VENV) $(BI_VENV) build
