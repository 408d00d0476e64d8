# djbake: bake verified, Django-ready server images with Packer.
# `make help` lists the targets. The two that matter on a fresh machine:
#   make image    bake, verify and record an image (PROVIDER=qemu by default)
#   make test     install everything needed and run every test
SHELL := /bin/bash
.DEFAULT_GOAL := help

PROVIDER ?= qemu
IMAGE ?= django-web
VENV ?= .venv
PY := $(VENV)/bin/python
DJBAKE := $(VENV)/bin/djbake
PYTEST_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian/Ubuntu packages djbake uses on the host.
APT_PACKAGES := packer qemu-system-x86 qemu-utils mmdebstrap docker.io shellcheck \
	genisoimage xorriso openssh-client python3-venv curl git lynis apt-cacher-ng iproute2 \
	postgresql pebble

.PHONY: help deps apt-cache image render validate verify images latest launch bench test test-fast test-faults test-matrix test-rebuild lint clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: PROVIDER=$(PROVIDER) (qemu docker aws linode rackspace digitalocean hetzner gcp azure, a,b,c or all) IMAGE=$(IMAGE)"

deps: $(VENV)/.installed .deps-apt.stamp ## Install host packages (apt) and the Python venv

.deps-apt.stamp: Makefile
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@touch $@

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

render: deps ## Write Packer templates to build/<image>/<provider>/
	$(DJBAKE) render --image $(IMAGE) --provider $(PROVIDER)

validate: deps ## Render and `packer validate` the templates of every provider
	$(DJBAKE) validate --image $(IMAGE) --provider all

apt-cache: deps ## Start the host's package cache (apt-cacher-ng) that local builds fetch through
	@bash scripts/host/start-apt-cache.sh || echo "apt-cache: not started; builds fetch packages directly"

image: deps apt-cache ## Bake, gate, verify and record an image for PROVIDER (default qemu)
	$(DJBAKE) image --image $(IMAGE) --provider $(PROVIDER)

images: deps ## List the images in the catalog
	$(DJBAKE) images

latest: deps ## Print the newest verified image for PROVIDER
	$(DJBAKE) latest --provider $(PROVIDER)

launch: deps ## Boot/create a VM from the newest verified image for PROVIDER
	$(DJBAKE) launch --provider $(PROVIDER)

# BENCH_ARGS=--no-audit leaves out Lynis and OpenSCAP (about 50 min of a qemu run under TCG).
bench: deps apt-cache $(VENV)/.bench-installed ## Measure build/rebuild/boot/size/gate/validate vs same-run baselines (PROVIDER=qemu by default): bench/report.md
	$(DJBAKE) bench --image $(IMAGE) --provider $(PROVIDER) $(BENCH_ARGS)

# The chart's matplotlib only for the benchmark, not for `make test`.
$(VENV)/.bench-installed: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install -q -e '.[bench]'
	@touch $@

test: deps ## Run every test: unit, Packer validate, docker loop, QEMU end to end, AWS vs moto
	@bash scripts/host/start-dockerd.sh || true   # before the cache, so it also listens on docker's bridge
	@bash scripts/host/start-apt-cache.sh || echo "apt-cache: not started; builds fetch packages directly"
	@bash tests/run-beside-qemu.sh $(PY) $(PYTEST_ARGS)

# The OS list is the OS table's (builder/tables.py); OSES="a b" runs only those.
test-matrix: deps ## Bake, gate and fresh-boot verify the default spec on every OS (docker loop): docs/os-matrix.md
	@bash scripts/host/start-dockerd.sh || true
	@bash scripts/host/start-apt-cache.sh || echo "apt-cache: not started; builds fetch packages directly"
	$(PY) -m builder.os_matrix $(OSES)
	$(PY) -m pytest -m matrix tests/test_os_matrix.py $(PYTEST_ARGS)

# make test skips the QEMU rebuild when it would take CI past its 90 minutes (slower machines); this runs
# the QEMU end-to-end module with it, alone (~90 min under TCG on the slower machines).
test-rebuild: deps ## The QEMU end-to-end tests with the cached-stack-layer rebuild always run
	DJBAKE_TEST_REBUILD=1 $(PY) -m pytest -m vm tests/test_qemu_e2e.py $(PYTEST_ARGS)

# make test plants the faults in groups; this plants each alone (~20 min here): docs/verification.md.
test-faults: deps ## Plant every fault of tests/test_planted_faults.py in its own container (docker)
	@bash scripts/host/start-dockerd.sh || true
	DJBAKE_PLANTED_FAULTS=each $(PY) -m pytest tests/test_planted_faults.py $(PYTEST_ARGS)

test-fast: deps ## Run the fast tests only (no VM, no container, no moto)
	$(PY) -m pytest -m "not vm and not docker and not moto" $(PYTEST_ARGS)

lint: deps ## shellcheck the scripts
	shellcheck scripts/*.sh scripts/host/*.sh tests/*.sh .ci/run

clean: ## Remove rendered templates and build outputs (keeps caches and the catalog)
	rm -rf build/$(IMAGE)
