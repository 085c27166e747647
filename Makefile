# valkeyops.secure: the one entry point.
#   make demo    start a throwaway Valkey, harden it with valkey_config, twice
#   make test    everything CI runs (installs what it needs first)
#   make molecule   the roles' scenarios on lab hosts (SCENARIO=name for one)
#   make lab-up / lab-down   lab hosts (127.0.0.11-13) for hands-on use
#   make site    a hardened Valkey on this machine (example inventory), then
#   make audit   the compliance audit of it (passes)
#   make build   cross-compile files/bin/valkeyops_linux_{amd64,arm64}
#   make collection   the Galaxy tarball, binaries inside
#   make bench   per-task cost against the raw floor, into docs/benchmarks.md
#   make fuzz    every Go fuzz target for FUZZTIME (default 60s) each
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
PLATFORMS := linux/amd64 linux/arm64
GO ?= go
PYTHON ?= python3
VENV := .venv
VENV_OLDEST := .venv-oldest
DIST := dist
TARBALL := $(DIST)/valkeyops-secure-$(VERSION).tar.gz
# Every file the binary is built from, embedded ones included (baseline.yml,
# the report's template and style sheet).
GO_SOURCES := $(shell find cmd internal modules -type f -not -name '*_test.go' -not -path '*/testdata/*' 2>/dev/null) go.mod go.sum
GOFLAGS_BUILD := -trimpath -ldflags "-s -w -buildid= -X main.version=$(VERSION)"

.PHONY: help
help:
	@echo "make demo | test | build | collection | bench | fuzz | lint | clean"

# ---- machine and tools ------------------------------------------------------

.PHONY: system-deps
system-deps: ## valkey-server 8 (bookworm-backports), sshd and sudo for the tests
	@bash scripts/install-system-deps.sh

$(VENV)/.installed: requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	touch $@

$(VENV_OLDEST)/.installed: requirements/oldest.txt
	$(PYTHON) -m venv $(VENV_OLDEST)
	$(VENV_OLDEST)/bin/pip install --quiet --disable-pip-version-check -r requirements/oldest.txt
	touch $@

VENV_LINT := .venv-lint
$(VENV_LINT)/.installed: requirements/lint.txt
	$(PYTHON) -m venv $(VENV_LINT)
	$(VENV_LINT)/bin/pip install --quiet --disable-pip-version-check -r requirements/lint.txt
	touch $@

.PHONY: venv venv-oldest lint-venv
venv: $(VENV)/.installed
venv-oldest: $(VENV_OLDEST)/.installed
lint-venv: $(VENV_LINT)/.installed

# ---- build --------------------------------------------------------------------

# The binaries ship in the tarball under files/bin/: ansible-test reads every
# file under a top-level bin/ as a Python script (compile and pep8 crashed).
BIN_DIR := files/bin
$(BIN_DIR)/SHA256SUMS: $(GO_SOURCES)
	@mkdir -p $(BIN_DIR)
	@for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; \
	  echo "go build valkeyops for $$os/$$arch"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(GOFLAGS_BUILD) -o $(BIN_DIR)/valkeyops_$${os}_$${arch} ./cmd/valkeyops; \
	done
	@cd $(BIN_DIR) && sha256sum valkeyops_linux_amd64 valkeyops_linux_arm64 > SHA256SUMS

# The modules' interface, printed by the binary (the one source): the action
# plugin validates and masks with it (one json.load per task).
SPEC := plugins/plugin_utils/valkeyops_spec.json
$(SPEC): $(GO_SOURCES)
	$(GO) run ./cmd/valkeyops spec > $@.tmp
	@mv $@.tmp $@

.PHONY: build
build: $(BIN_DIR)/SHA256SUMS $(SPEC)

$(TARBALL): $(BIN_DIR)/SHA256SUMS $(SPEC) $(VENV)/.installed galaxy.yml $(shell find plugins roles playbooks meta files examples changelogs LICENSES -type f 2>/dev/null) README.md CHANGELOG.md
	@mkdir -p $(DIST)
	$(VENV)/bin/ansible-galaxy collection build --force --output-path $(DIST) .

.PHONY: collection
collection: $(TARBALL)

# ---- demo ---------------------------------------------------------------------

.PHONY: demo
demo: system-deps venv build
	@bash scripts/demo.sh

# ---- tests ----------------------------------------------------------------------

# The stages of `make test`, in order; .ci/run runs and times them one by one
# (`make print-test-stages` lists them). The linters come before the long
# stages: a malformed changelog fragment fails in seconds, not after molecule.
TEST_STAGES := system-deps venv venv-oldest lint-venv build collection lint-code docs-lint changelog-lint \
	galaxy-importer go-test ansible-test molecule sanity-newest sanity-oldest
