"""Repetitions in alternation, raw records, medians."""
import csv
import json
import os
import statistics
import sys
import time

RAW_FIELDS = ["mode", "node", "workload", "allocator", "rep", "threads", "scale", "status", "wall", "user", "sys",
              "rss_kib", "minflt", "majflt", "ops", "secs", "ops_per_sec", "perf", "extra"]
BASE_RESULT_KEYS = {"name", "threads", "scale", "ops", "secs", "ops_per_sec", "maxrss_kib"}


class Context:
    """What a workload run needs: binaries, dirs, timeout."""

    def __init__(self, bins, workload_dir, tmp, timeout, logdir):
        self.bins = bins
        self.workload_dir = workload_dir
        self.tmp = tmp
        self.timeout = timeout
        self.logdir = logdir


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class RawWriter:
    def __init__(self, path):
        self.f = open(path, "w", newline="")
        self.w = csv.DictWriter(self.f, fieldnames=RAW_FIELDS)
        self.w.writeheader()
        self.f.flush()

    def add(self, rec):
        row = {k: rec.get(k, "") for k in RAW_FIELDS}
        row["perf"] = json.dumps(rec.get("perf") or {}, sort_keys=True)
        row["extra"] = json.dumps(rec.get("extra") or {}, sort_keys=True)
        for k in ("wall", "user", "sys", "secs"):
            if isinstance(row[k], float):
                row[k] = "%.4f" % row[k]
        if isinstance(row["ops_per_sec"], float):
            row["ops_per_sec"] = "%.1f" % row["ops_per_sec"]
        if isinstance(row["ops"], float):
            row["ops"] = "%d" % row["ops"]
        self.w.writerow(row)
        self.f.flush()

    def close(self):
        self.f.close()


def record(r, mode, node, workload, alloc, rep, threads, scale, use_self_rss=False):
    """Turn a workload run into a raw record."""
    # A C workload reports its own VmHWM, exact even under a perf wrapper;
    # otherwise the launcher's (or /proc's, for redis-server) figure.
    rss = r.get("self_maxrss_kib") or r.get("maxrss_kib")
    extra = {k: v for k, v in (r.get("result") or {}).items() if k not in BASE_RESULT_KEYS}
    return {"mode": mode, "node": node, "workload": workload.name, "allocator": alloc.name, "rep": rep,
            "threads": threads if workload.threaded else 1, "scale": scale, "status": r["status"],
            "wall": r.get("wall"), "user": r.get("user"), "sys": r.get("sys"), "rss_kib": rss,
            "minflt": r.get("minflt"), "majflt": r.get("majflt"), "ops": r.get("ops"), "secs": r.get("secs"),
            "ops_per_sec": r.get("ops_per_sec"), "perf": r.get("perf") or {}, "extra": extra}


def save_log(ctx, name, r):
    if not ctx.logdir:
        return
    os.makedirs(ctx.logdir, exist_ok=True)
    with open(os.path.join(ctx.logdir, name + ".log"), "w") as f:
        f.write("status: %s\n--- stdout\n%s\n--- stderr\n%s\n" % (r["status"], r.get("stdout", ""),
                                                                  r.get("stderr", "")))


def rotate(seq, k):
    k %= len(seq)
    return seq[k:] + seq[:k]


def run_standard(ctx, workloads, allocators, reps, threads, scale, raw, progress=True, settle=0.0):
    """For each workload: reps rounds, each running every allocator once, the
    allocator order rotated per round (alternation spreads drift evenly).
    settle: seconds of pause before each run, so that it starts on memory
    the host took back, as a program started on a quiet machine does (on a
    VM with free page reporting, runs that follow each other within a second
    or two find the memory the last one freed still backed)."""
    records = []
    total = len(workloads) * len(allocators) * reps
    done = 0
    t_start = time.monotonic()
    for w in workloads:
        for rep in range(reps):
            for a in rotate(list(allocators), rep):
                if settle > 0:
                    time.sleep(settle)
                r = w.run(ctx, a, threads, scale)
                rec = record(r, "std", "", w, a, rep, threads, scale)
                raw.add(rec)
                records.append(rec)
                save_log(ctx, "%s.%s.%d" % (w.name, a.name, rep), r)
                done += 1
                if progress:
                    el = time.monotonic() - t_start
                    log("[%3d/%d %5.0fs] %-13s %-9s rep %d: %-10s %7.2fs  rss %7.1f MiB%s" % (
                        done, total, el, w.name, a.name, rep, rec["status"], rec["wall"] or 0,
                        (rec["rss_kib"] or 0) / 1024.0,
                        "" if rec["status"] == "ok" else "  <-- " + first_line(r.get("stderr", ""))))
    return records


def first_line(s):
    for line in s.splitlines():
        if line.strip():
            return line.strip()[:160]
    return ""


def median(vals):
    vals = [v for v in vals if v is not None and v != ""]
    return statistics.median(vals) if vals else None


def summarize(records, key=("workload", "allocator")):
    """Medians per (workload, allocator) over the ok runs."""
    groups = {}
    for r in records:
        groups.setdefault(tuple(r[k] for k in key), []).append(r)
    out = {}
    for g, rs in groups.items():
        ok = [r for r in rs if r["status"] == "ok"]
        bad = [r for r in rs if r["status"] != "ok"]
        s = {"runs": len(rs), "ok": len(ok), "failures": len(bad),
             "failure": bad[0]["status"] if bad else "",
             "threads": rs[0]["threads"]}
        for k in ("wall", "user", "sys", "rss_kib", "minflt", "ops_per_sec", "secs"):
            s[k] = median([r[k] for r in ok])
        walls = [r["wall"] for r in ok if r["wall"] is not None]
        s["wall_by_rep"] = {r["rep"]: r["wall"] for r in ok if r["wall"]}
        s["wall_min"] = min(walls) if walls else None
        s["wall_max"] = max(walls) if walls else None
        extra_keys = set()
        for r in ok:
            extra_keys.update(k for k, v in r["extra"].items() if isinstance(v, (int, float)))
        s["extra"] = {k: median([r["extra"].get(k) for r in ok]) for k in sorted(extra_keys)}
        perf_keys = set()
        for r in ok:
            perf_keys.update(k for k, v in (r.get("perf") or {}).items() if isinstance(v, (int, float)))
        s["perf"] = {k: median([r["perf"].get(k) for r in ok]) for k in sorted(perf_keys)}
        out[g] = s
    return out
