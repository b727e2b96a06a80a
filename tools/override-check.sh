#!/bin/sh
# override-check.sh — run real programs with and without numaheap preloaded
# and check that they behave the same.
#
#   tools/override-check.sh [path/to/libnumaheap.so] [program...]
#
# programs: python gcc git sqlite cxx (default: all). The library defaults to
# build/libnumaheap.so. For each program a workload runs twice in fresh
# directories: once plainly, once with LD_PRELOAD=<lib> and NUMAHEAP_STATS=json
# sent to a file per step (NUMAHEAP_STATS_FILE). A program passes when both
# runs exit 0, print the same stdout and stderr (the work directory's path
# replaced), and numaheap's statistics show it really served the preloaded
# run: every step wrote valid JSON with a cpu_mode, and the heavy steps made
# at least the given number of allocations. One line per program:
#   PASS <program>: <details>      FAIL <program>: <reason>
# then "N passed, N failed". Exit status 0 only if all passed. A program that
# is not installed FAILS (tools/install-deps.sh installs them).
#
# Environment: NH_CXX_WORKLOAD=path of a prebuilt tests/override/cxx_workload
# (otherwise it is compiled here with g++); PYTHON (default /usr/bin/python3,
# else python3 on PATH); NH_KEEP=1 keeps the work directory.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIB=""
if [ $# -gt 0 ]; then
	case "$1" in
	-h | --help)
		sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*.so | *.so.* | */*) LIB=$1; shift ;;
	esac
fi
[ -n "$LIB" ] || LIB=$ROOT/build/libnumaheap.so
if [ ! -f "$LIB" ]; then
	echo "FAIL: library $LIB not found (build it, or pass its path)"
	echo "0 passed, 1 failed"
	exit 1
fi
LIB=$(cd "$(dirname "$LIB")" && pwd)/$(basename "$LIB")
PROGS=${*:-python gcc git sqlite cxx}

if [ -z "${PYTHON:-}" ]; then
	if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=$(command -v python3 || echo python3); fi
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nh-override.XXXXXX")
if [ "${NH_KEEP:-0}" = 1 ]; then
	echo "work directory: $TMP"
else
	trap 'rm -rf "$TMP"' EXIT
	trap 'exit 130' INT TERM
fi

# A gcc -wrapper: each subprogram of the driver (cc1, as, collect2) writes
# its statistics to a file of its own, not over the driver's.
cat >"$TMP/gccwrap.sh" <<'EOF'
#!/bin/sh
case "${NUMAHEAP_STATS_FILE:-}" in
*.json)
	NUMAHEAP_STATS_FILE="${NUMAHEAP_STATS_FILE%.json}-$(basename "$1").json"
	export NUMAHEAP_STATS_FILE
	;;
esac
exec "$@"
EOF
chmod +x "$TMP/gccwrap.sh"

# x STEP command args... — run a real program; in the numaheap run it is
# preloaded and its statistics go to $STATS/STEP.json. A non-zero exit ends
# the workload with a message naming the step.
x() {
	_step=$1
	shift
	if [ "$MODE" = nh ]; then
		env LD_PRELOAD="$LIB" NUMAHEAP_STATS=json NUMAHEAP_STATS_FILE="$STATS/$_step.json" \
			NH_EXPECT_NUMAHEAP=1 "$@"
	else
		"$@"
	fi
	_rc=$?
	if [ $_rc -ne 0 ]; then
		echo "step $_step: '$*' exited with status $_rc" >&2
		exit $_rc
	fi
}

need() {
	for _p in "$@"; do
		case "$_p" in
		*/*) [ -x "$_p" ] || { echo "$_p is not installed (run tools/install-deps.sh)"; return 1; } ;;
		*) command -v "$_p" >/dev/null 2>&1 || { echo "$_p is not installed (run tools/install-deps.sh)"; return 1; } ;;
		esac
	done
}

# ---- workloads: run in the work directory, print what is compared ---------------

wl_python() {
	cp "$ROOT/tests/override/workload.py" .
	export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
	# pymalloc serves small objects from its own arenas; with
	# PYTHONMALLOC=malloc every object comes from malloc.
	x python-pymalloc "$PYTHON" workload.py >out-pymalloc.txt
	x python-malloc env PYTHONMALLOC=malloc "$PYTHON" workload.py >out-malloc.txt
	cmp out-pymalloc.txt out-malloc.txt >&2 || echo "python: output differs between PYTHONMALLOC modes" >&2
	cat out-malloc.txt
}

