#!/usr/bin/env python3
"""perf/rss/rss.py — resident memory over a phase-changing workload, per allocator.

Builds perf/rss/rss.c and runs it under numaheap, glibc, jemalloc,
tcmalloc-minimal and mimalloc (LD_PRELOAD; glibc = nothing preloaded), one
after the other (alternating the order between repetitions), sampling VmRSS
from /proc/<pid>/status every 50 ms from the outside. The workload grows to
~1 GiB of small and medium objects, frees a random 90%, computes for a few
seconds without allocating, grows again, frees 90% again and computes again.

Writes to --out (default perf/rss/out/):
  rss-<pattern>.csv     allocator,rep,t_s,rss_mib      every sample
  phases-<pattern>.csv  allocator,rep,phase,t_s,process_cpu_s,main_thread_cpu_s
  rss-<pattern>.png     RSS over time, one line per allocator (first repetition), by gnuplot
(<pattern>: random, or oldest with --pattern oldest: which 90% is freed)
and prints a Markdown table: RSS at the end of each phase, throughput of the
allocating phases, and CPU time.

numaheap is taken from --lib, or from <build>/libnumaheap.so where --build
defaults to <repo>/build; it is built there (cmake) when missing.
"""
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from nhperf.bench import log, rotate  # noqa: E402
from nhperf.proc import loadavg  # noqa: E402
from nhperf.standalone import (compile_bench, describe_lib, numaheap_lib, parser, peer_libs, pick,  # noqa: E402
                               preload_env, write_csv)
PHASES = ["grow1", "free1", "idle1", "grow2", "free2", "idle2", "end"]


def allocators(args, lib):
    """(name, LD_PRELOAD, extra environment) of each allocator to run."""
    out = [("numaheap", lib, {})]
    if args.scavenger_off_too:
        out.append(("numaheap-noscav", lib, {"NUMAHEAP_SCAVENGER": "off"}))
        out.append(("numaheap-noprefault", lib, {"NUMAHEAP_PREFAULT": "0"}))
    out += [(name, p, {}) for name, p in peer_libs("rss")]
    return pick(out, args.allocators, variants=True)


def vmrss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None  # a zombie has no VmRSS line


def run(exe, preload, extra_env, mib, idle, interval, pattern):
    """Returns (samples [(t, rss_mib)], marks {phase: (t, cpu, main_cpu, live_mib)}, done dict)."""
    env = preload_env(preload, extra_env)
    t0 = time.monotonic()  # CLOCK_MONOTONIC, the clock rss.c prints
    p = subprocess.Popen([exe, str(mib), str(idle), pattern], env=env, stdout=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(p.stdout), daemon=True)
    reader.start()
    samples = []
    next_t = t0
    while p.poll() is None:
        r = vmrss_mib(p.pid)
        if r is not None:
            samples.append((time.monotonic() - t0, r))
        next_t += interval
        time.sleep(max(0.0, next_t - time.monotonic()))
    reader.join()
    if p.returncode != 0:
        raise RuntimeError(f"rss under {preload or 'glibc'}: exit {p.returncode}")
    marks, done = {}, {}
    for line in lines:
        f = line.split()
        if f and f[0] == "mark":
            marks[f[1]] = (float(f[2]) - t0, float(f[3]), float(f[4]),
                           int(f[5]) / 1048576.0 if len(f) > 5 else 0.0)
        elif f and f[0] == "done":
            done = dict(x.split("=", 1) for x in f[1:])
    return samples, marks, done


def rss_at(samples, t):
    """The last sample taken at or before t."""
    best = None
    for ts, r in samples:
        if ts <= t:
            best = r
    return best if best is not None else 0.0


