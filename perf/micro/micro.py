#!/usr/bin/env python3
"""perf/micro/micro.py — the cost of a malloc/free pair, numaheap against its peers.

Builds perf/micro/micro.c with gcc and runs it under numaheap, glibc,
jemalloc, tcmalloc-minimal and mimalloc (each through LD_PRELOAD; glibc is the
run with nothing preloaded), alternating the allocators within every
repetition, and prints Markdown tables of the median nanoseconds per pair with
the ratio of numaheap to the best peer (< 1: numaheap is faster).

  (a) lifo      allocate k objects of one size, free them in reverse order
  (b) random    a working set of N live objects: free a random one, allocate
                a new one of random size (16..1024 B)
  (c) prodcons  one thread mallocs, a second one frees, through a ring

  --inproc         the lifo k=1 pair of every allocator alternated inside one
                   process (inproc.c: dlopen, runs of 100,000 pairs, 150
                   rounds): steadier than separate processes on a busy
                   machine; min, 25th percentile and median per size; then
                   the random working set (N = 1000, 100000; 16..1024 B) the
                   same way (--only a or b for one of the two)
  --instructions   instructions per malloc(64)+free pair under callgrind
                   (deterministic), for every allocator; with --sizes, per
                   malloc(SIZE)+free for each of those sizes. numaheap is
                   counted twice: per-thread mode (NUMAHEAP_PERCPU=0), and the
                   per-CPU mode of the test-only library built with
                   NH_RSEQ_FAKE_CPU0 (libnumaheap_fakecpu.so: every thread
                   "registered on CPU 0", as valgrind has no rseq)
  --variant NAME=VAR=VALUE  also run numaheap with VAR=VALUE in its
                   environment, as a column NAME (repeatable; e.g.
                   --variant numaheap-align8=NUMAHEAP_MIN_ALIGN=8); timings
                   and --instructions, not --inproc (one process, one env)
  --check          the same for numaheap only (both modes); fails if a count
                   exceeds the committed perf/micro/fastpath.snapshot by
                   more than 10%
  --budget         the same; fails if a count is above its budget in the
                   snapshot (budget_rseq_fake_cpu0, budget_per_thread): the
                   ctest test perf.budget
  --update-snapshot  rewrite the snapshot from this build

numaheap is taken from --lib, or from <build>/libnumaheap.so where --build
defaults to <repo>/build; it is built there (cmake) when missing.
"""
import os
import random
import re
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from nhperf.bench import log, rotate  # noqa: E402
from nhperf.proc import loadavg  # noqa: E402
from nhperf.standalone import (compile_bench, describe_lib, numaheap_lib, parser, peer_libs, pick,  # noqa: E402
                               preload_env, write_csv)
SNAPSHOT = os.path.join(HERE, "fastpath.snapshot")
LIBDIR = "/usr/lib/x86_64-linux-gnu"  # where inproc takes glibc's libc.so.6 from
CHECK_TOLERANCE = 0.10
TIMING_SIZES = "16,32,64,128,256,512,1024"  # (a) without --sizes
# Valgrind has no rseq (the system call fails with ENOSYS), so under callgrind
# numaheap would fall back to per-thread caches anyway; say so explicitly, so
# that the counted path does not change behind our back.
NUMAHEAP_UNDER_VALGRIND = {"NUMAHEAP_PERCPU": "0"}
FAKECPU = "numaheap rseq (fake CPU 0)"


def fakecpu_lib(args, lib):
    """libnumaheap_fakecpu.so beside lib (built there with cmake when missing and
    lib is a build's): numaheap's per-CPU mode on a pretend CPU 0, countable
    under valgrind. None when it cannot be had."""
    path = os.path.join(os.path.dirname(lib), "libnumaheap_fakecpu.so")
    build = os.path.dirname(lib)
    if not os.path.exists(path) and os.path.exists(os.path.join(build, "CMakeCache.txt")):
        log(f"micro: building numaheap_fakecpu in {build}")
        subprocess.run(["cmake", "--build", build, "-j2", "--target", "numaheap_fakecpu"],
                       stdout=subprocess.DEVNULL)
    return path if os.path.exists(path) else None


