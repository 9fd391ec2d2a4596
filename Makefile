# Coupler — two commands: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQS := requirements/web.txt requirements/dev.txt requirements/host.txt
DEB_PACKAGES := libvirt-dev pkg-config libvirt-clients libxml2-utils chromium gettext fonts-wqy-microhei
# The demo's port: `make demo PORT=8123` serves there and writes that URL into
# var/demo-credentials.json (which `loadtest --live` drives).
PORT ?= 8000

.PHONY: venv test lint demo bench simulate clean-demo messages

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

demo: venv
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py seed_demo --url http://127.0.0.1:$(PORT)/
	$(PY) manage.py rundemo --port $(PORT)

# Re-extract the translatable strings into locale/zh_Hans and recompile the
# catalogue; `make test` fails while a string has no zh-Hans translation.
messages: venv
	$(PY) manage.py makemessages -l zh_Hans --no-location -i '.venv/*' -i 'var/*' -i 'staticfiles/*' -i 'tests/*' -i 'hostagent/*' -i 'scheduler/*'
	$(PY) manage.py compilemessages -l zh_Hans -i .venv

bench: venv
	$(PY) -m scheduler.bench

clean-demo:
	rm -rf var/
