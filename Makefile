# gridgate: the two quick-start commands are `make run` and `make test`.
# Both install what is missing first (Debian packages, as root), then build.

BUILD      ?= build
ASAN_BUILD ?= build-asan
DEMO_DIR   ?= demo
JOBS       ?= $(shell nproc)
CTEST_ARGS ?= -LE slow
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 20

.PHONY: all deps build asan run test test-fast test-asan clean bench-rr fuzz fuzz-build bench-store bench-e2e bench-crypto

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGG_SANITIZE=ON

asan: $(ASAN_BUILD)/Makefile
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# The libFuzzer harnesses (tests/fuzz/), built with clang, ASan and UBSan.
$(FUZZ_BUILD)/Makefile: CMakeLists.txt
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGG_FUZZ=ON

fuzz-build: $(FUZZ_BUILD)/Makefile
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers

# Each harness for FUZZ_SECONDS; figures in $(FUZZ_BUILD)/fuzz/fuzz-stats.txt.
fuzz: deps fuzz-build
	cd $(FUZZ_BUILD) && FUZZ_SECONDS=$(FUZZ_SECONDS) ctest --output-on-failure -L fuzz

# Both roles on this machine: PKI, configs and a seeded marketing database in $(DEMO_DIR).
run: deps build
	$(BUILD)/gridgate demo $(DEMO_DIR)

# Every test, in the normal build and again under ASan+UBSan.
test: deps build asan fuzz-build
	cd $(BUILD) && ctest --output-on-failure -j 2 $(CTEST_ARGS)
	cd $(FUZZ_BUILD) && FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) ctest --output-on-failure -j 2 -L fuzz
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j 2 $(CTEST_ARGS)

# The normal build only, for quick iteration.
test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j 2 $(CTEST_ARGS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

# Request/reply through both queue managers and the channel, against
# RabbitMQ started privately on 127.0.0.1 (bench/rr.sh, bench/rr.c).
bench-rr: deps build
	cmake --build $(BUILD) --target bench_rr
	bash bench/rr.sh $(BUILD)/bench_rr $(RR_ARGS)

# Group commit: 64 producers + 64 consumers of durable 1 KiB messages
# against a raw write+fdatasync loop on the same file system (bench/store.c).
# Seal/open per second for each suite (1 KiB) and request/reply at 64
# requesters with security off and on (bench/crypto.c).
bench-crypto: deps build
	cmake --build $(BUILD) --target bench_crypto
	$(BUILD)/bench_crypto $(CRYPTO_ARGS)

bench-store: deps build
	cmake --build $(BUILD) --target bench_store
	mkdir -p $(BUILD)/tmp/bench-store
	$(BUILD)/bench_store --dir $(BUILD)/tmp/bench-store

# The gateway against the database served directly (issue 7): 200,000 accounts x 24 months
# (seeded once into $(BUILD)/e2e-data), 64 clients x 30 s each way; last line
# `e2e rps=... p50_ms=... p99_ms=... baseline_rps=... ratio=...`. E2E_ACCOUNTS, E2E_SECONDS,
# E2E_CLIENTS override.
bench-e2e: deps build
	BUILD=$(BUILD) bash bench/e2e.sh
