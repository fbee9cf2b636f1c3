# spanbridge — the two commands a person needs are `make run-local` and `make test`;
# both run `make setup` first, which installs whatever a fresh machine lacks.

SHELL := /bin/bash
ROOT := $(CURDIR)
BUILD := $(ROOT)/build
CLANG ?= clang
BPFTOOL ?= bpftool
ARCH := x86

# bpf/ holds one folder a tracer, named as its object (bpf/<name>/<name>.bpf.c and the headers only
# it includes -> build/bpf/<name>.bpf.o), and bpf/common/ for the headers more than one includes.
BPF_SRCS := $(wildcard bpf/*/*.bpf.c)
BPF_OBJS := $(patsubst %.bpf.c,$(BUILD)/bpf/%.bpf.o,$(notdir $(BPF_SRCS)))
TEST_BPF_SRCS := $(wildcard test/fixtures/bpf/*.bpf.c)
TEST_BPF_OBJS := $(patsubst test/fixtures/bpf/%.bpf.c,$(BUILD)/test-bpf/%.bpf.o,$(TEST_BPF_SRCS))
BPF_HDRS := $(wildcard bpf/*/*.h)
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Wpadded -Werror \
	-isystem $(BUILD)/bpf -Ibpf/common

.PHONY: all setup bpf bench-bpf test-bpf-objects ts collector test test-unit test-integration test-vm run-local clean gen-structs bench

all: bpf ts

# Installs everything a fresh machine lacks (Debian packages, npm deps, Go modules, the stock
# Collector); idempotent; heavy builds cached outside the clone (see scripts/setup.sh).
setup:
	@bash scripts/setup.sh

$(BUILD)/bpf/vmlinux.h:
	@mkdir -p $(dir $@)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

.SECONDEXPANSION:
$(BUILD)/bpf/%.bpf.o: bpf/$$*/$$*.bpf.c $(BPF_HDRS) $(BUILD)/bpf/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/test-bpf/%.bpf.o: test/fixtures/bpf/%.bpf.c $(BPF_HDRS) $(BUILD)/bpf/vmlinux.h
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The bench's own programs (built by make bench): bench/sections/tp-floor.ts's empty programs on the
# agent's syscall tracepoints; bench/sections/capture-floor.ts's minimal capture
$(BUILD)/bench/%.bpf.o: bench/bpf/%.bpf.c bpf/common/ring_wakeup.h $(BUILD)/bpf/vmlinux.h
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
bench-bpf: $(BUILD)/bench/tp_floor.bpf.o $(BUILD)/bench/min_capture.bpf.o

bpf: $(BPF_OBJS)

test-bpf-objects: $(TEST_BPF_OBJS)

ts:
	npx tsc -p tsconfig.json

collector:
	@bash scripts/build-collector.sh

# Every test layer; the README's test command. CI runs it through .ci/run.
test: setup test-bpf-objects
	@bash scripts/run-tests.sh

# Hermetic unit tests (no clang, no Go), then those on built BPF objects and Go fixtures.
test-unit: bpf ts
	@bash scripts/run-tests.sh --selectProjects unit unit-built

test-integration: setup test-bpf-objects
	@bash scripts/run-tests.sh --selectProjects integration

# Go propagation with bpf_probe_write_user and the any-language suite, inside QEMU guests booting
# Debian's own 6.1 and 6.12 kernels (lockdown none; older verifiers). Both kernels always run.
# See test/vm/README.md.
test-vm: setup test-bpf-objects
	@bash test/vm/prepare-kernel.sh --kernel all
	@status=0; for k in 6.1 6.12; do \
	  echo "test-vm: kernel $$k" >&2; \
	  test/vm/run --kernel $$k --timeout 2400 --overlay $(BUILD) -- bash scripts/run-tests.sh --selectProjects vm || status=1; \
	done; exit $$status

clean:
	rm -rf $(BUILD) dist

# The TypeScript view of the BPF records, generated from the objects' BTF.
gen-structs: bpf
	npx tsc --target ES2022 --module commonjs --esModuleInterop --skipLibCheck --types node \
		--outDir $(BUILD)/gen scripts/gen-structs.ts
	node $(BUILD)/gen/scripts/gen-structs.js $(BUILD)/bpf

# The main job: stock Collector + Go demo services under steady traffic + the agent. Ctrl-C stops all.
run-local: setup
	@bash scripts/run-local.sh

# Overhead and capacity, measured side by side (not part of `make test`; ~15 min on 2 cores):
# writes bench/results/<date>.{json,md} and bench/results/latest.md. Settings: bench/README.md.
bench: setup
	@bash bench/run.sh
