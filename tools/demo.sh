#!/bin/sh
# demo.sh — numaheap's main job, end to end: build the library, then run a
# real program with numaheap in place of its malloc and show what numaheap
# did for it.
#
#   tools/demo.sh [sqlite|python]      (default: sqlite)
#
# sqlite: sqlite3 builds a 200,000-row database generated on the fly, indexes
#         it and answers a few queries;
# python: python3 runs an allocation-heavy script (tests/override/workload.py)
#         with PYTHONMALLOC=malloc, so every Python object comes from malloc.
# The program runs as  LD_PRELOAD=<build>/libnumaheap.so NUMAHEAP_STATS=1 <program>:
# its own output comes first, then the statistics table numaheap prints to
# stderr when the program exits. DEMO_BUILD_DIR=<dir> picks the build
# directory (default build).
set -eu
cd "$(dirname "$0")/.."
what=${1:-sqlite}
case "$what" in
sqlite | python) ;;
*) echo "usage: $0 [sqlite|python]" >&2; exit 2 ;;
esac
BUILD=${DEMO_BUILD_DIR:-build}

tools/install-deps.sh
echo "== building numaheap (cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release)" >&2
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target numaheap numaheap_static >/dev/null
LIB=$(cd "$BUILD" && pwd)/libnumaheap.so
[ -f "$LIB" ] || { echo "demo: $LIB was not built" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/numaheap-demo.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

run() { # show the command, then run it with numaheap preloaded
	echo "== LD_PRELOAD=$LIB NUMAHEAP_STATS=1 $*" >&2
	LD_PRELOAD=$LIB NUMAHEAP_STATS=1 "$@"
}

case "$what" in
sqlite)
	command -v sqlite3 >/dev/null || { echo "demo: sqlite3 is not installed" >&2; exit 1; }
	cat >"$TMP/demo.sql" <<'EOF'
.headers on
.mode column
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, product TEXT, qty INTEGER, price REAL, day TEXT, note TEXT);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
INSERT INTO orders
  SELECT i, 'customer-' || (i * 7919 % 5000), 'product-' || (i * 31 % 300), 1 + i % 9,
         round((i * 37 % 10000) / 100.0, 2), date('2024-01-01', '+' || (i % 366) || ' days'),
         substr('express gift-wrapped fragile priority standard bulk', 1 + i % 40, 1 + i % 23)
  FROM n;
COMMIT;
CREATE INDEX orders_customer ON orders(customer);
CREATE INDEX orders_day ON orders(day, product);
SELECT count(*) AS orders, count(DISTINCT customer) AS customers, count(DISTINCT product) AS products,
       round(sum(qty * price), 2) AS revenue FROM orders;
SELECT substr(day, 1, 7) AS month, count(*) AS orders, round(sum(qty * price), 2) AS revenue
  FROM orders GROUP BY month ORDER BY month LIMIT 6;
SELECT customer, count(*) AS orders, round(sum(qty * price), 2) AS spent
  FROM orders GROUP BY customer ORDER BY spent DESC LIMIT 5;
SELECT product, group_concat(DISTINCT substr(day, 6, 2)) AS months
  FROM (SELECT product, day FROM orders WHERE customer = 'customer-42' ORDER BY day)
  GROUP BY product ORDER BY product LIMIT 5;
SELECT product, revenue, rank() OVER (ORDER BY revenue DESC) AS rank
  FROM (SELECT product, round(sum(qty * price), 2) AS revenue FROM orders GROUP BY product)
  ORDER BY rank LIMIT 5;
UPDATE orders SET note = upper(note) || ' (checked)' WHERE qty > 7;
DELETE FROM orders WHERE id % 4 = 0;
VACUUM;
SELECT count(*) AS orders_left, sum(length(note)) AS note_bytes FROM orders;
PRAGMA integrity_check;
EOF
	run sqlite3 -batch "$TMP/demo.db" <"$TMP/demo.sql"
	;;
python)
	PY=/usr/bin/python3
	[ -x "$PY" ] || PY=$(command -v python3) || { echo "demo: python3 is not installed" >&2; exit 1; }
	PYTHONMALLOC=malloc PYTHONHASHSEED=0 run "$PY" tests/override/workload.py
	;;
esac