def allocators(args, lib):
    """[(name, preload, extra env)]. numaheap runs in its default mode (per-CPU
    caches on rseq where the kernel has it); "numaheap-pt" (with --per-thread-too,
    or named in --allocators) is numaheap with NUMAHEAP_PERCPU=0."""
    out = [("numaheap", lib, {})]
    if args.per_thread_too or (args.allocators and "numaheap-pt" in args.allocators.split(",")):
        out.append(("numaheap-pt", lib, {"NUMAHEAP_PERCPU": "0"}))
    out += [(name, p, {}) for name, p in peer_libs("micro")]
    out = pick(out, args.allocators)
    # --variant: numaheap again with other settings, right after numaheap
    at = next((i + 1 for i, a in enumerate(out) if a[0] == "numaheap"), 0)
    return out[:at] + [(name, lib, env) for name, env in variants(args)] + out[at:]


def variants(args):
    """[(name, {VAR: VALUE})] from --variant NAME=VAR=VALUE (repeatable; the
    variables of one NAME accumulate)."""
    out = {}
    for v in args.variant:
        parts = v.split("=", 2)
        if len(parts) != 3 or not parts[0] or not parts[1]:
            sys.exit("micro: --variant wants NAME=VAR=VALUE")
        if parts[0] in ("numaheap", "numaheap-pt", "glibc", "jemalloc", "tcmalloc", "mimalloc"):
            sys.exit(f"micro: --variant {parts[0]}: pick a name of its own")
        out.setdefault(parts[0], {})[parts[1]] = parts[2]
    return list(out.items())


def compile_micro(args):
    return compile_bench(args.build, os.path.join(HERE, "micro.c"),
                         ["-fno-builtin-malloc", "-fno-builtin-free", "-pthread"])


def compile_inproc(args):
    return compile_bench(args.build, os.path.join(HERE, "inproc.c"), [], ["-ldl"])


INPROC_ROUNDS = 150
INPROC_PAIRS = 100000
INPROC_RANDOM_N = (1000, 100000)  # random working sets alternated in one process (-r)


def inproc(args, lib):
    """The lifo k=1 pair, every allocator in one process (inproc.c)."""
    exe = compile_inproc(args)
    libs = [("numaheap", lib)] + peer_libs("micro", glibc=os.path.join(LIBDIR, "libc.so.6"))
    libs = pick(libs, args.allocators)
    rounds, pairs = (30, 20000) if args.quick else (INPROC_ROUNDS, INPROC_PAIRS)
    env = preload_env(None, {"GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=65536"})
    load0 = loadavg()
    names = [n for n, _ in libs]
    rows = {}
    cmd = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    runs = [(f"lifo k=1 size={size}", [str(size)]) for size in [int(x) for x in (args.sizes or TIMING_SIZES).split(",")]]
    if args.only is None or "b" in args.only.split(","):
        runs += [(f"random N={n} 16..1024", ["-r", str(n), "1024"]) for n in INPROC_RANDOM_N]
    if args.only is not None and "a" not in args.only.split(","):
        runs = [r for r in runs if not r[0].startswith("lifo")]
    for label, argv in runs:
        r = subprocess.run(cmd + [exe] + argv + [str(rounds), str(pairs)] + [p for _, p in libs],
                           env=env, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"micro: inproc failed: {r.stderr.strip()}")
        for line, (name, _) in zip(r.stdout.splitlines(), libs):
            _, mn, p25, med = line.split()
            rows.setdefault(label, {})[name] = (float(mn), float(p25), float(med))
        if not args.quiet:
            log(f"micro: inproc {label} done")
    out = [f"malloc/free pair (lifo k=1; random: free a random one of N live objects, malloc a new one "
           f"of 16..1024 B), every allocator in one process, alternated in runs of "
           f"{pairs} pairs for {rounds} rounds, pinned to CPU 0; ns per pair, 25th percentile of the "
           f"rounds (lower is better; numaheap's min, p25 and median below the table).", ""]
    for stat, idx in (("p25", 1),):
        trows = [(label, {n: v[idx] for n, v in vals.items()}) for label, vals in rows.items()]
        out += [table(names, trows, "ns"), ""]
    out.append("numaheap min / p25 / median: " + ", ".join(
        f"{label}: {v['numaheap'][0]:.2f} / {v['numaheap'][1]:.2f} / {v['numaheap'][2]:.2f}"
        for label, v in rows.items() if "numaheap" in v))
    out.append(f"\nnumaheap: {describe_lib(lib)}. 1-minute load average: {load0:.2f} before, "
               f"{loadavg():.2f} after.")
    return "\n".join(out)