gen_c() { # a C file of $1 functions
	awk -v n="$1" 'BEGIN {
		print "#include <stdio.h>\n#include <string.h>\n#include <stdlib.h>"
		print "struct rec { long a, b; const char *name; double w; };"
		for (i = 0; i < n; i++) {
			printf "static const char name_%d[] = \"function number %d of the generated file\";\n", i, i
			printf "long f_%d(long x) {\n", i
			printf "\tlong t[8]; long s = 0;\n"
			printf "\tfor (int k = 0; k < 8; k++) t[k] = x * (k + %d) ^ ((long)k << %d);\n", i % 7 + 1, i % 5
			printf "\tfor (int k = 0; k < 8; k++) s += t[k] %% %d;\n", i % 13 + 2
			printf "\tstruct rec r = { x, s, name_%d, %d.5 };\n", i, i % 100
			printf "\ts += (long)strlen(r.name) + (long)r.w + r.a %% 3;\n"
			if (i > 0) printf "\tif (x > 1 && (x & 3) == 1) s += f_%d(x >> 2);\n", i - 1
			printf "\tswitch (x %% 5) { case 0: s ^= %d; break; case 1: s += %d; break; case 2: s -= %d; break; default: s *= 3; }\n", i, i * 3, i * 7
			printf "\treturn s;\n}\n"
		}
		printf "long (*const table[%d])(long) = {", n
		for (i = 0; i < n; i++) printf "%sf_%d", (i ? ", " : ""), i
		print "};"
		print "int main(void) {"
		print "\tunsigned long sum = 0;"
		printf "\tfor (long i = 0; i < %d; i++) sum = sum * 31 + (unsigned long)table[i](i * 12345 + 7);\n", n
		print "\tchar *buf = malloc(1 << 20); memset(buf, 7, 1 << 20); sum += (unsigned char)buf[12345]; free(buf);"
		printf "\tprintf(\"functions=%d sum=%%lu\\n\", sum);\n", n
		print "\treturn 0;\n}"
	}'
}

wl_gcc() {
	# A big file at -O0 (a thousand functions: parsing, trees, RTL for
	# each), a smaller one through the optimisers at -O2; link both, run both.
	# (3000 and 300 functions made 3.0 and 2.7 million allocations in cc1,
	# 30 times the minimum below, for 18 s of compiling.)
	gen_c 1000 >gen.c
	gen_c 150 >opt.c
	x gcc-compile gcc -O0 -Wall -wrapper "$TMP/gccwrap.sh" -c gen.c -o gen.o
	x gcc-link gcc -wrapper "$TMP/gccwrap.sh" gen.o -o gen
	x gcc-opt gcc -O2 -Wall -wrapper "$TMP/gccwrap.sh" opt.c -o opt
	x gcc-run ./gen
	x gcc-run-opt ./opt
	echo "gen.o: $(cksum <gen.o)"
	echo "gen: $(cksum <gen)"
	echo "opt: $(cksum <opt)"
}

