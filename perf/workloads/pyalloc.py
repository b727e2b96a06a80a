"""pyalloc.py — an allocation-heavy Python program for perf/run.

Run as `PYTHONMALLOC=malloc python3 pyalloc.py N`: with PYTHONMALLOC=malloc
every Python object, small ones included, comes from the C malloc under test
instead of CPython's own pymalloc arenas. The phases mimic what Python
programs do: build dicts of records, round-trip them through JSON, sort,
delete and rebuild, grow strings and bytearrays, and create many short
tuples. The work is fixed by N; the result is checked, and one RESULT line
is printed (see perf/workloads/common.h).
"""
import json
import random
import sys
import time


def main():
    if sys.flags.ignore_environment:
        # -E or -I: PYTHONMALLOC would be ignored and pymalloc would serve
        # every small object, so the allocator under test would see little
        sys.exit("pyalloc.py: run without -E/-I, or PYTHONMALLOC=malloc is ignored")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    rnd = random.Random(12345)
    t0 = time.perf_counter()
    ops = 0

    # 1. a dict of records: strings, ints, lists
    table = {}
    for i in range(n):
        table["key:%d" % i] = {"id": i, "name": "n%x" % (i * 2654435761 & 0xFFFFFF),
                               "tags": [str(i % 7), str(i % 13)], "pad": "x" * (i % 64)}
    ops += n

    # 2. JSON round trip in chunks
    keys = list(table)
    total = 0
    for c in range(0, n, 2000):
        chunk = {k: table[k] for k in keys[c:c + 2000]}
        back = json.loads(json.dumps(chunk))
        total += len(back)
    assert total == n, total
    ops += n

    # 3. sort records by a derived key, then a list comprehension over them
    rows = sorted(table.values(), key=lambda r: (r["name"], r["id"]))
    names = [r["name"].upper() + ":" + str(r["id"]) for r in rows]
    assert len(names) == n
    ops += n

    # 4. delete a random half and rebuild it
    rnd.shuffle(keys)
    for k in keys[: n // 2]:
        del table[k]
    for k in keys[: n // 2]:
        i = int(k[4:])
        table[k] = {"id": i, "name": "m%d" % i, "tags": [], "pad": "y" * (i % 100)}
    assert len(table) == n
    ops += n

    # 5. growth: string building and bytearray appends (realloc)
    parts = []
    buf = bytearray()
    for i in range(n):
        parts.append(str(i))
        buf += b"%d," % i
        if len(parts) == 5000:
            s = ",".join(parts)
            assert s.startswith(parts[0])
            parts = []
    assert buf.endswith(b"%d," % (n - 1))
    ops += n

    # 6. many short-lived tuples and sets
    acc = 0
    for i in range(n):
        t = (i, i + 1, str(i))
        s = {t[0], t[1], i % 3}
        acc += len(s) + len(t[2])
    assert acc > n
    ops += n

    secs = time.perf_counter() - t0
    print("RESULT name=python threads=1 scale=%g ops=%d secs=%.4f ops_per_sec=%.0f"
          % (n / 100000.0, ops, secs, ops / secs))


if __name__ == "__main__":
    main()