def run_once(exe, preload, extra, argv):
    """ns per pair: process CPU time for the single-threaded benchmarks (robust
    to other load on the machine), wall time for producer/consumer."""
    r = subprocess.run([exe] + argv, env=preload_env(preload, extra), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} under {preload or 'glibc'}: exit {r.returncode}: {r.stderr.strip()}")
    cpu, wall, _ = r.stdout.split()
    return float(wall) if argv[0] == "prodcons" else float(cpu)


def tests(args):
    q = 10 if args.quick else 1
    t = []
    sizes = [int(s) for s in (args.sizes or TIMING_SIZES).split(",")]
    for k in (1, 100, 10000):
        for s in sizes:
            t.append(("a", f"lifo k={k} size={s}", ["lifo", str(k), str(s), str(10_000_000 // q)]))
    for n in (1000, 100_000, 1_000_000):
        t.append(("b", f"random N={n} 16..1024", ["random", str(n), "16", "1024", str(4_000_000 // q)]))
    t.append(("c", "prodcons 64", ["prodcons", "64", "64", str(2_000_000 // q)]))
    t.append(("c", "prodcons 16..1024", ["prodcons", "16", "1024", str(2_000_000 // q)]))
    if args.only:
        t = [x for x in t if x[0] in args.only.split(",")]
    return t


def fmt(v):
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def table(names, rows, unit):
    """rows: [(label, {name: value})]; ratio column: numaheap / best peer."""
    head = ["benchmark"] + [f"{n} ({unit})" for n in names]
    has_ratio = "numaheap" in names and len(names) > 1
    if has_ratio:
        head.append("numaheap / best peer")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, vals in rows:
        cells = [label] + [fmt(vals[n]) if n in vals else "—" for n in names]
        if has_ratio:
            peers = {n: v for n, v in vals.items() if not n.startswith("numaheap")}
            if peers and "numaheap" in vals:
                best = min(peers, key=peers.get)
                cells.append(f"{vals['numaheap'] / peers[best]:.2f} ({best})")
            else:
                cells.append("—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def timing(args, exe, allocs):
    ts = tests(args)
    load0 = loadavg()
    res = {(label, a[0]): [] for _, label, _ in ts for a in allocs}
    total = args.reps * len(ts) * len(allocs)
    done = 0
    for rep in range(args.reps):
        for _, label, argv in ts:
            for name, pre, extra in rotate(allocs, rep):
                res[(label, name)].append(run_once(exe, pre, extra, argv))
                done += 1
            if not args.quiet:
                log(f"micro: rep {rep + 1}/{args.reps}: {label} ({done}/{total})")
    names = [a[0] for a in allocs]
    groups = {"a": "(a) LIFO batches: allocate k objects, free them in reverse",
              "b": "(b) random working set of N objects: free a random slot, allocate a new one",
              "c": "(c) producer/consumer: thread 1 mallocs, thread 2 frees, through a 1024-slot ring"}
    out = [f"malloc/free pair, median ns over {args.reps} alternated repetitions "
           f"(lower is better; ratio < 1: numaheap faster than the best peer). (a) and (b) are "
           f"process CPU time per pair, (c) wall time.", ""]
    if args.csv:
        write_csv(args.csv, "benchmark,allocator,rep,ns_per_pair",
                  [(f'"{label}"', n, i, x) for (label, n), v in res.items() for i, x in enumerate(v)])
    for g, title in groups.items():
        rows = [(label, {n: statistics.median(res[(label, n)]) for n in names})
                for gg, label, _ in ts if gg == g]
        if rows:
            out += [f"**{title}**", "", table(names, rows, "ns"), ""]
    out.append(f"numaheap: {describe_lib(allocs[0][1])}. "
               f"1-minute load average: {load0:.2f} before, {loadavg():.2f} after (2 CPUs here: "
               f"above ~1 the timings are disturbed by other work).")
    return "\n".join(out)


# ---- instruction counts -----------------------------------------------------------

def callgrind(exe, preload, extra, n, tmpdir, size=64):
    outf = os.path.join(tmpdir, f"cg.{os.getpid()}.{random.randrange(1 << 30)}.out")
    env = preload_env(preload, extra)
    r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={outf}",
                        exe, "lifo", "1", str(size), str(n)], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"callgrind under {preload or 'glibc'} failed: {r.stderr[-2000:]}")
    a = subprocess.run(["callgrind_annotate", "--threshold=100", outf], capture_output=True, text=True,
                       check=True).stdout
    os.unlink(outf)
    total = loop = None
    for line in a.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(\(.*?\)\s+)?PROGRAM TOTALS", line)
        if m:
            total = int(m.group(1).replace(",", ""))
        m = re.match(r"\s*([\d,]+)\s+(\(.*?\)\s+)?\S*:bench_lifo \[", line)
        if m and loop is None:
            loop = int(m.group(1).replace(",", ""))
    if total is None or loop is None:
        raise RuntimeError("cannot read callgrind_annotate output:\n" + a[-3000:])
    return total, loop


def instructions(exe, preload, extra, tmpdir, size=64):
    """(allocator instructions per pair, whole loop iteration) for malloc(size)+free,
    to a tenth (one-time work that does not cancel out between the two runs,
    a few dozen instructions, leaves a few ten-thousandths)."""
    n1, n2 = 100_000, 300_000
    t1, m1 = callgrind(exe, preload, extra, n1, tmpdir, size)
    t2, m2 = callgrind(exe, preload, extra, n2, tmpdir, size)
    per_iter = (t2 - t1) / (n2 - n1)
    loop = (m2 - m1) / (n2 - n1)
    return round(per_iter - loop, 1), round(per_iter, 1)


def read_snapshot():
    """{key: value} of fastpath.snapshot."""
    out = {}
    with open(SNAPSHOT) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and not line.startswith("#"):
                out[parts[0]] = float(parts[1])
    if "allocator_instructions_per_pair" not in out:
        raise RuntimeError(f"{SNAPSHOT}: no allocator_instructions_per_pair line")
    return out


def write_snapshot(alloc, per_iter, fake, old):
    """Counts from this build; the budgets are kept as they are (edited by hand)."""
    with open(SNAPSHOT, "w") as f:
        f.write("# numaheap's fast path: instructions per malloc(64)+free pair, counted by\n"
                "# valgrind --tool=callgrind on `micro lifo 1 64 N` (difference of two N, so start-up\n"
                "# and exit cancel out; the benchmark loop's own instructions are subtracted).\n"
                "# allocator_instructions_per_pair: per-thread caches (NUMAHEAP_PERCPU=0);\n"
                "# rseq_fake_cpu0_instructions_per_pair: the per-CPU path, in the test-only build\n"
                "# libnumaheap_fakecpu.so (NH_RSEQ_FAKE_CPU0: valgrind has no rseq, so every\n"
                "# thread pretends to be registered on CPU 0).\n"
                "# Written by `perf/micro/micro.py --update-snapshot`; `perf/micro/micro.py --check`\n"
                f"# fails when the current build exceeds a count by more than {CHECK_TOLERANCE:.0%}.\n"
                "# The budgets (edited by hand, issue 20) are absolute: `perf/micro/micro.py\n"
                "# --budget`, the ctest test perf.budget, fails above either.\n"
                f"allocator_instructions_per_pair {alloc:.1f}\n"
                f"loop_iteration_instructions {per_iter:.1f}\n")
        if fake is not None:
            f.write(f"rseq_fake_cpu0_instructions_per_pair {fake:.1f}\n")
        for k in ("budget_rseq_fake_cpu0", "budget_per_thread"):
            if k in old:
                f.write(f"{k} {old[k]:g}\n")


def main():
    ap = parser(__doc__)
    ap.add_argument("--reps", type=int, default=5, help="alternated repetitions (default 5)")
    ap.add_argument("--quick", action="store_true", help="a tenth of the work per run, 3 repetitions")
    ap.add_argument("--only", help="comma-separated groups among a,b,c")
    ap.add_argument("--sizes", default=None,
                    help="sizes for (a) (default %s); with --instructions, the sizes counted (default 64)"
                    % TIMING_SIZES)
    ap.add_argument("--allocators",
                    help="comma-separated subset of numaheap,numaheap-pt,glibc,jemalloc,tcmalloc,mimalloc")
    ap.add_argument("--per-thread-too", action="store_true",
                    help="also time numaheap with NUMAHEAP_PERCPU=0 (column numaheap-pt)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=VAR=VALUE",
                    help="also run numaheap with VAR=VALUE in its environment, as column NAME (repeatable)")
    ap.add_argument("--csv", help="also write every measurement to this CSV file")
    ap.add_argument("--inproc", action="store_true",
                    help="lifo k=1 pairs of every allocator alternated inside one process")
    ap.add_argument("--instructions", action="store_true", help="instruction counts under callgrind")
    ap.add_argument("--check", action="store_true", help="fail if numaheap's count grew >10%% over the snapshot")
    ap.add_argument("--budget", action="store_true",
                    help="fail if a count is above its budget in fastpath.snapshot (ctest perf.budget)")
    ap.add_argument("--update-snapshot", action="store_true", help="rewrite perf/micro/fastpath.snapshot")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    if args.quick and args.reps == 5:
        args.reps = 3

    lib = numaheap_lib("micro", args.lib, args.build)
    exe = compile_micro(args)
    tmpdir = os.path.join(os.path.abspath(args.build), "perf-bench")

    if args.check or args.update_snapshot or args.budget:
        if not shutil.which("valgrind"):
            if args.budget:
                print("micro: valgrind is not installed; budget not checked")
                return 77  # ctest's SKIP_RETURN_CODE
            sys.exit("micro: valgrind is needed for --check (apt-get install valgrind)")
        alloc, per_iter = instructions(exe, lib, NUMAHEAP_UNDER_VALGRIND, tmpdir)
        flib = fakecpu_lib(args, lib)
        fake = instructions(exe, flib, {}, tmpdir)[0] if flib else None
        snap = read_snapshot()
        if args.update_snapshot:
            write_snapshot(alloc, per_iter, fake, snap)
            print(f"numaheap: {alloc:.1f} instructions per malloc(64)+free pair per-thread, "
                  f"{'—' if fake is None else f'{fake:.1f}'} per-CPU (fake CPU 0); snapshot written")
            return 0
        print(f"numaheap: {describe_lib(lib)}")
        ok = True
        rows = [("per-thread (NUMAHEAP_PERCPU=0)", alloc, "allocator_instructions_per_pair", "budget_per_thread"),
                ("per-CPU (fake CPU 0)", fake, "rseq_fake_cpu0_instructions_per_pair", "budget_rseq_fake_cpu0")]
        for what, n, skey, bkey in rows:
            if n is None:
                print(f"numaheap {what}: libnumaheap_fakecpu.so not found (cmake -DNUMAHEAP_TESTS=ON); "
                      "not counted")
                ok = ok and not args.budget
                continue
            if args.budget:
                limit = snap.get(bkey)
                verdict = "ok" if limit is None or n <= limit else "FAIL"
                print(f"numaheap {what}: {n:.1f} instructions per malloc(64)+free pair "
                      f"(budget {'none' if limit is None else f'{limit:g}'}): {verdict}")
            else:
                ref = snap.get(skey)
                limit = None if ref is None else ref * (1 + CHECK_TOLERANCE)
                verdict = "ok" if limit is None or n <= limit else "FAIL"
                print(f"numaheap {what}: {n:.1f} instructions per malloc(64)+free pair "
                      f"(snapshot {'none' if ref is None else f'{ref:.1f}'}"
                      f"{'' if limit is None else f', limit {limit:.1f}'}): {verdict}")
            ok = ok and verdict == "ok"
        return 0 if ok else 1

    if args.inproc:
        if args.variant:
            sys.exit("micro: --variant does not apply to --inproc (one process has one environment)")
        print(inproc(args, lib))
        return 0

    allocs = allocators(args, lib)
    if args.instructions:
        if not shutil.which("valgrind"):
            sys.exit("micro: valgrind is needed for --instructions (apt-get install valgrind)")
        sizes = [int(x) for x in (args.sizes or "64").split(",")]
        ours = {"numaheap", FAKECPU} | {n for n, _ in variants(args)}
        flib = fakecpu_lib(args, lib) if any(a[0] == "numaheap" for a in allocs) else None
        if flib:
            at = next(i + 1 for i, a in enumerate(allocs) if a[0] == "numaheap")
            allocs = allocs[:at] + [(FAKECPU, flib, {})] + allocs[at:]
        rows = []
        for size in sizes:
            for name, pre, extra in allocs:
                if name == "numaheap-pt":
                    continue  # the same as numaheap under valgrind
                if name in ours and name != FAKECPU:
                    extra = {**extra, **NUMAHEAP_UNDER_VALGRIND}
                alloc, per_iter = instructions(exe, pre, extra, tmpdir, size)
                rows.append((size, name, alloc, per_iter))
                if not args.quiet:
                    log(f"micro: {name} size {size}: {alloc:.1f}")
        print(f"numaheap: {describe_lib(lib)}\n")
        what = "malloc(%s)" % "/".join(str(x) for x in sizes)
        print(f"Instructions per {what}+free pair (valgrind --tool=callgrind, `micro lifo 1 SIZE`; "
              "difference of two run lengths; the loop's own instructions subtracted). `numaheap` runs its "
              "per-thread caches here (NUMAHEAP_PERCPU=0): valgrind does not implement rseq. "
              f"`{FAKECPU}` is the per-CPU fast path, in the test-only build libnumaheap_fakecpu.so in which "
              "every thread pretends to be registered on CPU 0.\n")
        print("| size | allocator | malloc+free | whole loop iteration | vs best peer |")
        print("|---|---|---|---|---|")
        for size in sizes:
            peers = [r for r in rows if r[0] == size and r[1] not in ours]
            best = min(peers, key=lambda r: r[2]) if peers else None
            for sz, name, alloc, per_iter in rows:
                if sz == size:
                    ratio = f"{alloc / best[2]:.2f}" if best else "—"
                    print(f"| {size} | {name} | {alloc:.1f} | {per_iter:.1f} | {ratio} |")
        return 0

    print(timing(args, exe, allocs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