.PHONY: test print-test-stages
test: $(TEST_STAGES)
print-test-stages:
	@echo $(TEST_STAGES)

.PHONY: go-test
go-test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

# The concurrency soak alone: SOAK_PAIRS pairs of concurrent tasks through the
# binary, 0 disagreements between the server and its file (also in go-test).
SOAK_PAIRS ?= 200
.PHONY: soak
soak:
	VALKEYOPS_SOAK_PAIRS=$(SOAK_PAIRS) $(GO) test -count=1 -run TestSoakConcurrentPairs -v ./cmd/valkeyops/

# Each fuzz target for FUZZTIME; go-test above runs only their seed corpora
# (f.Add seeds and testdata/fuzz/<FuzzName>/). A failure leaves its input in
# the package's testdata/fuzz/<FuzzName>/: keep it there as a seed.
FUZZTIME ?= 60s
.PHONY: fuzz
fuzz:
	@grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' cmd internal modules | sort -u | \
	while IFS=: read -r file fn; do \
	  f=$${fn#func }; pkg=./$$(dirname $$file)/; \
	  echo "fuzz $$f in $$pkg for $(FUZZTIME)"; \
	  $(GO) test -run='^$$' -fuzz="^$$f\$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	done

# The 0.1.0 collection (commit eee2739 of main), built from this clone's own
# history, for the upgrade test (tests/integration/test_instances.py).
OLD_COMMIT := eee2739
OLD_TREE := .cache/valkeyops-0.1.0
OLD_TARBALL := $(OLD_TREE)/dist/valkeyops-secure-0.1.0.tar.gz
# tests/integration in two lanes side by side: the lab hosts' tests and the
# rest (scripts/pytest_lanes.py), each lane's output printed whole at the end.
.PHONY: ansible-test
ansible-test: build collection $(OLD_TARBALL)
	VALKEYOPS_OLD_TARBALL=$(CURDIR)/$(OLD_TARBALL) $(VENV)/bin/python scripts/pytest_lanes.py -- \
	  --venv $(VENV) --venv-oldest $(VENV_OLDEST) --tarball $(TARBALL) --durations=12

$(OLD_TARBALL): $(VENV)/.installed
	@rm -rf $(OLD_TREE) && mkdir -p $(OLD_TREE)
	git archive $(OLD_COMMIT) | tar -x -C $(OLD_TREE)
	$(MAKE) --no-print-directory -C $(OLD_TREE) build
	$(VENV)/bin/ansible-galaxy collection build --force --output-path $(OLD_TREE)/dist $(OLD_TREE)

# ansible-lint and molecule resolve the collection's FQCNs through a
# collections path that points back at this checkout.
LINT_COLLECTIONS := .cache/collections
.PHONY: collections-link
collections-link:
	@mkdir -p $(LINT_COLLECTIONS)/ansible_collections/valkeyops
	@ln -sfn ../../../.. $(LINT_COLLECTIONS)/ansible_collections/valkeyops/secure

# Molecule scenarios, each on its own lab hosts (scripts/lab/lab.py: sshd in a
# private mount namespace on 127.0.0.11-19), never on this machine's own
# Valkey. SCENARIO=name runs one; without it every scenario, in lanes that run
# side by side (scripts/molecule_lanes.py: scenarios sharing a lab host run one
# after the other in one lane; MOLECULE_JOBS lanes at a time; each scenario's
# output in .cache/molecule-logs/, a failed one printed whole).
MOLECULE_JOBS ?= 3
VALKEYOPS_LAB_DIR ?= /tmp/valkeyops-lab
export VALKEYOPS_LAB_DIR
LAB := $(VENV)/bin/python scripts/lab/lab.py
.PHONY: molecule
molecule: system-deps venv build collections-link
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH \
	  VALKEYOPS_MOLECULE_ADMIN_PASSWORD=$$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n') \
	  VALKEYOPS_MOLECULE_APP_PASSWORD=$$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n') \
	  $(if $(SCENARIO),$(VENV)/bin/molecule test --scenario-name $(SCENARIO),$(VENV)/bin/python scripts/molecule_lanes.py --jobs $(MOLECULE_JOBS))

