# ngx_http_next_upstream_status_module: build, test, run.
# `make help` lists the targets.

MODULE        := ngx_http_next_upstream_status_module
NGINX_VERSION := 1.28.3
BUILD         := $(CURDIR)/build

# The pinned nginx: source from the nginx-src crate, configured and installed under build/.
NGINX_TREE    := $(BUILD)/nginx-$(NGINX_VERSION)
NGINX_PREFIX  := $(BUILD)/nginx
NGINX_BIN     := $(NGINX_PREFIX)/sbin/nginx
NGINX_CONFIGURE_FLAGS := \
	--prefix=$(NGINX_PREFIX) \
	--with-compat --with-debug --with-threads \
	--with-http_ssl_module --with-http_v2_module --with-http_realip_module \
	--with-http_auth_request_module --with-http_sub_module \
	--with-http_dav_module

# The module is built against a configured tree's objs/ directory. Another tree can be
# given with NGINX_BUILD_DIR=<tree>/objs (or NGINX_SOURCE_DIR=<tree>); each tree gets its
# own cargo target dir, because changing trees re-runs bindgen.
# The .so of another tree goes to build/modules/<tree>/. (Absolute paths: make exports
# command-line variables to cargo, whose build scripts run in their own directories.)
ifdef NGINX_SOURCE_DIR
override NGINX_SOURCE_DIR := $(abspath $(NGINX_SOURCE_DIR))
NGINX_BUILD_DIR ?= $(NGINX_SOURCE_DIR)/objs
endif
NGINX_BUILD_DIR ?= $(NGINX_TREE)/objs
override NGINX_BUILD_DIR := $(abspath $(NGINX_BUILD_DIR))
NGINX_TREE_NAME := $(notdir $(patsubst %/objs,%,$(NGINX_BUILD_DIR)))
TARGET_DIR    := $(BUILD)/target/$(NGINX_TREE_NAME)
ifeq ($(NGINX_BUILD_DIR),$(NGINX_TREE)/objs)
MODULE_SO     := $(BUILD)/modules/$(MODULE).so
else
MODULE_SO     := $(BUILD)/modules/$(NGINX_TREE_NAME)/$(MODULE).so
endif
RUST_SOURCES  := Cargo.toml Cargo.lock build.rs $(shell find src -name '*.rs' -o -name '*.c')

PROVE_ENV     := TEST_NGINX_BINARY=$(NGINX_BIN) TEST_NGINX_LOAD_MODULES=$(MODULE_SO)

.PHONY: FORCE all build nginx module deps test unittest test-bitfields prove test-e2e check demo clean help \
	debian test-debian test-add-dynamic-module fuzz test-asan test-reload bench bench-storage \
	bench-smoke test-matrix deb test-deb test-deb-chroot test-deb-suites

all: build

## build: nginx 1.28.3 and the module (build/nginx/sbin/nginx, build/modules/*.so)
build: nginx module

## deps: install the Debian packages the build and the tests need (idempotent)
deps:
	@scripts/install-deps.sh

nginx: $(NGINX_BIN)

module: $(MODULE_SO)

# The flags the tree was configured with: changing NGINX_CONFIGURE_FLAGS configures it again.
NGINX_FLAGS_USED := $(BUILD)/nginx-configure-flags
$(NGINX_FLAGS_USED): FORCE
	@mkdir -p $(BUILD)
	@echo '$(NGINX_CONFIGURE_FLAGS)' | cmp -s - $@ || echo '$(NGINX_CONFIGURE_FLAGS)' >$@

FORCE:

$(NGINX_TREE)/Makefile: $(NGINX_FLAGS_USED) | deps
	rm -rf $(NGINX_TREE)
	mkdir -p $(BUILD)
	cp -r "$$(scripts/nginx-src-dir)" $(NGINX_TREE)
	cd $(NGINX_TREE) && ./auto/configure $(NGINX_CONFIGURE_FLAGS) >configure.log

$(NGINX_BIN): $(NGINX_TREE)/Makefile
	$(MAKE) -C $(NGINX_TREE) -j2 >/dev/null
	$(MAKE) -C $(NGINX_TREE) install >/dev/null

