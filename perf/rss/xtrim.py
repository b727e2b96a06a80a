#!/usr/bin/env python3
"""perf/rss/xtrim.py — malloc_trim(0) right after other threads freed most of their blocks.

Builds perf/rss/xtrim.c and runs it under numaheap and the peers (LD_PRELOAD;
glibc = nothing preloaded), alternated. THREADS threads fill --mib MiB of
16-512 B blocks, each keeps the first tenth it allocated and frees the rest in random order, and the main
thread calls malloc_trim(0) at once, then again after 3 s idle. The table
gives RSS ÷ live bytes right after the first trim, after the idle seconds,
and after the second trim (medians over --reps). What stays is what the
threads' or CPUs' caches hold, and the pages those blocks keep resident.

  perf/rss/xtrim.py                       # 256 MiB, 2 threads, 3 repetitions
  perf/rss/xtrim.py --mib 512 --threads 4 --allocators numaheap,jemalloc
"""
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from nhperf.bench import log  # noqa: E402
from nhperf.standalone import compile_bench, numaheap_lib, parser, peer_libs, pick, preload_env  # noqa: E402

MARKS = ["trimmed", "idle", "trimmed_idle"]


def vmrss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_once(exe, preload, mib, threads, extra=None):
    p = subprocess.Popen([exe, str(mib), str(threads)], env=preload_env(preload, extra),
                         stdout=subprocess.PIPE, text=True)
    marks = {}
    for line in p.stdout:
        w = line.split()
        if w and w[0] == "mark":
            marks[w[1]] = (vmrss_kib(p.pid), int(w[3]))
    p.wait()
    if p.returncode != 0:
        raise RuntimeError(f"xtrim under {preload or 'glibc'} exited {p.returncode}")
    return marks


def main():
    ap = parser(__doc__)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--allocators", help="comma-separated subset (default: all found)")
    args = ap.parse_args()
    lib = numaheap_lib("xtrim", args.lib, args.build)
    exe = compile_bench(args.build, os.path.join(HERE, "xtrim.c"), flags=["-O2", "-pthread"], libs=["-lm"])
    allocs = pick([("numaheap", lib, None)] + [(n, p, None) for n, p in peer_libs("xtrim")], args.allocators,
                  variants=True)
    res = {}
    for rep in range(args.reps):
        for name, pre, extra in (allocs if rep % 2 == 0 else list(reversed(allocs))):
            m = run_once(exe, pre, args.mib, args.threads, extra)
            r = [m[k][0] * 1024 / m[k][1] for k in MARKS]
            res.setdefault(name, []).append(r)
            log(f"xtrim: rep {rep} {name:10} RSS/live at once {r[0]:.2f} idle {r[1]:.2f} trimmed again {r[2]:.2f} "
                f"(full {m['full'][0] / 1024:.0f} MiB, live {m['trimmed'][1] / 2**20:.0f} MiB)")
    print(f"\nRSS ÷ live, {args.mib} MiB of 16-512 B blocks from {args.threads} threads, 90% freed by them; "
          f"median of {args.reps}\n")
    print("| allocator | trimmed at once | after 3 s idle | trimmed again |")
    print("|---|--:|--:|--:|")
    for name, _, _ in allocs:
        v = res.get(name, [])
        print(f"| {name} | " + " | ".join("%.2f" % statistics.median(x[i] for x in v) for i in range(3)) + " |")


if __name__ == "__main__":
    main()