def plot(outdir, names, rep0, args):
    if not shutil.which("gnuplot"):
        log("rss: gnuplot not installed (apt-get install gnuplot-nox); no plot")
        return None
    png = os.path.join(outdir, f"rss-{args.pattern}.png")
    datafiles = []
    for name in names:
        samples, marks, _ = rep0[name]
        df = os.path.join(outdir, f"rss-{name}.dat")
        with open(df, "w") as f:
            for t, r in samples:
                f.write(f"{t:.3f} {r:.1f}\n")
        mf = os.path.join(outdir, f"marks-{name}.dat")
        with open(mf, "w") as f:
            for ph in PHASES[1:-1]:
                f.write(f"{marks[ph][0]:.3f} {rss_at(samples, marks[ph][0]):.1f}\n")
        datafiles.append((name, df, mf))
    plots = []
    for i, (n, df, mf) in enumerate(datafiles, 1):
        plots.append(f"'{df}' using 1:2 with lines lt {i} lw 2 title '{n}'")
        plots.append(f"'{mf}' using 1:2 with points lt {i} pt 7 ps 1.2 notitle")
    script = f"""
set terminal pngcairo size 1000,560 font ',10'
set output '{png}'
set title 'VmRSS: grow to {args.mib} MiB, free {args.pattern} 90%, compute {args.idle:g} s, grow back, free 90%, compute {args.idle:g} s'
set xlabel 'time (s); dots: the start of free1, idle1, grow2, free2, idle2 in each run'
set ylabel 'VmRSS (MiB)'
set grid
set key top right
plot {", ".join(plots)}
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:  # no cairo: fall back to the gd png terminal
        script = script.replace("set terminal pngcairo size 1000,560 font ',10'", "set terminal png size 1000,560")
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    for _, df, mf in datafiles:
        os.unlink(df)
        os.unlink(mf)
    return png


def main():
    ap = parser(__doc__)
    ap.add_argument("--reps", type=int, default=1, help="repetitions, alternating the order (default 1)")
    ap.add_argument("--mib", type=int, default=1024, help="MiB live at the peaks (default 1024)")
    ap.add_argument("--idle", type=float, default=3.0, help="seconds of each idle phase (default 3)")
    ap.add_argument("--pattern", choices=["random", "oldest"], default="random",
                    help="which 90%% to free: a random 90%% (default) or the oldest 90%%")
    ap.add_argument("--interval", type=float, default=0.05, help="sampling interval, s (default 0.05)")
    ap.add_argument("--allocators", help="comma-separated subset of numaheap,glibc,jemalloc,tcmalloc,mimalloc")
    ap.add_argument("--out", default=os.path.join(HERE, "out"), help="output directory (default perf/rss/out)")
    ap.add_argument("--scavenger-off-too", action="store_true",
                    help="also run numaheap with NUMAHEAP_SCAVENGER=off (row numaheap-noscav): what the "
                         "scavenger costs the workload's throughput; and with NUMAHEAP_PREFAULT=0 "
                         "(row numaheap-noprefault): what pre-faulting released memory buys")
    args = ap.parse_args()

    lib = numaheap_lib("rss", args.lib, args.build)
    exe = compile_bench(args.build, os.path.join(HERE, "rss.c"), libs=["-lm"])
    allocs = allocators(args, lib)
    os.makedirs(args.out, exist_ok=True)
    results = {}  # name -> [(samples, marks, done)]
    load0 = loadavg()
    for rep in range(args.reps):
        for name, pre, extra in rotate(allocs, rep):
            log(f"rss: rep {rep + 1}/{args.reps}: {name}")
            results.setdefault(name, []).append(run(exe, pre, extra, args.mib, args.idle, args.interval,
                                                    args.pattern))

    names = [n for n, _, _ in allocs]
    write_csv(os.path.join(args.out, f"rss-{args.pattern}.csv"), "allocator,rep,t_s,rss_mib",
              [(n, i, f"{t:.3f}", f"{r:.1f}")
               for n in names for i, (samples, _, _) in enumerate(results[n]) for t, r in samples])
    write_csv(os.path.join(args.out, f"phases-{args.pattern}.csv"),
              "allocator,rep,phase,t_s,process_cpu_s,main_thread_cpu_s,live_heap_mib",
              [(n, i, ph, *(f"{x:.3f}" for x in marks[ph][:3]), f"{marks[ph][3]:.1f}")
               for n in names for i, (_, marks, _) in enumerate(results[n]) for ph in PHASES])
    png = plot(args.out, names, {n: results[n][0] for n in names}, args)

    def row(n):
        per = []
        for samples, marks, done in results[n]:
            T = {ph: marks[ph][0] for ph in PHASES}
            C = {ph: marks[ph][1] for ph in PHASES}
            M = {ph: marks[ph][2] for ph in PHASES}
            active = ["grow1", "free1", "grow2", "free2"]
            nxt = dict(zip(PHASES, PHASES[1:]))
            wall = sum(T[nxt[ph]] - T[ph] for ph in active)
            cpu = sum(C[nxt[ph]] - C[ph] for ph in active)
            # CPU of other threads while the main thread computes: the allocator's background work
            bg = sum((C[nxt[ph]] - C[ph]) - (M[nxt[ph]] - M[ph]) for ph in ("idle1", "idle2"))
            ops = int(done["mallocs"]) + int(done["frees"])
            # Seconds from the start of an idle phase until RSS is within 10% of the live heap
            # (objects and bookkeeping array), over the start-up footprint; inf: not in the phase.
            base = samples[0][1] if samples else 0.0
            def settle(ph, until):
                target = base + 1.1 * marks[ph][3]
                for ts, r in samples:
                    if T[ph] <= ts <= T[until] and r <= target:
                        return ts - T[ph]
                return float("inf")
            per.append({
                "live": marks["idle1"][3],
                "settle1": settle("idle1", "grow2"), "settle2": settle("idle2", "end"),
                "peak": max(r for _, r in samples),
                "free1": rss_at(samples, T["idle1"] + 0.1),
                "idle1": rss_at(samples, T["grow2"]),
                "idle2": rss_at(samples, T["end"]),
                "mops": ops / cpu / 1e6, "mops_wall": ops / wall / 1e6, "wall": wall, "cpu": cpu, "bg": bg,
                "grow2": T["free2"] - T["grow2"],
                "mean": statistics.mean(r for _, r in samples),
            })
        return {k: statistics.median(p[k] for p in per) for k in per[0]}

    rows = {n: row(n) for n in names}
    what = "a random 90%" if args.pattern == "random" else "the oldest 90%"
    print(f"RSS of a phase-changing workload ({args.mib} MiB of small (16 B..1 KiB) and medium (1..64 KiB) "
          f"objects, free {what}, compute {args.idle:g} s, grow back, free 90%, compute {args.idle:g} s), "
          f"sampled every {args.interval * 1000:.0f} ms from outside; median of {args.reps} run(s) each.\n")
    print("| allocator | peak RSS (MiB) | live heap after free (MiB) | just after free 90% | end of idle 1 "
          "| end of idle 2 | s to live + 10%, idle 1 / idle 2 | mean RSS "
          "| wall in alloc phases (s) | M malloc+free per s | wall of grow2 (s) "
          "| CPU in alloc phases (s) | M malloc+free per CPU-s | background CPU while idle (s) |")
    print("|" + "---|" * 14)
    sec = lambda x: "never" if x == float("inf") else f"{x:.2f}"
    for n in names:
        r = rows[n]
        print(f"| {n} | {r['peak']:.0f} | {r['live']:.0f} | {r['free1']:.0f} | {r['idle1']:.0f} | {r['idle2']:.0f} "
              f"| {sec(r['settle1'])} / {sec(r['settle2'])} | {r['mean']:.0f} "
              f"| {r['wall']:.2f} | {r['mops_wall']:.2f} | {r['grow2']:.2f} "
              f"| {r['cpu']:.2f} | {r['mops']:.2f} | {round(r['bg'], 3) + 0.0:.3f} |")
    if "numaheap" in rows and "numaheap-noscav" in rows:
        on, off = rows["numaheap"], rows["numaheap-noscav"]
        print(f"\nThe scavenger's cost to the workload: numaheap's throughput in the alloc phases (malloc+free "
              f"per second of wall time) is {on['mops_wall'] / off['mops_wall']:.3f} of numaheap-noscav's "
              f"(NUMAHEAP_SCAVENGER=off), its second growth phase takes {on['grow2'] / off['grow2']:.2f}x the time; "
              f"per CPU-second of the whole process (which counts the background thread's pre-faulting) "
              f"{on['mops'] / off['mops']:.3f}, CPU in the alloc phases {on['cpu'] / off['cpu']:.3f}x; the background "
              f"thread used {on['bg']:.3f} s of CPU while the program computed.")
    print(f"\nThe alloc phases (grow1, free1, grow2, free2) include writing every byte of every object; "
          f"CPU is user+sys of the whole process (getrusage). Background CPU while idle is the process's CPU "
          f"minus the main thread's during the compute phases: work of the allocator's own threads. "
          f"numaheap: {describe_lib(lib)}. 1-minute load average: {load0:.2f} before, {loadavg():.2f} after.")
    print(f"\nCSV: {os.path.join(args.out, f'rss-{args.pattern}.csv')}, {os.path.join(args.out, f'phases-{args.pattern}.csv')}"
          + (f"; plot: {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
