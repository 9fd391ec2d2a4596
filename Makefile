# Coupler — two commands: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQS := requirements/web.txt requirements/dev.txt requirements/host.txt
DEB_PACKAGES := libvirt-dev pkg-config libvirt-clients libxml2-utils chromium systemd

.PHONY: venv test lint demo prod bench bench-reads simulate clean-demo

venv: $(STAMP)

$(STAMP): $(REQS)
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "Missing Debian packages (run as root or install them):$$missing"; fi; \
	fi
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/web.txt -r requirements/dev.txt -r requirements/host.txt
	touch $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: lint
	$(VENV)/bin/pytest

# The demo chooses its development settings explicitly (DEBUG on, a dev key,
# loopback only); console.settings alone is production.
demo: export DJANGO_SETTINGS_MODULE := console.settings_dev
demo: venv
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py seed_demo
	$(PY) manage.py rundemo

# The production processes on this machine (gunicorn + WhiteNoise, orchestrator,
# beat, the simulated agent), DEBUG off, against DATABASE_URL and REDIS_URL.
prod: venv
	deploy/run-local.sh

bench: venv
	$(PY) -m scheduler.bench

# Read paths at fleet scale (needs DATABASE_URL=postgres://…): see docs/reads.md.
bench-reads: venv
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py bench_reads $(BENCH_READS_ARGS)

clean-demo:
	rm -rf var/
