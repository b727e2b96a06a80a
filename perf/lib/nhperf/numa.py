"""Multi-socket mode: pinned per node, remote memory, and across all nodes.

For every workload and allocator, with the worker threads pinned one per CPU
(NH_PERF_PIN=1):
  local   numactl --cpunodebind=N --membind=N, threads = CPUs of node N,
          for each node N;
  remote  numactl --cpunodebind=N --membind=M (M = the next node), the same
          threads: the process memory policy forces memory onto another
          node. An allocator that binds its own arenas with mbind (numaheap
          does, to the node of the allocating thread) overrides that policy,
          so its ratio shows the override, not a cheaper interconnect;
  across  no binding, threads = every CPU the process may use, spread over
          all the nodes in CPU order.
Reported: remote/local time, and across-node scaling: throughput per thread
across all nodes divided by throughput per thread on one node (1.0 = no loss
from crossing sockets). Where `perf stat` works, page faults and dTLB load
misses per run are collected for every mode.
"""
import glob
import os
import re
import shutil
import subprocess
import tempfile

from . import bench

WANTED_EVENTS = ["page-faults", "dTLB-load-misses", "dTLB-store-misses"]


def parse_cpulist(s):
    cpus = []
    for part in s.strip().split(","):
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-")
            cpus.extend(range(int(a), int(b) + 1))
        else:
            cpus.append(int(part))
    return cpus


def nodes():
    """[(node, [cpus])] for the nodes that have both CPUs and memory."""
    out = []
    for d in sorted(glob.glob("/sys/devices/system/node/node[0-9]*"), key=lambda p: int(re.sub(r"\D", "", p))):
        n = int(re.sub(r"\D", "", os.path.basename(d)))
        try:
            with open(os.path.join(d, "cpulist")) as f:
                cpus = parse_cpulist(f.read())
            with open(os.path.join(d, "meminfo")) as f:
                mem = re.search(r"MemTotal:\s+(\d+)", f.read())
        except OSError:
            continue
        allowed = os.sched_getaffinity(0)
        cpus = [c for c in cpus if c in allowed]
        if cpus and mem and int(mem.group(1)) > 0:
            out.append((n, cpus))
    if not out:
        out = [(0, sorted(os.sched_getaffinity(0)))]
    return out


