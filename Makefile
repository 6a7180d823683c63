# Thin wrapper around CMake. The two commands a newcomer needs:
#   make run    install what is missing, build, start scimd on ./var/scimd.db
#   make test   install what is missing, build, run every test (plain build, then ASan+UBSan)
#   make bench  release build, load N users, measure with wrk (bench/README.md, BENCHMARKS.md)
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
LISTEN     ?= 127.0.0.1:8080
DB         ?= var/scimd.db
CTEST_ARGS ?=

.PHONY: all deps test-deps build build-asan run test test-plain test-asan bench clean format

all: build

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Debug -DSCIMD_WERROR=ON

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD_ASAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DSCIMD_WERROR=ON -DSCIMD_SANITIZE=ON

build-asan: test-deps $(BUILD_ASAN)/CMakeCache.txt
	cmake --build $(BUILD_ASAN) -j $(JOBS)

run: build
	@mkdir -p $(dir $(DB))
	$(BUILD)/scimd --listen $(LISTEN) --db $(DB)

test-plain: test-deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

test-asan: build-asan
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# The plain build first, then the whole suite again under ASan+UBSan; ctest's summary ends the run.
test: test-plain test-asan

# Benchmarks (bench/README.md): release build in build-release, N users on SQLite, wrk load.
# Override N, DURATION, SCENARIOS, BACKEND, DB, ... in the environment.
bench: deps
	bench/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
