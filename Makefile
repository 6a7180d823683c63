# Thin wrapper around CMake. The two commands a newcomer needs:
#   make run    install what is missing, build, start scimd on ./var/scimd.db
#   make test   install what is missing, build, run every test (plain build, then ASan+UBSan),
#               each build twice: on SQLite, then on PostgreSQL (a throwaway cluster started by
#               scripts/pg-test-cluster.sh; SCIMD_TEST_BACKEND=postgresql SCIMD_TEST_PG_URL=...)
#   make bench  release build, load N users, measure with wrk (bench/README.md, BENCHMARKS.md)
#   make fuzz   build the libFuzzer harnesses with clang and fuzz each for FUZZ_SECONDS (docs/fuzzing.md)
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
LISTEN     ?= 127.0.0.1:8080
DB         ?= var/scimd.db
CTEST_ARGS ?=
PG_CLUSTER := $(CURDIR)/scripts/pg-test-cluster.sh
ASAN_ENV   := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# $(call ctest_pg,BUILD_DIR,ENV): the suite once more on PostgreSQL; the cluster is stopped
# quietly afterwards so ctest's summary stays the last line.
# Tests that belong to one backend are left out of the other backend's pass (rather than being
# reported as skipped after ctest's summary), so that every pass ends with the summary line.
PG_ONLY_TESTS     ?= ^e2e/(multinode|pg_restart)$$
SQLITE_ONLY_TESTS ?= ^alloc/

define ctest_pg
	@url=$$($(PG_CLUSTER) start) || exit 1; \
	echo "== the suite on PostgreSQL ($$url)"; \
	cd $(1) && SCIMD_TEST_BACKEND=postgresql SCIMD_TEST_PG_URL="$$url" $(2) \
	  ctest --output-on-failure -j $(JOBS) -E '$(SQLITE_ONLY_TESTS)' $(CTEST_ARGS); rc=$$?; \
	$(PG_CLUSTER) stop >/dev/null 2>&1; exit $$rc
endef

BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZERS    ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))


.PHONY: all deps test-deps fuzz-deps build build-asan build-fuzz run test test-plain test-asan test-fuzz fuzz bench clean format

all: build

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

fuzz-deps:
	@scripts/install-deps.sh --fuzz

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Debug -DSCIMD_WERROR=ON

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD_ASAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DSCIMD_WERROR=ON -DSCIMD_SANITIZE=ON -DSCIMD_FAILALLOC=ON

build-asan: test-deps $(BUILD_ASAN)/CMakeCache.txt
	cmake --build $(BUILD_ASAN) -j $(JOBS)

run: build
	@mkdir -p $(dir $(DB))
	$(BUILD)/scimd --listen $(LISTEN) --db $(DB)

test-plain: test-deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -E '$(PG_ONLY_TESTS)' $(CTEST_ARGS)
	$(call ctest_pg,$(BUILD),)

test-asan: build-asan
	cd $(BUILD_ASAN) && $(ASAN_ENV) ctest --output-on-failure -j $(JOBS) -E '$(PG_ONLY_TESTS)' $(CTEST_ARGS)
	$(call ctest_pg,$(BUILD_ASAN),$(ASAN_ENV))

# A short fresh libFuzzer run of every harness (the corpus replays are ctest tests of both
# builds); a crash fails the run and leaves its reproducer in $(BUILD_FUZZ)/fuzz-<name>/artifacts/.
TEST_FUZZ_SECONDS ?= 10
test-fuzz:
	$(MAKE) fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)

# The plain build first, a short fuzzing run, then the whole suite again under ASan+UBSan, each
# suite on SQLite then on PostgreSQL; ctest's summary ends the run.
test: test-plain test-fuzz test-asan

# Benchmarks (bench/README.md): release build in build-release, N users on SQLite and on a
# durable PostgreSQL cluster, wrk load (bench/all.sh).
# Override N, DURATION, SCENARIOS, BACKEND, DB, ... in the environment.
bench: deps
	bench/all.sh

$(BUILD_FUZZ)/CMakeCache.txt:
	cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	  -DSCIMD_SANITIZE=ON -DSCIMD_FUZZ=ON

build-fuzz: fuzz-deps $(BUILD_FUZZ)/CMakeCache.txt
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target $(addprefix fuzz_,$(FUZZERS))

# Fuzzes each harness in turn for FUZZ_SECONDS over a scratch copy of its seed corpus; stops at
# the first crash, leaving the reproducer in $(BUILD_FUZZ)/fuzz-<name>/artifacts/.
# One harness only: make fuzz FUZZERS=filter
fuzz: build-fuzz
	@set -e; for f in $(FUZZERS); do \
	  w=$(BUILD_FUZZ)/fuzz-$$f; rm -rf $$w; mkdir -p $$w/corpus $$w/artifacts; \
	  cp tests/fuzz/corpus/$$f/* $$w/corpus/; \
	  d=; [ -f tests/fuzz/$$f.dict ] && d=-dict=tests/fuzz/$$f.dict; \
	  echo "== fuzz_$$f for $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(BUILD_FUZZ)/tests/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$$w/artifacts/ $$d $$w/corpus; \
	done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
