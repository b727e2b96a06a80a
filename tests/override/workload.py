"""An allocation-heavy, deterministic Python workload for the override tests.

Run it with and without LD_PRELOAD=libnumaheap.so: the output must be the
same. Everything printed is a pure function of the computation (no
addresses, no timings, no hash-order dependence: run with PYTHONHASHSEED=0
anyway). Run it with PYTHONMALLOC=malloc too, so that every Python object
comes from malloc rather than from pymalloc's arenas.
"""
import hashlib
import json
import sys
import zlib


def digest(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


def dicts_and_lists(n):
    # Many small dicts and lists, grown, shrunk and dropped.
    table = {}
    for i in range(n):
        key = "key-%07d" % ((i * 7919) % n)
        table[key] = [i, str(i), {"sq": i * i, "neg": -i}, (i, i + 1)]
    for i in range(0, n, 3):
        del table["key-%07d" % i]
    groups = {}
    for k, v in table.items():
        groups.setdefault(v[0] % 97, []).append(k)
    sizes = sorted(len(g) for g in groups.values())
    nested = [[j for j in range(i % 50)] for i in range(n // 4)]
    flat = [x for row in nested for x in row]
    return len(table), sizes[:5], sizes[-5:], len(flat), sum(flat)


def strings(n):
    parts = []
    for i in range(n):
        s = ("abc%ddef" % i) * (1 + i % 13)
        parts.append(s.upper()[::-1])
    joined = "|".join(parts)
    pieces = joined.split("|")
    words = " ".join(p[:7].lower() for p in pieces)
    counts = {}
    for w in words.split():
        counts[w[:3]] = counts.get(w[:3], 0) + 1
    # Build a long string by repeated concatenation (realloc-heavy).
    acc = ""
    for i in range(20000):
        acc += chr(65 + i % 26)
    enc = joined.encode("utf-8")
    return len(joined), len(pieces), sorted(counts.items())[:4], acc[-30:], zlib.crc32(enc)


def bytearrays():
    # Big buffers: above the small-object limit, many sizes, resized in place.
    total = 0
    crc = 0
    bufs = []
    for i in range(64):
        size = (1 << (10 + i % 14)) + 4096 * i + 17  # 1 KiB .. 8 MiB
        b = bytearray(size)
        for off in range(0, size, 4093):
            b[off] = (off + i) & 0xFF
        b.extend(b"x" * (i * 1000))
        del b[: size // 3]
        total += len(b)
        crc = zlib.crc32(b, crc)
        bufs.append(b)
        if len(bufs) > 8:
            bufs.pop(0)
    big = bytearray(48 << 20)  # 48 MiB
    big[::1 << 20] = b"\x01" * 48
    mv = memoryview(big)
    s = sum(mv[::1 << 20])
    del mv
    comp = zlib.compress(bytes(big[: 4 << 20]), 6)
    return total, crc, s, len(comp), zlib.crc32(zlib.decompress(comp))


def json_round_trip(n):
    doc = {
        "items": [
            {
                "id": i,
                "name": "item-%d" % i,
                "tags": ["t%d" % (i % 7), "u%d" % (i % 11)],
                "price": round(i * 1.25, 2),
                "nested": {"a": [i, i * 2, None, True], "b": {"c": str(i)}},
            }
            for i in range(n)
        ],
        "meta": {"count": n, "unicode": "na\u00efve caf\u00e9 \u2603"},
    }
    text = json.dumps(doc, sort_keys=True)
    back = json.loads(text)
    assert back == doc
    pretty = json.dumps(back, indent=2, sort_keys=True, ensure_ascii=False)
    again = json.loads(pretty)
    assert again == doc
    return len(text), len(pretty), hashlib.sha256(text.encode()).hexdigest()[:16]


def objects(n):
    class Node:
        __slots__ = ("val", "next", "kids")

        def __init__(self, val, nxt):
            self.val = val
            self.next = nxt
            self.kids = []

    head = None
    for i in range(n):
        head = Node(i, head)
        if i % 10 == 0:
            head.kids = [Node(-j, None) for j in range(i % 30)]
    total = 0
    kids = 0
    node = head
    while node is not None:
        total += node.val
        kids += len(node.kids)
        node = node.next
    s = set(range(0, n, 3)) ^ set(range(0, n, 5))
    fs = frozenset(x * 2 for x in s)
    return total, kids, len(s), len(fs), sum(sorted(fs)[:10])


def main():
    results = []
    for _ in range(1):
        results.append(("dicts", dicts_and_lists(120000)))
        results.append(("strings", strings(60000)))
        results.append(("bytes", bytearrays()))
        results.append(("json", json_round_trip(20000)))
        results.append(("objects", objects(150000)))
    for name, r in results:
        print(name, r)
    print("digest", digest(results))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
