#!/usr/bin/env python3
"""perf/rss/churn.py — RSS of a busy program after a mass delete.

Builds perf/rss/churn.c and runs it under numaheap and the peers
(LD_PRELOAD; glibc = nothing preloaded), alternated: fill --mib MiB with
blocks of 16 B-1 KiB, free all but --keep percent of them at random, then
replace random live blocks with new ones at full speed for --seconds (the
live heap stays the same size; the program never idles and never calls
malloc_trim). The table gives, for each allocator, RSS ÷ live bytes just
after the delete and after 2, 6 and --seconds of churn, and replacements
(a free and a malloc) per second. Medians over --reps.

  perf/rss/churn.py                      # 1024 MiB, 12 s, 20% kept, 3 repetitions
  perf/rss/churn.py --mib 256 --seconds 6 --reps 1 --allocators numaheap,mimalloc
"""
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from nhperf.bench import log  # noqa: E402
from nhperf.standalone import compile_bench, numaheap_lib, parser, peer_libs, pick, preload_env  # noqa: E402


def run_once(exe, preload, mib, seconds, keep):
    """{mark: (seconds, rss_kib, live_bytes, replacements)} of one run."""
    out = subprocess.run([exe, str(mib), str(seconds), str(keep)], env=preload_env(preload),
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    marks = {}
    for line in out.splitlines():
        w = line.split()
        if len(w) == 6 and w[0] == "mark":
            marks[w[1]] = (float(w[2]), int(w[3]), int(w[4]), int(w[5]))
    return marks


def main():
    ap = parser(__doc__)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--seconds", type=int, default=12)
    ap.add_argument("--keep", type=int, default=20, help="percent of the blocks the delete keeps")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--allocators", help="comma-separated subset (default: all found)")
    args = ap.parse_args()
    if args.seconds < 6:
        ap.error("--seconds must be at least 6")
    lib = numaheap_lib("churn", args.lib, args.build)
    exe = compile_bench(args.build, os.path.join(HERE, "churn.c"), flags=["-O2"], libs=["-lm"])
    allocs = pick([("numaheap", lib)] + peer_libs("churn"), args.allocators)
    points = ["deleted", "t2", "t6", f"t{args.seconds}"]
    res = {}
    for rep in range(args.reps):
        order = allocs if rep % 2 == 0 else list(reversed(allocs))
        for name, pre in order:
            m = run_once(exe, pre, args.mib, args.seconds, args.keep)
            ratios = [m[p][1] * 1024 / m[p][2] for p in points]
            last = m[points[-1]]
            rate = last[3] / last[0]
            res.setdefault(name, []).append(ratios + [rate])
            log(f"churn: rep {rep} {name:9} RSS/live " + " ".join("%.2f" % r for r in ratios) +
                f" ({m['full'][1] / 1024:.0f} MiB full, {last[2] / 2**20:.0f} MiB live; {rate / 1e6:.2f} M/s)")
    print(f"\nRSS ÷ live, {args.mib} MiB of 16 B-1 KiB blocks, {100 - args.keep}% deleted at random, then "
          f"replaced at random without pause; median of {args.reps}\n")
    print(f"| allocator | after the delete | churn 2 s | churn 6 s | churn {args.seconds} s | replacements per s |")
    print("|---|--:|--:|--:|--:|--:|")
    for name, _ in allocs:
        v = res.get(name, [])
        cells = ["%.2f" % statistics.median(x[i] for x in v) for i in range(4)]
        cells.append("%.2f M" % (statistics.median(x[4] for x in v) / 1e6))
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