def perf_events(wanted=WANTED_EVENTS):
    """The events `perf stat` can count here (none if perf is missing)."""
    if not shutil.which("perf"):
        return []
    ok = []
    for ev in wanted:
        try:
            r = subprocess.run(["perf", "stat", "-x,", "-e", ev, "true"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in r.stderr.splitlines():
            f = line.split(",")
            if len(f) > 2 and f[2].startswith(ev) and re.match(r"^\d+$", f[0]):
                ok.append(ev)
                break
    return ok


def perf_prefix(events, path):
    return ["perf", "stat", "-x,", "-o", path, "-e", ",".join(events), "--"] if events else []


def parse_perf(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                p = line.strip().split(",")
                if len(p) > 2 and re.match(r"^\d+$", p[0]):
                    out[p[2].split(":")[0]] = int(p[0])
    except OSError:
        pass
    return out


def have_numactl():
    return shutil.which("numactl") is not None


def plan(node_list, only_nodes=None):
    """[(mode, label, numactl args, cpus)] for the runs of one workload x allocator x rep."""
    sel = [(n, c) for n, c in node_list if only_nodes is None or n in only_nodes]
    runs = []
    for n, cpus in sel:
        runs.append(("local", str(n), ["numactl", "--cpunodebind=%d" % n, "--membind=%d" % n], cpus))
    if len(node_list) > 1:
        ids = [n for n, _ in node_list]
        for n, cpus in sel:
            m = ids[(ids.index(n) + 1) % len(ids)]
            runs.append(("remote", "%d->%d" % (n, m), ["numactl", "--cpunodebind=%d" % n, "--membind=%d" % m], cpus))
    allcpus = sorted(c for _, cs in node_list for c in cs)
    runs.append(("across", "all", [], allcpus))
    return runs


def run_numa(ctx, workloads, allocators, reps, scale, raw, threads_override=None, only_nodes=None, events=None):
    node_list = nodes()
    runs = plan(node_list, only_nodes)
    if not have_numactl():
        bench.log("perf/run: numactl not found: running only the 'across' mode (apt-get install numactl)")
        runs = [r for r in runs if r[0] == "across"]
    events = events if events is not None else perf_events()
    records = []
    total = len(workloads) * len(allocators) * reps * len(runs)
    done = 0
    tmp = tempfile.mkdtemp(prefix="nhperf-perf-")
    for w in workloads:
        for rep in range(reps):
            for mode, label, numactl, cpus in runs:
                threads = threads_override or len(cpus)
                for a in bench.rotate(list(allocators), rep):
                    pf = os.path.join(tmp, "perf.%d" % done)
                    prefix = perf_prefix(events, pf) + numactl
                    r = w.run(ctx, a, threads, scale, prefix=prefix, env_extra={"NH_PERF_PIN": "1"})
                    r["perf"] = parse_perf(pf) if events else {}
                    rec = bench.record(r, mode, label, w, a, rep, threads, scale, use_self_rss=bool(events))
                    raw.add(rec)
                    records.append(rec)
                    bench.save_log(ctx, "numa.%s.%s.%s.%s.%d" % (mode, label.replace(">", ""), w.name, a.name, rep), r)
                    done += 1
                    bench.log("[%3d/%d] %-6s %-5s %-13s %-9s rep %d: %-10s %7.2fs %s" % (
                        done, total, mode, label, w.name, a.name, rep, rec["status"], rec["wall"] or 0,
                        " ".join("%s=%d" % kv for kv in sorted(r["perf"].items()))))
    shutil.rmtree(tmp, ignore_errors=True)
    return records, node_list, events


def markdown(records, wnames, anames, node_list, events, meta):
    summ = bench.summarize(records, key=("workload", "allocator", "mode"))
    L = ["Machine: %s." % meta.get("machine", "?"), "",
         "Command: `%s` (scale %g, %d repetitions). Nodes: %s." % (
             meta.get("command", "?"), meta.get("scale", 1), meta.get("reps", 0),
             ", ".join("%d (CPUs %s)" % (n, compact(c)) for n, c in node_list)), ""]
    if len(node_list) < 2:
        L.append("Only one NUMA node here: the remote mode needs two, so remote/local is n/a, and "
                 "'across' uses the same CPUs as 'local'.")
        L.append("")
    ev_cols = [e for e in events if e != "page-faults"]
    head = ["workload", "allocator", "threads local/across", "local time s", "remote ÷ local", "across time s",
            "across scaling", "page faults (across)"] + ["%s (across)" % e for e in ev_cols]
    L.append("| " + " | ".join(head) + " |")
    L.append("|---|---|" + "|".join(["--:"] * (len(head) - 2)) + "|")
    rows = []
    for wn in wnames:
        for a in anames:
            lo, re_, ac = (summ.get((wn, a, m)) for m in ("local", "remote", "across"))
            if not lo and not ac:
                continue

            def ok(s):
                return s and s["ok"]
            lt = lo["wall"] if ok(lo) else None
            rr = re_["wall"] / lt if ok(re_) and lt else None
            at = ac["wall"] if ok(ac) else None
            sc = None
            if ok(lo) and ok(ac) and lo["ops_per_sec"] and ac["ops_per_sec"]:
                sc = (ac["ops_per_sec"] / ac["threads"]) / (lo["ops_per_sec"] / lo["threads"])
            pfv = None
            if ok(ac):
                pfv = ac["perf"].get("page-faults", ac["minflt"])
            thr = "%s/%s" % (lo["threads"] if lo else "-", ac["threads"] if ac else "-")
            cells = [wn, a, thr, fmt(lt, "%.3f") if ok(lo) or not lo else "FAIL (%s)" % lo["failure"],
                     fmt(rr, "%.2f") if len(node_list) > 1 else "n/a",
                     fmt(at, "%.3f") if ok(ac) or not ac else "FAIL (%s)" % ac["failure"],
                     fmt(sc, "%.2f"), fmt(pfv, "%d")]
            for e in ev_cols:
                cells.append(fmt(ac["perf"].get(e) if ok(ac) else None, "%d"))
            L.append("| " + " | ".join(cells) + " |")
            rows.append((wn, a, lt, rr, at, sc, pfv))
    if not ev_cols:
        L.append("")
        L.append("perf stat cannot count dTLB misses on this machine (no hardware events, e.g. in a VM); "
                 "page faults come from %s." % ("perf stat" if "page-faults" in events else "getrusage"))
    return "\n".join(L) + "\n", rows


def compact(cpus):
    if not cpus:
        return ""
    out, start, prev = [], cpus[0], cpus[0]
    for c in cpus[1:] + [None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        out.append(str(start) if start == prev else "%d-%d" % (start, prev))
        if c is not None:
            start = prev = c
    return ",".join(out)


def fmt(v, f):
    return "-" if v is None else f % v