$(MODULE_SO): $(RUST_SOURCES) $(NGINX_BUILD_DIR)/ngx_auto_config.h | deps
	NGINX_BUILD_DIR=$(NGINX_BUILD_DIR) \
		cargo build --release --locked --target-dir $(TARGET_DIR)
	mkdir -p $(dir $@)
	# install, not cp: a new file, so that a running nginx keeps the old one mapped
	install -m 0755 $(TARGET_DIR)/release/lib$(MODULE).so $@

$(NGINX_TREE)/objs/ngx_auto_config.h: $(NGINX_TREE)/Makefile

## test: every test: unit tests, the t/ suite against a real nginx, the end-to-end tests
test: check unittest test-bitfields prove test-reload test-e2e fuzz test-asan test-debian test-add-dynamic-module \
	test-matrix bench-smoke test-deb test-deb-suites

## unittest: the pure logic's table-driven tests (need no nginx)
unittest:
	cargo test --locked --no-default-features

## test-bitfields: the module's inline reads and writes of nginx's bit fields against the C compiler's own (tests/bitfields.rs), for the tree of NGINX_BUILD_DIR (test-matrix and test-debian run it for theirs)
test-bitfields: $(NGINX_BUILD_DIR)/ngx_auto_config.h | deps
	NGINX_BUILD_DIR=$(NGINX_BUILD_DIR) \
		cargo test --locked --test bitfields --target-dir $(TARGET_DIR)

## prove: the t/*.t suite against build/nginx with the module loaded
prove: build
	$(PROVE_ENV) prove -I t/lib t/

## test-e2e: t/e2e/: two real registries behind nginx-conf/registry.conf (skopeo as client); local disks as one store (nginx-conf/storage-*.conf)
test-e2e: build
	scripts/install-deps.sh e2e
	NGINX_BINARY=$(NGINX_BIN) NGX_MODULE=$(MODULE_SO) prove t/e2e

## test-matrix: for each nginx-*.tar.gz in NGINX_SRC_DIR (../shared/nginx-src): build it and the module, run t/ (HTTP/1.1 and HTTP/2 upstreams) and the e2e tests (registry, storage)
NGINX_SRC_DIR ?= ../shared/nginx-src
test-matrix: | deps
	scripts/install-deps.sh e2e
	NGINX_CONFIGURE_FLAGS='$(NGINX_CONFIGURE_FLAGS)' scripts/test-matrix.sh $(NGINX_SRC_DIR)

## debian: the module for Debian's own nginx (installs nginx, nginx-dev): build/debian/*.so
debian:
	scripts/build-debian.sh

## test-debian: test-bitfields on Debian's nginx tree, then the t/ suite against Debian's /usr/sbin/nginx with build/debian/*.so
test-debian: debian
	$(MAKE) --no-print-directory test-bitfields NGINX_BUILD_DIR=$(BUILD)/debian-nginx-$$(/usr/sbin/nginx -v 2>&1 | sed -n 's|^nginx version: nginx/||p')/objs
	scripts/test-debian.sh

SUITE ?= $(shell . /etc/os-release && echo $$VERSION_CODENAME)

## deb: the Debian package libnginx-mod-http-next-upstream-status for SUITE's nginx (bookworm, trixie, sid; default: this machine's), dpkg-buildpackage with debian/ against that suite's nginx-dev: build/deb/SUITE/*.deb; lintian errors fail it
deb:
	scripts/install-deps.sh deb
	SUITE=$(SUITE) scripts/build-deb.sh

## test-deb: apt-get install the package; nginx -t and a request with Debian's own nginx.conf; remove, purge, nginx starts
test-deb: deb
	SUITE=$(SUITE) scripts/test-deb.sh

## test-deb-chroot: the package of SUITE in a clean chroot of SUITE (mmdebstrap, cached in build/chroot/SUITE): t/ with that suite's /usr/sbin/nginx, then test-deb inside it; in the network namespace NETNS if set
test-deb-chroot: deb
	scripts/install-deps.sh deb
	SUITE=$(SUITE) NETNS=$(NETNS) scripts/test-deb-chroot.sh

## test-deb-suites: make deb and test-deb-chroot for trixie (nginx 1.26.3) and sid (nginx 1.30.6)
test-deb-suites:
	$(MAKE) test-deb-chroot SUITE=trixie
	$(MAKE) test-deb-chroot SUITE=sid

## test-add-dynamic-module: nginx's own build (./configure --add-dynamic-module) of a fresh 1.28.3 tree; load, request, t/
test-add-dynamic-module:
	scripts/test-add-dynamic-module.sh

