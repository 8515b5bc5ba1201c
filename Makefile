# The two set-up commands: `make run` and `make test`. Everything else is a helper for them.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export DEBUG ?= 1
MANAGE := $(BIN)/python manage.py

.PHONY: install run test lint chromium bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Serves the demo on http://127.0.0.1:8000 with an embedded Celery worker and beat (filesystem broker,
# DESIGN §5). Ctrl+C stops both.
run: install
	@mkdir -p var
	$(MANAGE) migrate --noinput
	$(MANAGE) load_demo
	@echo "Concord is starting on http://127.0.0.1:8000/ (Ctrl+C stops the web server and the worker)"
	@bash -c 'trap "trap \"\" TERM; trap - EXIT INT; kill 0; wait; exit 0" EXIT INT TERM; \
		$(BIN)/celery -A config worker --pool=solo -B --schedule var/celerybeat-schedule --loglevel=warning --without-heartbeat --without-gossip --without-mingle & \
		$(MANAGE) runserver 127.0.0.1:8000'

# Browser tests drive Debian's Chromium; `playwright install` cannot download browsers here.
chromium:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || \
		(echo "Installing Debian's chromium for the browser tests" && \
		 (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

test: install chromium
	$(BIN)/ruff check .
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/import_outputs.py

clean:
	rm -rf var .ruff_cache