# Lab hosts for hands-on use: `make lab-up` starts LAB_HOSTS and writes an
# inventory; ssh in with `ansible -i $(VALKEYOPS_LAB_DIR)/inventory.ini lab -m ping`,
# or enter one with `$(LAB) exec lab1`. `make lab-down` ends them.
LAB_HOSTS ?= lab1 lab2 lab3
.PHONY: lab-up lab-down
lab-up: venv
	$(LAB) up $(LAB_HOSTS)
	$(LAB) inventory $(LAB_HOSTS) > $(VALKEYOPS_LAB_DIR)/inventory.ini
	@echo "inventory: $(VALKEYOPS_LAB_DIR)/inventory.ini"
lab-down: venv
	$(LAB) down $(LAB_HOSTS)

# Quick start: a hardened Valkey on this machine (127.0.0.1 only) with the
# example inventory and its DUMMY vault password, then the audit, which
# passes. `make site TLS=true` adds TLS (a lab certificate, plain port off).
EXAMPLE_INVENTORY := examples/inventory
EXAMPLE_PLAYBOOK = ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/$(LINT_COLLECTIONS) $(VENV)/bin/ansible-playbook \
	-i $(EXAMPLE_INVENTORY) --vault-password-file $(EXAMPLE_INVENTORY)/vault-password.txt \
	$(if $(TLS),-e valkey_tls_enabled=$(TLS))
.PHONY: site audit
site: system-deps venv build collections-link
	$(EXAMPLE_PLAYBOOK) playbooks/site.yml
audit: venv build collections-link
	$(EXAMPLE_PLAYBOOK) playbooks/audit.yml

.PHONY: lint lint-code
lint: lint-code docs-lint changelog-lint galaxy-importer sanity
lint-code: venv collections-link
	$(GO) vet ./...
	@test -z "$$(gofmt -l cmd internal modules)" || { echo "gofmt needed:"; gofmt -l cmd internal modules; exit 1; }
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/$(LINT_COLLECTIONS) \
	  ANSIBLE_VAULT_PASSWORD_FILE=$(CURDIR)/examples/inventory/vault-password.txt $(VENV)/bin/ansible-lint
	$(VENV)/bin/python scripts/role_docs.py --check

# The checkers below run with the lint venv's bin first on PATH (antsibull-docs
# and antsibull-changelog call `ansible-doc`, galaxy-importer `ansible-lint`).
LINT_ENV := PATH=$(CURDIR)/$(VENV_LINT)/bin:$$PATH

# antsibull-docs: every plugin's DOCUMENTATION/EXAMPLES/RETURN against the
# docsite schema and its markup (what Ansible's docsite build would reject).
.PHONY: docs-lint
docs-lint: lint-venv
	$(LINT_ENV) $(VENV_LINT)/bin/antsibull-docs lint-collection-docs --plugin-docs .

# Changelog: fragments valid, and CHANGELOG.md exactly what
# antsibull-changelog generates from changelogs/changelog.yaml (edit the
# fragments, never CHANGELOG.md; `make changelog` regenerates it).
CHANGELOG_CHECK := $(or $(TMPDIR),/tmp)/valkeyops-changelog-$(shell id -u).md
.PHONY: changelog changelog-lint
changelog: lint-venv
	$(LINT_ENV) $(VENV_LINT)/bin/antsibull-changelog generate
changelog-lint: lint-venv
	$(LINT_ENV) $(VENV_LINT)/bin/antsibull-changelog lint
	@$(LINT_ENV) $(VENV_LINT)/bin/antsibull-changelog generate --output $(CHANGELOG_CHECK) --output-format md
	@cmp -s $(CHANGELOG_CHECK) CHANGELOG.md || { echo "CHANGELOG.md is not what antsibull-changelog generates: run make changelog"; \
	  diff -u CHANGELOG.md $(CHANGELOG_CHECK) | head -40; rm -f $(CHANGELOG_CHECK); exit 1; }
	@rm -f $(CHANGELOG_CHECK)

# galaxy-importer, as Galaxy runs it on upload, with flake8 and ansible-lint
# on: any WARNING or ERROR line fails. It extracts the tarball under a fresh
# temp dir outside the checkout (inside it, ansible-lint would take the
# checkout for the project).
.PHONY: galaxy-importer
galaxy-importer: lint-venv collection
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	printf '[galaxy-importer]\nRUN_FLAKE8 = True\nRUN_ANSIBLE_LINT = True\nRUN_ANSIBLE_TEST = False\nTMP_ROOT_DIR = %s\n' "$$dir" > "$$dir/galaxy-importer.cfg" && \
	cd "$$dir" && $(LINT_ENV) GALAXY_IMPORTER_CONFIG="$$dir/galaxy-importer.cfg" \
	  $(CURDIR)/$(VENV_LINT)/bin/python -m galaxy_importer.main $(CURDIR)/$(TARBALL) > importer.log 2>&1 || { cat importer.log; exit 1; }; \
	grep -v '^\(Loading\|Linting\) ' importer.log; \
	! grep -qE '^(WARNING|ERROR|CRITICAL)' importer.log || { echo "galaxy-importer reported the lines above"; exit 1; }

