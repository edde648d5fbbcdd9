#!/usr/bin/env bash
# What the two shared libraries export: syrpc.so only what PostgreSQL looks
# up (the module magic, _PG_init, and the C functions the SQL scripts name,
# with their info functions); libsyrpc.so only the API of syrpc.h.  Run
# after the build (make test builds and installs first).
set -uo pipefail
cd "$(dirname "$0")/.."
source test/tap_lib.sh
exported() { nm -D --defined-only "$1" | awk '{print $3}' | sort -u; }

so=$(pg_config --pkglibdir)/syrpc.so
c_names=$(grep -ohE "'MODULE_PATHNAME', '[a-z_0-9]+'" extension/syrpc--*.sql | sed -E "s/.*, '(.*)'/\1/" | sort -u)
want=$( { echo Pg_magic_func; echo _PG_init; for f in $c_names; do echo "$f"; echo "pg_finfo_$f"; done; } | sort -u)
got=$(exported "$so")
if [ "$got" = "$want" ]; then ok "syrpc.so exports the module magic, _PG_init and the $(echo "$c_names" | wc -w) SQL entry points only"
else fail "syrpc.so exports the module magic, _PG_init and the SQL entry points only" \
    "extra: $(comm -13 <(echo "$want") <(echo "$got") | tr '\n' ' ')" "missing: $(comm -23 <(echo "$want") <(echo "$got") | tr '\n' ' ')"; fi

api=$(grep -oE "\bsyrpc_[a-z_]+\(" client/c/syrpc.h | tr -d '(' | sort -u)
got=$(exported client/c/libsyrpc.so)
if [ "$got" = "$api" ]; then ok "libsyrpc.so exports the $(echo "$api" | wc -w) functions of syrpc.h only"
else fail "libsyrpc.so exports the functions of syrpc.h only" \
    "extra: $(comm -13 <(echo "$api") <(echo "$got") | tr '\n' ' ')" "missing: $(comm -23 <(echo "$api") <(echo "$got") | tr '\n' ' ')"; fi

tap_end
