# syrpc: RPC over PostgreSQL.
#
#   make demo    install what is missing, build, start a throwaway cluster,
#                run an echo worker and caller, print what happened
#   make test    the same set-up, then every test suite
#   make bench   the same set-up, then the benchmark
#
# The extension builds with PGXS; the targets above first install
# PostgreSQL 15 and the other build dependencies (tools/install-deps.sh),
# so they work on a machine that has only make and a compiler.

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

EXTVERSION := $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" extension/syrpc.control)

MODULE_big = syrpc
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard extension/*.c)))
MODULEDIR = extension
DATA = extension/syrpc.control $(wildcard extension/syrpc--*.sql)
PG_CFLAGS = -fvisibility=hidden -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers $(SYRPC_WERROR)

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --load-extension=syrpc
ISOLATION_OPTS = --load-extension=syrpc
ISOLATION = $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))

ifneq ($(PGXS),)
include $(PGXS)
# PGXS knows no header dependencies (after the include: not the default goal).
$(OBJS): extension/syrpc_internal.h
extension/handoff.o extension/handoff_worker.o: extension/handoff.h
PG_MAJOR := $(shell $(PG_CONFIG) --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
ifneq ($(shell test $(PG_MAJOR) -ge 15 && echo ok),ok)
$(error syrpc needs PostgreSQL 15 or later; $(PG_CONFIG) is $(PG_MAJOR))
endif
else
all:
	@echo "pg_config not found: run 'make demo' or 'make test' (they install PostgreSQL 15 first)"
endif

.PHONY: deps demo test bench client

deps:
	@bash tools/install-deps.sh

demo: deps
	@bash tools/demo.sh

test: deps
	@bash tools/test-all.sh

bench: deps
	@bash tools/bench.sh

client:
	$(MAKE) -C client