# ansible-test sanity, every test, on the collection as installed from its
# tarball, with the oldest supported and the newest ansible-core (each test's
# own pinned tools in venvs ansible-test makes). ansible-test bootstraps pip in
# those venvs with a script from a host this machine cannot reach:
# scripts/ansible_test_pip_bootstrap.py caches a stand-in that installs pip
# from the package index. The copy lives outside the checkout: inside it,
# ansible-test asks git, which ignores it.
# SANITY_PRUNE: paths deleted from the installed copy before the run. Empty:
# the binaries ship in files/bin/, which ansible-test does not read as Python
# (0.1.0's top-level bin/ crashed compile and pep8).
SANITY_PRUNE ?=
SANITY_ROOT := $(or $(TMPDIR),/tmp)/valkeyops-sanity-$(shell id -u)-$(notdir $(CURDIR))
SANITY_PYTHON := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
.PHONY: sanity sanity-newest sanity-oldest
sanity: sanity-newest sanity-oldest
sanity-newest: SANITY_VENV := $(VENV)
sanity-oldest: SANITY_VENV := $(VENV_OLDEST)
sanity-newest sanity-oldest: venv venv-oldest collection
	$(SANITY_VENV)/bin/python scripts/ansible_test_pip_bootstrap.py
	@rm -rf $(SANITY_ROOT)/$@ && mkdir -p $(SANITY_ROOT)/$@
	$(SANITY_VENV)/bin/ansible-galaxy collection install --force -p $(SANITY_ROOT)/$@ $(TARBALL) >/dev/null
	@cd $(SANITY_ROOT)/$@/ansible_collections/valkeyops/secure && rm -rf $(SANITY_PRUNE)
	cd $(SANITY_ROOT)/$@/ansible_collections/valkeyops/secure && \
	  $(CURDIR)/$(SANITY_VENV)/bin/ansible-test sanity --venv --python $(SANITY_PYTHON) --color no 2>&1 | \
	  grep -vE '^ *(Collecting|Downloading|Processing|Looking in links|Installing collected|Successfully (un)?installed|Requirement already|Attempting uninstall|Found existing|Uninstalling) |━|Skipping wheel'
	@rm -rf $(SANITY_ROOT)/$@

# ---- benchmarks (never part of make test) ------------------------------------------

.PHONY: bench
VENV_BENCH := .venv-bench
$(VENV_BENCH)/.installed: requirements/bench.txt
	$(PYTHON) -m venv $(VENV_BENCH)
	$(VENV_BENCH)/bin/pip install --quiet --disable-pip-version-check -r requirements/bench.txt
	touch $@

bench: system-deps venv build $(VENV_BENCH)/.installed
	$(VENV_BENCH)/bin/python bench/per_task.py
	$(VENV_BENCH)/bin/python bench/bridge_overhead.py
	$(VENV_BENCH)/bin/python bench/acl_users.py
	$(VENV_BENCH)/bin/python bench/drift_targets.py
	$(VENV_BENCH)/bin/python bench/audit_report.py
	$(VENV_BENCH)/bin/python bench/cluster_move.py
	$(VENV_BENCH)/bin/python bench/cluster_roll.py
	$(VENV_BENCH)/bin/python bench/rolling.py

# ---- stress (never part of make test) -------------------------------------------

# Flakiness hunt: the Go suite STRESS_COUNT times and the playbook suite
# STRESS_ROUNDS times, while a busy loop per core keeps the CPU saturated
# (scripts/stress.sh starts them and ends them by pid). A test that depends on
# timing fails here first.
STRESS_COUNT ?= 20
STRESS_ROUNDS ?= 3
.PHONY: stress
stress: system-deps venv venv-oldest build collection $(OLD_TARBALL)
	VALKEYOPS_OLD_TARBALL=$(CURDIR)/$(OLD_TARBALL) STRESS_COUNT=$(STRESS_COUNT) STRESS_ROUNDS=$(STRESS_ROUNDS) GO=$(GO) PYTEST="$(VENV)/bin/python -m pytest" \
	  PYTEST_ARGS="--venv $(VENV) --venv-oldest $(VENV_OLDEST) --tarball $(TARBALL)" bash scripts/stress.sh

.PHONY: clean
clean:
	rm -rf $(BIN_DIR) $(DIST) build tests/output
