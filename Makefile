# valkeyops.secure: the one entry point.
#   make demo    start a throwaway Valkey, harden it with valkey_config, twice
#   make test    everything CI runs (installs what it needs first)
#   make molecule   the roles' scenarios against localhost
#   make site    a hardened Valkey on this machine (example inventory), then
#   make audit   the compliance audit of it (passes)
#   make build   cross-compile bin/valkeyops_linux_{amd64,arm64}
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
GO_SOURCES := $(shell find cmd internal modules -name '*.go' -not -name '*_test.go' 2>/dev/null) go.mod go.sum
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

.PHONY: venv venv-oldest
venv: $(VENV)/.installed
venv-oldest: $(VENV_OLDEST)/.installed

# ---- build --------------------------------------------------------------------

bin/SHA256SUMS: $(GO_SOURCES)
	@mkdir -p bin
	@for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; \
	  echo "go build valkeyops for $$os/$$arch"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(GOFLAGS_BUILD) -o bin/valkeyops_$${os}_$${arch} ./cmd/valkeyops; \
	done
	@cd bin && sha256sum valkeyops_linux_amd64 valkeyops_linux_arm64 > SHA256SUMS

.PHONY: build
build: bin/SHA256SUMS

$(TARBALL): bin/SHA256SUMS $(VENV)/.installed galaxy.yml $(shell find plugins roles playbooks meta files examples changelogs LICENSES -type f 2>/dev/null) README.md CHANGELOG.md
	@mkdir -p $(DIST)
	$(VENV)/bin/ansible-galaxy collection build --force --output-path $(DIST) .

.PHONY: collection
collection: $(TARBALL)

# ---- demo ---------------------------------------------------------------------

.PHONY: demo
demo: system-deps venv build
	@bash scripts/demo.sh

# ---- tests ----------------------------------------------------------------------

.PHONY: test
test: system-deps venv venv-oldest build collection go-test ansible-test molecule lint

.PHONY: go-test
go-test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

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

.PHONY: ansible-test
ansible-test: build collection
	$(VENV)/bin/python -m pytest -q tests/integration --venv $(VENV) --venv-oldest $(VENV_OLDEST) --tarball $(TARBALL)

# ansible-lint and molecule resolve the collection's FQCNs through a
# collections path that points back at this checkout.
LINT_COLLECTIONS := .cache/collections
.PHONY: collections-link
collections-link:
	@mkdir -p $(LINT_COLLECTIONS)/ansible_collections/valkeyops
	@ln -sfn ../../../.. $(LINT_COLLECTIONS)/ansible_collections/valkeyops/secure

# Molecule scenarios against localhost (default driver, no container engine).
# They install and run Valkey on this machine as root, on port 6379.
.PHONY: molecule
molecule: system-deps venv build collections-link
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH VALKEYOPS_PYTHON=$(CURDIR)/$(VENV)/bin/python \
	  VALKEYOPS_MOLECULE_ADMIN_PASSWORD=$$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n') \
	  VALKEYOPS_MOLECULE_APP_PASSWORD=$$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n') \
	  $(VENV)/bin/molecule test --all

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

.PHONY: lint
lint: venv collections-link
	$(GO) vet ./...
	@test -z "$$(gofmt -l cmd internal modules)" || { echo "gofmt needed:"; gofmt -l cmd internal modules; exit 1; }
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/$(LINT_COLLECTIONS) \
	  ANSIBLE_VAULT_PASSWORD_FILE=$(CURDIR)/examples/inventory/vault-password.txt $(VENV)/bin/ansible-lint
	$(VENV)/bin/python scripts/role_docs.py --check
	$(MAKE) --no-print-directory sanity

# ansible-test sanity, the tests that need no extra venv: the others bootstrap
# pip from a host outside the registries this machine reaches.
# Outside the checkout: inside it, ansible-test asks git and finds the copy ignored.
SANITY_DIR := $(or $(TMPDIR),/tmp)/valkeyops-sanity/ansible_collections/valkeyops/secure
SANITY_TESTS := action-plugin-docs compile empty-init line-endings no-assert no-smart-quotes shebang symlinks use-compat-six
.PHONY: sanity
sanity: venv
	@rm -rf $(SANITY_DIR) && mkdir -p $(SANITY_DIR)
	@git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t $(SANITY_DIR)
	cd $(SANITY_DIR) && $(CURDIR)/$(VENV)/bin/ansible-test sanity --python 3.11 $(addprefix --test ,$(SANITY_TESTS))

# ---- benchmarks (never part of make test) ------------------------------------------

.PHONY: bench
VENV_BENCH := .venv-bench
$(VENV_BENCH)/.installed: requirements/bench.txt
	$(PYTHON) -m venv $(VENV_BENCH)
	$(VENV_BENCH)/bin/pip install --quiet --disable-pip-version-check -r requirements/bench.txt
	touch $@

bench: system-deps venv build $(VENV_BENCH)/.installed
	$(VENV_BENCH)/bin/python bench/per_task.py
	$(VENV_BENCH)/bin/python bench/acl_users.py
	$(VENV_BENCH)/bin/python bench/drift_targets.py

.PHONY: clean
clean:
	rm -rf bin $(DIST) build tests/output
