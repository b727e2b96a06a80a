#!/usr/bin/env python3
"""perf/kbypass/kbypass.py — does the allocator enter the kernel in steady state?

Builds perf/kbypass/kbypass.c and runs it under numaheap, glibc, jemalloc,
tcmalloc-minimal and mimalloc (LD_PRELOAD; glibc = nothing preloaded), once
with 1 phase (the warm-up alone) and once with 21, counting the whole
process's system calls and page faults with

    perf stat -e raw_syscalls:sys_enter,page-faults

(or, where perf events are unavailable, `strace -c -f` for the system calls
and the program's own getrusage() for the faults). The table shows what the
20 measured phases cost beyond the warm-up run: (21-phase run) - (1-phase run),
median over the alternated repetitions. For numaheap it also reads its own
count of kernel calls (NUMAHEAP_STATS=json, key kernel_calls) the same way.

numaheap is taken from --lib, or from <build>/libnumaheap.so where --build
defaults to <repo>/build; it is built there (cmake) when missing.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from nhperf.bench import log, rotate  # noqa: E402
from nhperf.proc import loadavg  # noqa: E402
from nhperf.standalone import (compile_bench, describe_lib, numaheap_lib, parser, peer_libs, pick,  # noqa: E402
                               preload_env, write_csv)
MEASURED = 20


def perf_works():
    if not shutil.which("perf"):
        return False
    r = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter,page-faults", "true"],
                       capture_output=True, text=True)
    return r.returncode == 0 and "raw_syscalls:sys_enter" in r.stderr and "<not" not in r.stderr


def run(exe, preload, phases, mib, method, is_numaheap):
    """Returns dict(syscalls, faults, ms, nh_kernel_calls or None)."""
    env = preload_env("")
    for k in ("NUMAHEAP_STATS", "NUMAHEAP_STATS_FILE"):  # other NUMAHEAP_* settings pass through
        env.pop(k, None)
    with tempfile.TemporaryDirectory() as tmp:
        stats = os.path.join(tmp, "stats.json")
        counts = os.path.join(tmp, "counts")
        if is_numaheap:
            env["NUMAHEAP_STATS"] = "json"
            env["NUMAHEAP_STATS_FILE"] = stats
        prog = [exe, str(phases), str(mib)]
        if method == "perf":
            # perf itself runs without the preload; only the workload gets it
            cmd = ["perf", "stat", "-x,", "-o", counts, "-e", "raw_syscalls:sys_enter,page-faults", "--",
                   "env", f"LD_PRELOAD={preload}"] + prog
        else:
            cmd = ["strace", "-c", "-f", "-o", counts, "--", "env", f"LD_PRELOAD={preload}"] + prog
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr[-2000:]}")
        line = r.stdout.strip().splitlines()[-1]
        kv = dict(x.split("=", 1) for x in line.split())
        res = {"ms": float(kv["ms_per_later_phase"]), "faults": int(kv["minflt"]) + int(kv["majflt"])}
        text = open(counts).read()
        if method == "perf":
            for row in text.splitlines():
                f = row.split(",")
                if len(f) > 2 and f[2] == "raw_syscalls:sys_enter":
                    res["syscalls"] = int(f[0])
                elif len(f) > 2 and f[2] == "page-faults":
                    res["faults"] = int(f[0])
        else:
            tot = [l for l in text.splitlines() if l.rstrip().endswith("total")]
            res["syscalls"] = int(tot[-1].split()[3]) if tot else None
        # env(1) execs the program, so the counts include one execve and the
        # start of env itself: a constant of every run, cancelled by the subtraction.
        res["nh"] = None
        if is_numaheap and os.path.exists(stats):
            try:
                res["nh"] = json.load(open(stats)).get("kernel_calls")
            except json.JSONDecodeError:
                res["nh"] = None
        return res


def main():
    ap = parser(__doc__)
    ap.add_argument("--reps", type=int, default=3, help="alternated repetitions (default 3)")
    ap.add_argument("--mib", type=int, default=256, help="MiB in flight per phase (default 256)")
    ap.add_argument("--allocators", help="comma-separated subset of numaheap,glibc,jemalloc,tcmalloc,mimalloc")
    ap.add_argument("--method", choices=["auto", "perf", "strace"], default="auto")
    ap.add_argument("--csv", help="also write every measurement to this CSV file")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    method = args.method
    if method == "auto":
        method = "perf" if perf_works() else "strace"
        if method == "strace":
            log("kbypass: perf events unavailable; counting with strace -c -f and getrusage")
    if method == "strace" and not shutil.which("strace"):
        sys.exit("kbypass: neither perf events nor strace available (apt-get install linux-perf strace)")

    lib = numaheap_lib("kbypass", args.lib, args.build)
    exe = compile_bench(args.build, os.path.join(HERE, "kbypass.c"), libs=["-lm"])
    allocs = pick([("numaheap", lib)] + peer_libs("kbypass"), args.allocators)
    res = {}  # (name, phases) -> [run dicts]
    load0 = loadavg()
    for rep in range(args.reps):
        for name, pre in rotate(allocs, rep):
            for phases in (1, 1 + MEASURED):
                r = run(exe, pre, phases, args.mib, method, name == "numaheap")
                res.setdefault((name, phases), []).append(r)
                if not args.quiet:
                    log(f"kbypass: rep {rep + 1}/{args.reps} {name} phases={phases}: "
                        f"syscalls={r['syscalls']} faults={r['faults']}")

    if args.csv:
        write_csv(args.csv, "allocator,phases,rep,syscalls,page_faults,ms_per_later_phase",
                  [(name, phases, i, r["syscalls"], r["faults"], r["ms"])
                   for (name, phases), runs in res.items() for i, r in enumerate(runs)])

    def extra(name, key):
        a = [r[key] for r in res[(name, 1)]]
        b = [r[key] for r in res[(name, 1 + MEASURED)]]
        if None in a or None in b:
            return None
        return statistics.median(y - x for x, y in zip(a, b))

    def rng(v):
        """median, and the range when the repetitions differ"""
        m = f"{statistics.median(v):.0f}"
        return m if min(v) == max(v) else f"{m} ({min(v)}–{max(v)})"

    how = ("perf stat -e raw_syscalls:sys_enter,page-faults" if method == "perf"
           else "strace -c -f (system calls) and getrusage (page faults)")
    print(f"Kernel entries of {MEASURED} steady-state phases ({args.mib} MiB in flight per phase: allocate, "
          f"touch every byte, free all), beyond a warm-up-only run; counted with {how}, whole process; "
          f"median over {args.reps} alternated repetitions.\n")
    print("| allocator | syscalls, 1 phase | 21 phases | extra | per phase "
          "| page faults, 1 phase | 21 phases | extra | per phase | ms per phase |")
    print("|" + "---|" * 10)
    for name, _ in allocs:
        cells = [name]
        for key in ("syscalls", "faults"):
            a = [r[key] for r in res[(name, 1)]]
            b = [r[key] for r in res[(name, 1 + MEASURED)]]
            if None in a or None in b:
                cells += ["—"] * 4
                continue
            d = extra(name, key)
            cells += [rng(a), rng(b), f"{d:.0f}", f"{d / MEASURED:.1f}"]
        ms = statistics.median(r["ms"] for r in res[(name, 1 + MEASURED)])
        cells.append(f"{ms:.1f}")
        print("| " + " | ".join(cells) + " |")
    print(f"\nextra: median over the repetitions of (21-phase run − 1-phase run); the counts of the runs are "
          f"medians, with their range when the repetitions differ, which shows the noise floor. "
          f"ms per phase: wall time of one steady-state phase (median), a side note: the counts are the "
          f"measurement. numaheap: {describe_lib(lib)}. 1-minute load average: {load0:.2f} before, {loadavg():.2f} after.")

    if ("numaheap", 1) in res and res[("numaheap", 1)][0]["nh"]:
        print("\nnumaheap's own count of its kernel calls (NUMAHEAP_STATS=json, kernel_calls), "
              "21-phase run minus 1-phase run (and the 21-phase totals):\n")
        keys = list(res[("numaheap", 1)][0]["nh"].keys())
        print("| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        cells = []
        for k in keys:
            a = [r["nh"][k] for r in res[("numaheap", 1)]]
            b = [r["nh"][k] for r in res[("numaheap", 1 + MEASURED)]]
            d = statistics.median(y - x for x, y in zip(a, b))
            cells.append(f"{d:.0f} ({statistics.median(b):.0f})")
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
