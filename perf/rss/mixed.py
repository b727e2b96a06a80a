#!/usr/bin/env python3
"""perf/rss/mixed.py — RSS / live of a server-shaped heap after 90% of it was freed.

Builds perf/rss/mixed.c and runs it under numaheap and the peers (LD_PRELOAD;
glibc = nothing preloaded), alternated, for both survivor patterns: "runs"
(runs of consecutive allocations survive) and "scattered" (blocks survive one
by one). VmRSS is sampled from outside every 50 ms; the table gives, for each
allocator and pattern, RSS ÷ live bytes at the end of the idle phase (no call
to the allocator for --idle seconds after the frees) and 0.2 s after
malloc_trim(0). Medians over --reps.

  perf/rss/mixed.py                      # 1024 MiB, 3 s idle, 3 repetitions
                                         # (numaheap-ordered: NUMAHEAP_ORDERED=8192)
  perf/rss/mixed.py --mib 256 --reps 1 --allocators numaheap,glibc
  perf/rss/mixed.py --patterns runs:8,runs,runs:256,scattered   # other run lengths
"""
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from nhperf.bench import log  # noqa: E402
from nhperf.standalone import compile_bench, numaheap_lib, parser, peer_libs, pick, preload_env  # noqa: E402

PATTERNS = ["runs", "scattered"]


def vmrss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_once(exe, preload, mib, pattern, idle, extra=None):
    """{mark: (rss_kib, live_bytes)} of one run."""
    p = subprocess.Popen([exe, str(mib), pattern, str(idle)], env=preload_env(preload, extra),
                         stdout=subprocess.PIPE, text=True)
    marks, last = {}, [None]

    def sample():
        while p.poll() is None:
            r = vmrss_kib(p.pid)
            if r:
                last[0] = r
            time.sleep(0.05)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    for line in p.stdout:
        w = line.split()
        if w and w[0] == "mark":
            marks[w[1]] = (vmrss_kib(p.pid) or last[0], int(w[3]))
    p.wait()
    t.join()
    if p.returncode != 0:
        raise RuntimeError(f"mixed under {preload or 'glibc'} exited {p.returncode}")
    return marks


def main():
    ap = parser(__doc__)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--idle", type=float, default=3.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--allocators", help="comma-separated subset (default: all found)")
    ap.add_argument("--patterns", default=",".join(PATTERNS),
                    help="survivor patterns: runs (of 32 blocks), runs:LEN, scattered (default: %(default)s)")
    ap.add_argument("--no-ordered", action="store_true", help="leave out numaheap-ordered (NUMAHEAP_ORDERED=8192)")
    args = ap.parse_args()
    patterns = [x.strip() for x in args.patterns.split(",") if x.strip()]
    for p in patterns:
        if p not in PATTERNS and not (p.startswith("runs:") and p[5:].isdigit() and int(p[5:]) > 0):
            ap.error(f"--patterns: {p}: runs, runs:LEN (LEN > 0) or scattered")
    lib = numaheap_lib("mixed", args.lib, args.build)
    exe = compile_bench(args.build, os.path.join(HERE, "mixed.c"), flags=["-O2"], libs=["-lm"])
    # numaheap-ordered: the same library with small objects placed in
    # allocation order (NUMAHEAP_ORDERED, off by default); it goes along
    # with numaheap in --allocators.
    ordered = [] if args.no_ordered else [("numaheap-ordered", lib, {"NUMAHEAP_ORDERED": "8192"})]
    allocs = pick([("numaheap", lib, None)] + ordered + [(n, p, None) for n, p in peer_libs("mixed")],
                  args.allocators, variants=True)
    res = {}
    for rep in range(args.reps):
        order = allocs if rep % 2 == 0 else list(reversed(allocs))
        for pattern in patterns:
            for name, pre, extra in order:
                m = run_once(exe, pre, args.mib, pattern, args.idle, extra)
                idle = m["idle"][0] * 1024 / m["idle"][1]
                trim = m["trimmed"][0] * 1024 / m["trimmed"][1]
                res.setdefault((name, pattern), []).append((idle, trim, m["full"][0], m["idle"][0], m["idle"][1]))
                log(f"mixed: rep {rep} {pattern:10} {name:16} RSS/live idle {idle:.2f} trimmed {trim:.2f} "
                    f"(full {m['full'][0] / 1024:.0f} MiB, live {m['idle'][1] / 2**20:.0f} MiB)")
    print(f"\nRSS ÷ live, {args.mib} MiB of mixed blocks, 90% freed; median of {args.reps} "
          f"(idle: after {args.idle:g} s with no allocator call; trimmed: 0.2 s after malloc_trim(0))\n")
    print("| allocator | " + " | ".join(f"{p}: idle | {p}: trimmed" for p in patterns) + " |")
    print("|---|" + "--:|" * (2 * len(patterns)))
    for name, _, _ in allocs:
        cells = []
        for pattern in patterns:
            v = res.get((name, pattern), [])
            cells += ["%.2f" % statistics.median(x[0] for x in v), "%.2f" % statistics.median(x[1] for x in v)]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