wl_git() {
	export HOME="$PWD" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
	export GIT_AUTHOR_NAME="Test Author" GIT_AUTHOR_EMAIL=author@example.com
	export GIT_COMMITTER_NAME="Test Committer" GIT_COMMITTER_EMAIL=committer@example.com
	export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
	x git-init git init -q -b main repo
	cd repo
	x git-config git config pack.threads 1
	git config gc.autoDetach false
	git config core.autocrlf false
	awk 'BEGIN {
		for (d = 0; d < 40; d++) {
			system("mkdir -p dir" d)
			for (f = 0; f < 50; f++) {
				file = sprintf("dir%d/file%d.txt", d, f)
				for (l = 0; l < 20 + (d * f) % 40; l++)
					printf "dir %d file %d line %d: %s\n", d, f, l, substr("the quick brown fox jumps over the lazy dog", 1, 10 + (l * 7) % 33) > file
				close(file)
			}
		}
	}'
	x git-add git add -A
	x git-commit0 git commit -q -m "initial: 2000 files"
	c=1
	while [ $c -le 15 ]; do
		awk -v c=$c 'BEGIN {
			for (k = 0; k < 60; k++) {
				d = (c * 7 + k) % 40; f = (c * 13 + k * 3) % 50
				file = sprintf("dir%d/file%d.txt", d, f)
				printf "change %d to %s\n", c, file >> file
				close(file)
			}
			file = sprintf("dir%d/new%d.txt", c % 40, c)
			printf "new file of commit %d\n", c > file
		}'
		x git-commit$c env GIT_AUTHOR_DATE="2024-01-01T00:$c:00Z" GIT_COMMITTER_DATE="2024-01-01T01:$c:00Z" \
			git commit -q -a -m "change $c"
		x git-addnew$c git add -A
		c=$((c + 1))
	done
	x git-commit-last env GIT_COMMITTER_DATE="2024-01-02T00:00:00Z" git commit -q -m "add new files"
	x git-log git log --stat --format='%H %an %ad %s' --date=iso-strict
	x git-diff git diff --stat HEAD~8 HEAD
	x git-grep git grep -c "line 17" -- 'dir1*'
	x git-blame git blame -s dir5/file10.txt
	x git-gc git gc -q
	x git-fsck git fsck --no-progress --strict
	x git-count git count-objects -v
	x git-verify git verify-pack -s .git/objects/pack/*.idx
	x git-archive git archive --format=tar -o ../head.tar HEAD
	echo "archive: $(cksum <../head.tar)"
	x git-revparse git rev-parse HEAD HEAD~5 'HEAD^{tree}'
}

gen_sql() { # create a table, insert $1 rows in one transaction
	awk -v n="$1" 'BEGIN {
		print "PRAGMA journal_mode=WAL;"
		print "CREATE TABLE person(id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT, age INTEGER, score REAL, note TEXT);"
		print "CREATE TABLE city(name TEXT PRIMARY KEY, country TEXT);"
		print "BEGIN;"
		for (c = 0; c < 50; c++) printf "INSERT INTO city VALUES(\x27city%02d\x27, \x27country%d\x27);\n", c, c % 7
		for (i = 1; i <= n; i++) {
			note = substr("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor", 1, (i * 13) % 70)
			printf "INSERT INTO person(name, city, age, score, note) VALUES(\x27name-%d-%d\x27, \x27city%02d\x27, %d, %d.%02d, \x27%s\x27);\n", \
				(i * 7919) % 100003, i, (i * 31) % 50, 18 + (i * 17) % 70, (i * 37) % 1000, i % 100, note
		}
		print "COMMIT;"
	}'
}

wl_sqlite() {
	gen_sql 100000 >build.sql
	cat >query.sql <<'EOF'
CREATE INDEX person_city_age ON person(city, age);
CREATE INDEX person_name ON person(name);
SELECT count(*), sum(age), round(avg(score), 4), max(length(note)) FROM person;
SELECT city, count(*), min(age), max(age), round(sum(score), 2) FROM person GROUP BY city ORDER BY city LIMIT 12;
SELECT c.country, count(*), round(avg(p.age), 3) FROM person p JOIN city c ON c.name = p.city GROUP BY c.country ORDER BY 2 DESC, 1;
SELECT name, age, score FROM person WHERE city = 'city07' AND age BETWEEN 40 AND 42 ORDER BY name LIMIT 10;
SELECT age, group_concat(id, ',') FROM (SELECT age, id FROM person WHERE id % 997 = 0 ORDER BY id) GROUP BY age ORDER BY age LIMIT 8;
SELECT id, name, rank() OVER (PARTITION BY city ORDER BY score DESC, id) AS r FROM person WHERE city IN ('city01', 'city02') ORDER BY r, id LIMIT 10;
WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 20000)
  SELECT count(*), sum(length(printf('%08d-%s', k, hex(randomblob(0) || k)))) FROM n;
SELECT substr(name, 1, 8) AS pfx, count(*) FROM person GROUP BY pfx HAVING count(*) > 30 ORDER BY 2 DESC, 1 LIMIT 5;
UPDATE person SET note = upper(note) || '!' WHERE age > 80;
DELETE FROM person WHERE id % 10 = 0;
SELECT count(*), sum(length(note)) FROM person;
PRAGMA integrity_check;
EOF
	x sqlite-build sqlite3 -batch -bail test.db <build.sql
	x sqlite-query sqlite3 -batch -bail test.db <query.sql
	x sqlite-dump sqlite3 -batch test.db .dump >dump.sql
	echo "dump: $(cksum <dump.sql)"
	x sqlite-vacuum sqlite3 -batch test.db "VACUUM; PRAGMA integrity_check; SELECT count(*) FROM person;"
}

wl_cxx() {
	x cxx "$CXXW"
}

# ---- statistics checks -------------------------------------------------------------------
# check_stats DIR STEP:MIN... — every JSON file in DIR parses and has a
# cpu_mode and totals.allocs; each named STEP has totals.allocs >= MIN.
check_stats() {
	"$PYTHON" - "$@" <<'EOF'
import json, os, sys
d = sys.argv[1]
need = dict(a.rsplit(":", 1) for a in sys.argv[2:])
files = sorted(f for f in os.listdir(d) if f.endswith(".json"))
if not files:
    print("no statistics written (was numaheap loaded?)"); sys.exit(1)
allocs = {}
for f in files:
    try:
        with open(os.path.join(d, f)) as fh:
            s = json.load(fh)
        allocs[f[:-5]] = int(s["totals"]["allocs"])
        if not s.get("cpu_mode"):
            raise ValueError("no cpu_mode")
    except Exception as e:
        print("%s: bad statistics: %r" % (f, e)); sys.exit(1)
bad = []
for step, lo in need.items():
    if step not in allocs:
        bad.append("%s: no statistics" % step)
    elif allocs[step] < int(lo):
        bad.append("%s: %d allocs < %s" % (step, allocs[step], lo))
if bad:
    print("; ".join(bad)); sys.exit(1)
shown = ", ".join("%s %d" % (k, allocs[k]) for k in need)
print("%d stats files, cpu_mode %s, allocs: %s" % (len(files), s["cpu_mode"], shown))
EOF
}

# Minimum allocations of the heavy steps (a few times below what they make).
# They depend on the locale: collect2 makes 67 allocations with LANG unset
# (the C locale, as in a clean `env -i` or a CI job) and 115 with
# LANG=C.UTF-8 (Debian 12, gcc 12), hence its 30.
mins_python="python-malloc:2000000 python-pymalloc:3000"
mins_gcc="gcc-compile-cc1:100000 gcc-compile-as:10000 gcc-link-collect2:30 gcc-opt-cc1:100000 gcc-opt-as:1000 gcc-compile:100 gcc-link:100 gcc-run:1"
mins_git="git-add:5000 git-log:20000 git-diff:5000 git-fsck:5000 git-archive:5000 git-gc:100"
mins_sqlite="sqlite-build:200000 sqlite-query:10000 sqlite-dump:500 sqlite-vacuum:500"
mins_cxx="cxx:500000"

passed=0
failed=0
result() { # PASS|FAIL prog message
	echo "$1 $2: $3"
	if [ "$1" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}

for prog in $PROGS; do
	case "$prog" in
	python) why=$(need "$PYTHON") ;;
	gcc) why=$(need gcc awk) ;;
	git) why=$(need git awk) ;;
	sqlite) why=$(need sqlite3 awk) ;;
	cxx)
		why=""
		CXXW=${NH_CXX_WORKLOAD:-}
		if [ -z "$CXXW" ]; then
			CXXW=$TMP/cxx_workload
			why=$(need g++) && why=$(g++ -std=c++17 -O2 -pthread "$ROOT/tests/override/cxx_workload.cpp" \
				-o "$CXXW" 2>&1) || why="cannot build cxx_workload: $why"
		elif [ ! -x "$CXXW" ]; then
			why="NH_CXX_WORKLOAD=$CXXW is not an executable"
		fi
		;;
	*) result FAIL "$prog" "unknown program (python gcc git sqlite cxx)"; continue ;;
	esac
	if [ -n "$why" ]; then
		result FAIL "$prog" "$why"
		continue
	fi
	for MODE in base nh; do
		W=$TMP/$prog/$MODE
		STATS=$TMP/$prog/stats
		mkdir -p "$W" "$STATS"
		(cd "$W" && wl_"$prog") >"$TMP/$prog/$MODE.out" 2>"$TMP/$prog/$MODE.err"
		echo $? >"$TMP/$prog/$MODE.rc"
		for f in out err; do
			sed "s|$W|WORKDIR|g" "$TMP/$prog/$MODE.$f" >"$TMP/$prog/$MODE.$f.norm"
		done
	done
	D=$TMP/$prog
	base_rc=$(cat "$D/base.rc")
	nh_rc=$(cat "$D/nh.rc")
	if [ "$base_rc" != 0 ]; then
		result FAIL "$prog" "the run without numaheap failed (status $base_rc): $(tail -n 3 "$D/base.err" | tr '\n' ' ')"
	elif [ "$nh_rc" != 0 ]; then
		result FAIL "$prog" "the run under numaheap failed (status $nh_rc): $(tail -n 5 "$D/nh.err" | tr '\n' ' ')"
	elif ! cmp -s "$D/base.out.norm" "$D/nh.out.norm"; then
		result FAIL "$prog" "stdout differs under numaheap: $(diff "$D/base.out.norm" "$D/nh.out.norm" | head -n 8 | tr '\n' ' ')"
	elif ! cmp -s "$D/base.err.norm" "$D/nh.err.norm"; then
		result FAIL "$prog" "stderr differs under numaheap: $(diff "$D/base.err.norm" "$D/nh.err.norm" | head -n 8 | tr '\n' ' ')"
	elif [ ! -s "$D/base.out.norm" ]; then
		result FAIL "$prog" "the workload printed nothing"
	else
		eval "mins=\$mins_$prog"
		# shellcheck disable=SC2086
		if msg=$(check_stats "$D/stats" $mins 2>&1); then
			result PASS "$prog" "same output ($(wc -l <"$D/base.out.norm") lines), exit 0; $msg"
		else
			result FAIL "$prog" "numaheap statistics: $msg"
		fi
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