## fuzz: the directive parser's property tests (proptest, not a coverage-guided fuzzer), FUZZ_CASES per property (tests/parser_props.rs); prints the total
FUZZ_CASES ?= 150000
fuzz:
	mkdir -p $(BUILD)
	PROPTEST_CASES=$(FUZZ_CASES) \
	CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true \
		cargo test --locked --release --no-default-features \
		--target-dir $(BUILD)/target/fuzz --test parser_props >$(BUILD)/fuzz.log 2>&1; \
		status=$$?; cat $(BUILD)/fuzz.log; [ $$status -eq 0 ]
	@# The total from the run: the properties cargo says passed, each run with FUZZ_CASES
	@# cases that passed (proptest counts a case it rejected as no case). No case: fail.
	@awk -v cases=$(FUZZ_CASES) \
		'/^test result: ok\. [0-9]+ passed/ { n += $$4 } \
		END { if (n * cases == 0) { printf "fuzz: FAIL: %d properties x %d cases ran\n", n, cases; exit 1 } \
		printf "fuzz: %d properties x %d cases = %d cases, all passed\n", n, cases, n * cases }' \
		$(BUILD)/fuzz.log

## test-asan: t/ and t/reload/ against nginx and the module built with AddressSanitizer (build/asan/)
test-asan: | deps
	NGINX_VERSION=$(NGINX_VERSION) NGINX_CONFIGURE_FLAGS='$(NGINX_CONFIGURE_FLAGS)' scripts/test-asan.sh

## test-reload: ten reloads and a binary upgrade under load; no request may fail
test-reload: build
	$(PROVE_ENV) prove t/reload/

## bench: the module against stock nginx: wall clock (wrk), instructions per request (callgrind), memory; the instructions again on the newest nginx in NGINX_SRC_DIR (built like test-matrix); then bench-storage; each prints how long it took
bench: build
	scripts/install-deps.sh bench
	scripts/bench.sh --nginx $(NGINX_BIN) --module $(MODULE_SO)
	@newest=$$(ls $(NGINX_SRC_DIR)/nginx-*.tar.gz 2>/dev/null | sort -V | tail -1); \
	if [ -z "$$newest" ]; then \
		echo "bench: no nginx-*.tar.gz in $(NGINX_SRC_DIR): instructions on the newest nginx left out"; \
	else \
		set -e; paths=$$(NGINX_CONFIGURE_FLAGS='$(NGINX_CONFIGURE_FLAGS)' \
			scripts/test-matrix.sh --build "$$newest"); \
		scripts/bench.sh --no-wall --no-memory --nginx $$(echo "$$paths" | sed -n 1p) \
			--module $$(echo "$$paths" | sed -n 2p); \
	fi
	scripts/bench-storage.pl --nginx $(NGINX_BIN) --module $(MODULE_SO)

## bench-storage: reads through nginx-conf/storage-front.conf over 1, 2, 4, 8 storage servers, round robin, consistent hash and sticky learn (on an nginx 1.29.6+ from NGINX_SRC_DIR: built like test-matrix); prints how long it took
bench-storage: build
	scripts/install-deps.sh bench
	scripts/bench-storage.pl --nginx $(NGINX_BIN) --module $(MODULE_SO)

## bench-smoke: scripts/bench.sh --quick --no-wall and scripts/bench-storage.pl --quick: the benchmarks' checks with tiny durations (the wall clock, which gives no verdict, only in make bench)
bench-smoke: build
	scripts/install-deps.sh bench
	scripts/bench.sh --quick --no-wall --nginx $(NGINX_BIN) --module $(MODULE_SO)
	scripts/bench-storage.pl --quick --nginx $(NGINX_BIN) --module $(MODULE_SO)

## check: formatting and lints
check: $(NGINX_BUILD_DIR)/ngx_auto_config.h | deps
	cargo fmt --check
	cargo clippy --locked --all-targets --no-default-features -- -D warnings
	NGINX_BUILD_DIR=$(NGINX_BUILD_DIR) \
		cargo clippy --locked --all-targets --target-dir $(TARGET_DIR) -- -D warnings

## demo: start nginx with the module and two local backends, show a 404 falling through
demo: build
	scripts/demo.sh $(NGINX_BIN) $(MODULE_SO)

## clean: remove everything built
clean:
	rm -rf $(BUILD) target t/servroot

## help: list the targets
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)
