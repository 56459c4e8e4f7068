# gridgate: the two quick-start commands are `make run` and `make test`.
# Both install what is missing first (Debian packages, as root), then build.

BUILD      ?= build
ASAN_BUILD ?= build-asan
DEMO_DIR   ?= demo
JOBS       ?= $(shell nproc)
CTEST_ARGS ?= -LE slow

.PHONY: all deps build asan run test test-fast test-asan clean

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

# Both roles on this machine: PKI, configs and a seeded marketing database in $(DEMO_DIR).
run: deps build
	$(BUILD)/gridgate demo $(DEMO_DIR)

# Every test, in the normal build and again under ASan+UBSan.
test: deps build asan
	cd $(BUILD) && ctest --output-on-failure -j 2 $(CTEST_ARGS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j 2 $(CTEST_ARGS)

# The normal build only, for quick iteration.
test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j 2 $(CTEST_ARGS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
