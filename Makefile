# Coupler — two commands: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQS := requirements/web.txt requirements/dev.txt requirements/host.txt
DEB_PACKAGES := libvirt-dev pkg-config libvirt-clients libxml2-utils chromium systemd gettext fonts-wqy-microhei
# The demo's port: `make demo PORT=8123` serves there and writes that URL into
# var/demo-credentials.json (which `loadtest --live` drives).
PORT ?= 8000

# What the hypervisor tests (tests/hypervisor) and `make demo-host` need: QEMU,
# libvirtd, a kernel and busybox for the guest image. Installed only as root;
# elsewhere those tests skip and say why.
HV_PACKAGES := qemu-system-x86 qemu-utils libvirt-daemon-system busybox-static linux-image-amd64 cpio kmod
HV_PORT ?= 8200

.PHONY: venv test lint demo demo-host hypervisor-deps prod bench bench-reads simulate clean-demo messages

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

hypervisor-deps:
	@missing=""; for p in $(HV_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing the hypervisor packages:$$missing"; mkdir -p var; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) \
	      >var/hypervisor-deps.log 2>&1 || echo "apt-get failed (var/hypervisor-deps.log): the hypervisor tests will skip"; \
	  else echo "Not root: the hypervisor tests will skip (missing:$$missing)"; fi; \
	fi

# The hypervisor tests boot real VMs (minutes under TCG): they run beside the rest,
# in their own process and test database, and both must pass. The rest run on
# TEST_WORKERS pytest-xdist workers (each with its own test database, test_<db>_gwN);
# the tests that start real processes on shared resources (a Redis database, the
# prod-stack database, Chromium) run one after another in a third process beside
# them, with its own test database (COUPLER_TEST_PART, tests/conftest.py).
# TEST_WORKERS=0 runs the rest serially too.
TEST_WORKERS ?= auto
test: lint hypervisor-deps
	@mkdir -p var; \
	( if [ -n "$$DATABASE_URL" ]; then export DATABASE_URL="$${DATABASE_URL}_hv"; fi; \
	  exec $(VENV)/bin/pytest tests/hypervisor -p no:cacheprovider -rs ) >var/hypervisor-tests.log 2>&1 & hv=$$!; \
	( if [ -n "$$DATABASE_URL" ]; then export DATABASE_URL="$${DATABASE_URL}_serial"; fi; \
	  COUPLER_TEST_PART=serial exec $(VENV)/bin/pytest --ignore=tests/hypervisor -p no:cacheprovider -p no:xdist -rs ) >var/serial-tests.log 2>&1 & serial=$$!; \
	COUPLER_TEST_PART=parallel $(VENV)/bin/pytest --ignore=tests/hypervisor -n $(TEST_WORKERS); rest=$$?; \
	wait $$serial; serialrc=$$?; echo "--- serial tests: broker, browser, production stack (var/serial-tests.log):"; tail -n 15 var/serial-tests.log; \
	wait $$hv; hvrc=$$?; echo "--- tests/hypervisor (var/hypervisor-tests.log):"; tail -n 15 var/hypervisor-tests.log; \
	[ $$rest = 0 ] && [ $$serialrc = 0 ] && [ $$hvrc = 0 ]

# The demo chooses its development settings explicitly (DEBUG on, a dev key,
# loopback only); console.settings alone is production.
demo: export DJANGO_SETTINGS_MODULE := console.settings_dev
demo: venv
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py seed_demo --url http://127.0.0.1:$(PORT)/
	$(PY) manage.py rundemo --port $(PORT)

# Re-extract the translatable strings into locale/zh_Hans and recompile the
# catalogue; `make test` fails while a string has no zh-Hans translation.
# Of the host agent, only the check catalogue (hostagent/protocol/checks.py) holds console text (its titles and
# remediations): ignore every other path under hostagent/.
HOSTAGENT_NOT_CATALOGUE := -i 'hostagent/[!p]*' -i 'hostagent/p[!r]*' -i 'hostagent/protocol/[!c]*' -i 'hostagent/protocol/c[!h]*'
messages: export DJANGO_SETTINGS_MODULE := console.settings_dev
messages: venv
	$(PY) manage.py makemessages -l zh_Hans --no-location -i '.venv/*' -i 'var/*' -i 'staticfiles/*' -i 'tests/*' -i 'scheduler/*' -i 'coupler_common/*' $(HOSTAGENT_NOT_CATALOGUE)
	$(PY) -m console.ui.faulttext
	$(PY) manage.py compilemessages -l zh_Hans -i .venv

# The production processes on this machine (gunicorn + WhiteNoise, orchestrator,
# beat, the simulated agent), DEBUG off, against DATABASE_URL and REDIS_URL.
prod: venv
	deploy/run-local.sh

# This machine as a real host: libvirtd/virtlogd started if no service manager does,
# a busybox guest image built into the catalogue, the console with a real agent on
# qemu:///system; `make demo-host HUGEPAGES=2` also reserves and mounts 1 GiB pages.
demo-host: export DJANGO_SETTINGS_MODULE := console.settings_dev
demo-host: venv hypervisor-deps
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py demo_host --port $(HV_PORT) $(if $(HUGEPAGES),--hugepages $(HUGEPAGES),)

bench: venv
	$(PY) -m scheduler.bench

# Read paths at fleet scale (needs DATABASE_URL=postgres://…): see docs/reads.md.
bench-reads: venv
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py bench_reads $(BENCH_READS_ARGS)

clean-demo:
	rm -rf var/
