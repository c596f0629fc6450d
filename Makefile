# lb-pipelines: two commands. `make run` does the main job on the bundled sample; `make test`
# runs the whole suite. Both create or reuse the virtual environment in .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# The venv first on PATH: dagster-dbt looks for the `dbt` executable there.
export PATH := $(BIN):$(PATH)
# Some machines set PYTHONDONTWRITEBYTECODE: every process (each Dagster run, each dbt call)
# then compiles every module it imports from source, seconds each time. Ours are cached as they
# are first imported; the installed packages are compiled once at install (below).
unexport PYTHONDONTWRITEBYTECODE

PORT ?= 3000
FEED_PORT ?= 8090
PROVIDERS ?= 2000
ROWS ?= 20000
DAYS ?= 365

.PHONY: run test dev serve prepare bench bench-exports bench-latency bench-outlook bench-feed bench-import sample docs clean

run: prepare ## materialize everything on the bundled sample and print where things are
	$(BIN)/lb-pipelines run

test: prepare ## the whole suite (starts and stops the servers it needs)
	@scripts/install-test-services.sh  # OpenSSH sshd from Debian, when missing (root; CI is root)
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder  # both cores; a file's tests stay together, in order; the longest files first (tests/conftest.py)

dev: prepare ## the Dagster UI on http://127.0.0.1:$(PORT) (behind sign-in when LB_UI_SIGN_IN is set); schedules and sensors stopped unless LB_AUTOMATION=on
	$(BIN)/lb-pipelines dev --port $(PORT)

serve: prepare ## the on-call and calendar feeds on http://127.0.0.1:$(FEED_PORT) from make run's BI copy: prints a key and URLs to try
	$(BIN)/lb-pipelines serve --demo --port $(FEED_PORT)

bench: prepare ## generate PROVIDERS x DAYS, extract (directory and simulator), load; print figures
	$(BIN)/python bench/foundation.py --providers $(PROVIDERS) --days $(DAYS)

docs: prepare ## the dbt docs site (describes every model and column) from the warehouse make run built
	cd dbt_project && $(BIN)/dbt docs generate --profiles-dir . --quiet
	@echo "dbt docs: $(CURDIR)/dbt_project/target/index.html"
	@echo "serve it: cd dbt_project && $(BIN)/dbt docs serve --profiles-dir . --host 127.0.0.1 --port 8080"

bench-exports: prepare ## render and deliver each export (outbox, local sshd) beside a plain COPY
	@scripts/install-test-services.sh
	$(BIN)/python bench/exports.py --providers $(PROVIDERS) --days $(DAYS)

bench-latency: prepare ## a schedule change → Epic (SFTP), TigerConnect, Outlook, PerfectServe, AnesthesiaGo through the daemon: p50/p95/max each, and where the seconds go
	@scripts/install-test-services.sh
	$(BIN)/python bench/latency.py --changes 20

bench-outlook: prepare ## push PROVIDERS x DAYS of Outlook events to the local Graph fake: first, no change, 1 %
	$(BIN)/python bench/outlook.py --providers $(PROVIDERS) --days $(if $(filter 365,$(DAYS)),60,$(DAYS))

bench-feed: prepare ## the feed service on the bundled sample's BI copy: p50/p95/max ms per endpoint
	$(BIN)/python bench/feed.py --requests 500

bench-import: prepare ## import a ROWS-row HR file into the simulator over HTTP: dry run, import, duplicate; rows/s and PATCHes
	$(BIN)/python bench/demographic_import.py --rows $(ROWS)

sample: $(STAMP) ## regenerate the bundled sample (see data/sample/README.md)
	$(BIN)/lb-generate --out data/sample --providers 150 --days 212 --seed 2026 \
		--start 2026-09-01 --as-of 2026-11-22T07:00:00-06:00

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv==0.13.9
	# constraints.txt pins every package to the versions the suite last passed with. uv installs
	# the same pins in seconds where pip takes a minute of CI's 15; pip stays the fallback.
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -c constraints.txt -e '.[test]' \
		|| ($(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]' \
			&& $(BIN)/python -m compileall -q -j 0 $(VENV)/lib)
	@touch $@

# The dbt manifest, prepared ahead of time: definitions never parse dbt at import time.
dbt_project/target/manifest.json: $(STAMP) dbt_project/dbt_project.yml $(shell find dbt_project/models dbt_project/macros -type f 2>/dev/null) $(shell find lb_pipelines/integrations -name '*.sql' -o -name '*.yml' 2>/dev/null)
	cd $(CURDIR) && $(BIN)/dagster-dbt project prepare-and-package --file lb_pipelines/warehouse/dbt_project.py

prepare: dbt_project/target/manifest.json

clean: ## remove what make run made (keeps the venv and the bundled sample)
	rm -rf data/warehouse.duckdb* data/bi data/outbox data/dagster_home dbt_project/target
