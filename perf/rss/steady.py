#!/usr/bin/env python3
"""perf/rss/steady.py — huge-page coverage of a steady small-object heap, before
and after a release and a regrowth, and the kernel work of that regrowth.

Builds perf/rss/steady.c and runs it under numaheap and the peers
(LD_PRELOAD; glibc = nothing preloaded), alternated. The program grows a heap
of 16 B-1 KiB objects, churns it (free one, allocate one) for a few seconds,
frees 90% at random, idles, grows back to the same size and churns again; at
each phase it reads its own /proc/self/smaps_rollup. The table gives, per
allocator (medians over --reps): huge-page coverage (AnonHugePages ÷
Anonymous) at the end of the first steady phase, after the idle phase and at
the end of the second steady phase; RSS after the idle phase; and the
regrowth's wall time and minor page faults (from the process's own rusage,
sampled by the script around the phase via /proc/<pid>/stat).

  perf/rss/steady.py                       # 512 MiB, 3 s churn, 4 s idle, 3 repetitions
  perf/rss/steady.py --mib 256 --reps 1 --allocators numaheap,glibc
"""
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from nhperf.bench import log  # noqa: E402
from nhperf.standalone import compile_bench, numaheap_lib, parser, peer_libs, pick, preload_env  # noqa: E402


def minflt(pid):
    """Minor faults of the program's main thread (not the allocator's threads)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[7])
    except (OSError, IndexError, ValueError):
        return None


def run_once(exe, preload, mib, churn, idle):
    """{mark: (t, live, anon_kib, huge_kib, rss_kib, minflt)} of one run."""
    p = subprocess.Popen([exe, str(mib), str(churn), str(idle)], env=preload_env(preload),
                         stdout=subprocess.PIPE, text=True)
    marks = {}
    for line in p.stdout:
        w = line.split()
        if w and w[0] == "mark":
            marks[w[1]] = (float(w[2]), int(w[3]), int(w[4]), int(w[5]), int(w[6]), minflt(p.pid))
    p.wait()
    if p.returncode != 0:
        raise RuntimeError(f"steady under {preload or 'glibc'} exited {p.returncode}")
    return marks


def cover(m):
    return m[3] / m[2] if m[2] > 0 else 0.0


def main():
    ap = parser(__doc__)
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--churn", type=float, default=3.0)
    ap.add_argument("--idle", type=float, default=4.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--allocators", help="comma-separated subset (default: all found)")
    args = ap.parse_args()
    lib = numaheap_lib("steady", args.lib, args.build)
    exe = compile_bench(args.build, os.path.join(HERE, "steady.c"), flags=["-O2"], libs=["-lm"])
    allocs = pick([("numaheap", lib)] + peer_libs("steady"), args.allocators)
    res = {}
    for rep in range(args.reps):
        order = allocs if rep % 2 == 0 else list(reversed(allocs))
        for name, pre in order:
            m = run_once(exe, pre, args.mib, args.churn, args.idle)
            row = (cover(m["steady1"]), cover(m["idle"]), cover(m["steady2"]), m["idle"][4] / 1024,
                   m["idle"][1] / 2**20, m["regrown"][0] - m["idle"][0],
                   (m["regrown"][5] or 0) - (m["idle"][5] or 0))
            res.setdefault(name, []).append(row)
            log(f"steady: rep {rep} {name:9} coverage {row[0]:.3f} / {row[1]:.3f} / {row[2]:.3f}, "
                f"RSS idle {row[3]:.0f} MiB (live {row[4]:.0f}), regrowth {row[5]:.2f} s, {row[6]} faults")
    print(f"\nSteady heap of {args.mib} MiB of 16 B-1 KiB objects, 90% freed and grown back; median of "
          f"{args.reps}. Coverage = AnonHugePages ÷ Anonymous.\n")
    print("| allocator | coverage, steady | after idle | steady after regrowth | RSS after idle (MiB) "
          "| live (MiB) | regrowth (s) | regrowth page faults (program thread) |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for name, _ in allocs:
        v = res.get(name, [])
        med = [statistics.median(x[i] for x in v) for i in range(7)]
        print(f"| {name} | {med[0]:.3f} | {med[1]:.3f} | {med[2]:.3f} | {med[3]:.0f} | {med[4]:.0f} | "
              f"{med[5]:.2f} | {med[6]:.0f} |")


if __name__ == "__main__":
    main()
