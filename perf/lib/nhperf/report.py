"""Markdown table, summary CSV and gnuplot PNGs for perf/run."""
import csv
import math
import os
import shutil
import statistics
import subprocess

SUBJECT = "numaheap"


def fmt_time(s):
    if s is None:
        return "-"
    return "%.3f" % s if s < 10 else "%.2f" % s if s < 100 else "%.0f" % s


def fmt_mib(kib):
    if kib is None:
        return "-"
    m = kib / 1024.0
    return "%.1f" % m if m < 100 else "%.0f" % m


def fmt_rate(x):
    if x is None:
        return "-"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return "%.2f%s" % (x / div, suf)
    return "%.0f" % x


def geomean(vals):
    vals = [v for v in vals if v]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def comparison(summary, wname, anames):
    """(time ratio, best peer by time, rss ratio, best peer by rss) of numaheap vs the best peer."""
    nh = summary.get((wname, SUBJECT))
    peers = [(a, summary.get((wname, a))) for a in anames if a != SUBJECT]
    peers = [(a, s) for a, s in peers if s and s["ok"] and s["wall"]]
    if not nh or not nh["ok"] or not peers:
        return None, None, None, None
    bt = min(peers, key=lambda p: p[1]["wall"])
    tr = nh["wall"] / bt[1]["wall"]
    pr = [(a, s) for a, s in peers if s["rss_kib"]]
    if pr and nh["rss_kib"]:
        br = min(pr, key=lambda p: p[1]["rss_kib"])
        return tr, bt[0], nh["rss_kib"] / br[1]["rss_kib"], br[0]
    return tr, bt[0], None, None


def write_summary_csv(path, summary, wnames, anames):
    extra_keys = sorted({k for s in summary.values() for k in s["extra"]})
    perf_keys = sorted({k for s in summary.values() for k in s["perf"]})
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload", "allocator", "threads", "runs", "ok", "failure", "median_wall_s", "min_wall_s",
                    "max_wall_s", "median_user_s", "median_sys_s", "median_ops_per_sec", "median_peak_rss_kib",
                    "median_minflt", "nh_over_best_peer_time", "nh_over_best_peer_rss"]
                   + ["perf_" + k for k in perf_keys] + extra_keys)
        for wn in wnames:
            tr, _, rr, _ = comparison(summary, wn, anames)
            for an in anames:
                s = summary.get((wn, an))
                if not s:
                    continue

                def g(v, f="%.4f"):
                    return "" if v is None else f % v
                w.writerow([wn, an, s["threads"], s["runs"], s["ok"], s["failure"], g(s["wall"]), g(s["wall_min"]),
                            g(s["wall_max"]), g(s["user"]), g(s["sys"]), g(s["ops_per_sec"], "%.1f"),
                            g(s["rss_kib"], "%d"), g(s["minflt"], "%d"),
                            g(tr, "%.3f") if an == SUBJECT else "", g(rr, "%.3f") if an == SUBJECT else ""]
                           + [g(s["perf"].get(k), "%g") for k in perf_keys]
                           + [g(s["extra"].get(k), "%g") for k in extra_keys])


def cell_fail(s):
    return "FAIL (%s)" % s["failure"] if s else "-"


def allocator_table(summary, wnames, anames, cell):
    """Lines of a table of a workload a row, an allocator a column: cell(summary)
    for the allocators whose runs succeeded."""
    lines = ["| workload | " + " | ".join(anames) + " |", "|---|" + "|".join(["--:"] * len(anames)) + "|"]
    for wn in wnames:
        row = [wn]
        for a in anames:
            s = summary.get((wn, a))
            row.append(cell(s) if s and s["ok"] else cell_fail(s))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def paired(summary, wn, a, b):
    """a's wall time ÷ b's within each repetition (the allocators of one
    repetition run one after the other), sorted; [] if fewer than 3 pairs."""
    sa, sb = summary.get((wn, a)), summary.get((wn, b))
    if not sa or not sb:
        return []
    ra, rb = sa.get("wall_by_rep", {}), sb.get("wall_by_rep", {})
    r = sorted(ra[k] / rb[k] for k in ra if k in rb and rb[k])
    return r if len(r) >= 3 else []


def median_interval(r, level=0.95):
    """The distribution-free interval of the median of sorted r: order
    statistics j and n+1-j (1-based) for the largest j with
    P(Binomial(n, 1/2) < j) <= (1 - level) / 2. Deterministic, no
    assumption about the ratios' distribution; the whole range when n is
    too small (under 6 for 95%)."""
    n = len(r)
    tail, j, acc = (1 - level) / 2, 0, 0.0
    while True:
        p = math.comb(n, j) / 2 ** n  # P(Binomial = j)
        if acc + p > tail:
            break
        acc += p
        j += 1
    j = max(j, 1)
    return r[j - 1], r[n - j]


def paired_table(summary, wnames, anames):
    """Each allocator's time ÷ numaheap's, repetition by repetition: the
    median of the ratios and their middle half. Runs next to each other
    share the machine's state (another session's load, the host's), so
    these ratios scatter less than the ratio of two medians."""
    others = [a for a in anames if a != "numaheap"]
    if "numaheap" not in anames or not others:
        return []
    L = ["**Paired**: each allocator's wall time ÷ numaheap's in the same repetition (the runs of a "
         "repetition follow each other): the median of these ratios, then the middle half of them "
         "(25th-75th percentile), then the 95% confidence interval of the median (order statistics "
         "of the pairs: a ratio of 1.03 whose interval reaches 1.06 may be a cost of 6%). "
         "Above 1: slower than numaheap.", ""]
    L.append("| workload | " + " | ".join(others) + " |")
    L.append("|---|" + "|".join(["--:"] * len(others)) + "|")
    any_row = False
    for wn in wnames:
        row = [wn]
        for a in others:
            r = paired(summary, wn, a, "numaheap")
            if not r:
                row.append("-")
                continue
            q = lambda f: r[min(len(r) - 1, int(f * (len(r) - 1) + 0.5))]
            lo, hi = median_interval(r)
            row.append("%.2f (%.2f-%.2f; 95%%: %.2f-%.2f)" % (statistics.median(r), q(0.25), q(0.75), lo, hi))
            any_row = True
        L.append("| " + " | ".join(row) + " |")
    L.append("")
    return L if any_row else []


def markdown(summary, wnames, anames, meta):
    L = []
    L.append("Machine: %s. %s" % (meta.get("machine", "?"), meta.get("load", "")))
    L.append("")
    L.append("Command: `%s` (scale %g, %d repetitions per allocator in alternation, threads = %s)." % (
        meta.get("command", "?"), meta.get("scale", 1), meta.get("reps", 0), meta.get("threads", "?")))
    L.append("")
    if meta.get("allocator_env"):
        L.append("Environment of some allocators' runs only: " + "; ".join(
            "%s: %s" % (a, " ".join("%s=%s" % kv for kv in sorted(e.items())))
            for a, e in meta["allocator_env"].items()) + ".")
        L.append("")
    L.append("**Time**: median wall-clock seconds of the whole process (lower is better; the best in each row "
             "is in bold), then the median peak RSS in MiB in parentheses. The last two columns divide "
             "numaheap's median by the best peer's (below 1: numaheap is ahead). Spread: the largest "
             "(slowest - fastest run) ÷ median of any allocator in the row, a measure of the noise.")
    L.append("")
    head = ["workload", "thr"] + anames + ["nh ÷ best peer, time", "nh ÷ best peer, RSS", "spread"]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|")
    rel = {a: [] for a in anames}
    trs, rrs = [], []
    for wn in wnames:
        row = [wn]
        ss = {a: summary.get((wn, a)) for a in anames}
        thr = next((s["threads"] for s in ss.values() if s), "")
        row.append(str(thr))
        oks = [s["wall"] for s in ss.values() if s and s["ok"] and s["wall"]]
        best = min(oks) if oks else None
        for a in anames:
            s = ss[a]
            if not s or not s["ok"]:
                row.append(cell_fail(s))
                continue
            t = fmt_time(s["wall"])
            if best is not None and s["wall"] == best:
                t = "**%s**" % t
            extra = "" if not s["failures"] else " [%d failed]" % s["failures"]
            row.append("%s (%s)%s" % (t, fmt_mib(s["rss_kib"]), extra))
        if all(ss[a] and ss[a]["ok"] for a in anames) and best:
            for a in anames:
                rel[a].append(ss[a]["wall"] / best)
        tr, bt, rr, br = comparison(summary, wn, anames)
        row.append("%.2f (%s)" % (tr, bt) if tr else "-")
        row.append("%.2f (%s)" % (rr, br) if rr else "-")
        if tr:
            trs.append(tr)
        if rr:
            rrs.append(rr)
        spreads = [(s["wall_max"] - s["wall_min"]) / s["wall"] for s in ss.values()
                   if s and s["ok"] > 1 and s["wall"]]
        row.append("%.0f%%" % (100 * max(spreads)) if spreads else "-")
        L.append("| " + " | ".join(row) + " |")
    gm = ["geomean of time ÷ row best", ""]
    for a in anames:
        g = geomean(rel[a])
        gm.append("%.2f" % g if g else "-")
    g1, g2 = geomean(trs), geomean(rrs)
    gm.append("%.2f" % g1 if g1 else "-")
    gm.append("%.2f" % g2 if g2 else "-")
    gm.append("")
    L.append("| " + " | ".join(gm) + " |")
    L.append("")
    L += paired_table(summary, wnames, anames)
    L.append("**Throughput**: median operations per second inside each workload's own timed region "
             "(what an operation is: see the list of workloads). Higher is better.")
    L.append("")
    L += allocator_table(summary, wnames, anames, lambda s: fmt_rate(s["ops_per_sec"]))
    L.append("")
    L.append("**Page faults**: median minor faults per run (the kernel work an allocator causes by "
             "returning memory and taking it back). Lower is better.")
    L.append("")
    L += allocator_table(summary, wnames, anames, lambda s: "%d" % s["minflt"] if s["minflt"] is not None else "-")
    if "frag" in wnames:
        L.append("")
        L.append("**frag**: RSS in MiB after each phase (A fill 256 MiB × scale of small objects, B free 90%, "
                 "C allocate medium objects for half of A, D free all; trim: after the threads exited and "
                 "malloc_trim(0)); overhead = RSS in C ÷ bytes live in C.")
        L.append("")
        L.append("| allocator | A | B | C | D | trim | overhead C |")
        L.append("|---|--:|--:|--:|--:|--:|--:|")
        for a in anames:
            s = summary.get(("frag", a))
            if not s or not s["ok"]:
                continue
            e = s["extra"]
            L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                a, fmt_mib(e.get("rss_a_kib")), fmt_mib(e.get("rss_b_kib")), fmt_mib(e.get("rss_c_kib")),
                fmt_mib(e.get("rss_d_kib")), fmt_mib(e.get("rss_trim_kib")),
                "%.2f" % e["overhead_c"] if e.get("overhead_c") else "-"))
    if "redis-mix" in wnames:
        L.append("")
        L.append("**redis-mix**: the server's CPU time per request in µs (user + system of redis-server over "
                 "both rounds ÷ requests; lower is better), and requests per second of SET and GET at 64 B.")
        L.append("")
        L += allocator_table(summary, ["redis-mix"], anames, lambda s: "%.2f µs (SET %s, GET %s)" % (
            s["extra"].get("cpu_us_per_req") or 0, fmt_rate(s["extra"].get("rps_set_64")),
            fmt_rate(s["extra"].get("rps_get_64"))) if s["extra"].get("cpu_us_per_req") else "-")
    if "redis-frag" in wnames:
        L.append("")
        L.append("**redis-frag**: RSS in MiB of redis-server full (1 GiB × scale of 8 B-8 KiB values), right "
                 "after deleting 80% of the keys, 5 s and 10 s later with no call from the program, then after "
                 "`MEMORY PURGE`; live = redis's own used_memory after the deletes.")
        L.append("")
        L.append("| allocator | full | deleted | +5 s | +10 s | MEMORY PURGE | live | +10 s ÷ live |")
        L.append("|---|--:|--:|--:|--:|--:|--:|--:|")
        for a in anames:
            s = summary.get(("redis-frag", a))
            if not s or not s["ok"]:
                continue
            e = s["extra"]
            live, idle = e.get("live_kib"), e.get("rss_t10_kib")
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                a, fmt_mib(e.get("rss_full_kib")), fmt_mib(e.get("rss_t0_kib")), fmt_mib(e.get("rss_t5_kib")),
                fmt_mib(idle), fmt_mib(e.get("rss_purge_kib")), fmt_mib(live),
                "%.2f" % (idle / live) if idle and live else "-"))
    fails = [(wn, a, summary[(wn, a)]) for wn in wnames for a in anames
             if (wn, a) in summary and summary[(wn, a)]["failures"]]
    if fails:
        L.append("")
        L.append("Failures: " + "; ".join("%s/%s %d of %d runs (%s)" % (wn, a, s["failures"], s["runs"], s["failure"])
                                          for wn, a, s in fails) + ". Logs are in the results directory.")
    return "\n".join(L) + "\n"


# ---- gnuplot ---------------------------------------------------------------------

def have_gnuplot():
    return shutil.which("gnuplot") is not None


def _terminal():
    try:
        out = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True).stdout
        out += subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True).stderr
    except OSError:
        return None
    if "pngcairo" in out:
        return "pngcairo noenhanced size 1400,620 font 'sans,10'"
    if " png " in out or "png" in out:
        return "png noenhanced size 1400,620"
    return None


def histogram(outdir, name, title, ylabel, rows, anames, logscale=True):
    """rows: list of (label, [value per allocator or None]). Writes name.dat/.gp/.png."""
    term = _terminal()
    dat = os.path.join(outdir, name + ".dat")
    with open(dat, "w") as f:
        f.write("workload " + " ".join('"%s"' % a for a in anames) + "\n")
        for label, vals in rows:
            f.write('"%s" ' % label + " ".join("%.5g" % v if v else "NaN" for v in vals) + "\n")
    if not term:
        return None
    gp = os.path.join(outdir, name + ".gp")
    cols = ", ".join(("'%s' using %d:xtic(1) title columnheader(%d)" % (os.path.basename(dat), i + 2, i + 2))
                     if i == 0 else ("'' using %d title columnheader(%d)" % (i + 2, i + 2))
                     for i in range(len(anames)))
    with open(gp, "w") as f:
        f.write("set terminal %s\n" % term)
        f.write("set output '%s.png'\n" % name)
        f.write("set title \"%s\"\n" % title)
        f.write("set ylabel \"%s\"\n" % ylabel)
        f.write("set style data histograms\nset style histogram clustered gap 1\n")
        f.write("set style fill solid 0.85 border -1\nset boxwidth 0.9\n")
        f.write("set xtics rotate by -25 nomirror\nset grid ytics\nset key top left horizontal\n")
        if logscale:
            f.write("set logscale y 2\nset yrange [0.5:*]\n")
        else:
            f.write("set yrange [0:*]\n")
        f.write("plot %s, 1 notitle lt 0 lw 2\n" % cols)
    subprocess.run(["gnuplot", os.path.basename(gp)], cwd=outdir, capture_output=True)
    png = os.path.join(outdir, name + ".png")
    return png if os.path.exists(png) else None


def lines_plot(outdir, name, title, ylabel, xlabels, series):
    """series: list of (allocator, [values per x]). Writes name.dat/.gp/.png."""
    term = _terminal()
    dat = os.path.join(outdir, name + ".dat")
    with open(dat, "w") as f:
        f.write("phase " + " ".join('"%s"' % s[0] for s in series) + "\n")
        for i, x in enumerate(xlabels):
            f.write('"%s" ' % x + " ".join("%.5g" % s[1][i] if s[1][i] is not None else "NaN" for s in series) + "\n")
    if not term or not series:
        return None
    gp = os.path.join(outdir, name + ".gp")
    cols = ", ".join(("'%s' using %d:xtic(1) with linespoints lw 2 title columnheader(%d)" % (
        os.path.basename(dat), i + 2, i + 2)) for i in range(len(series)))
    with open(gp, "w") as f:
        f.write("set terminal %s\nset output '%s.png'\n" % (term, name))
        f.write("set title \"%s\"\nset ylabel \"%s\"\nset grid\nset key top right\nset yrange [0:*]\n" % (title, ylabel))
        f.write("plot %s\n" % cols)
    subprocess.run(["gnuplot", os.path.basename(gp)], cwd=outdir, capture_output=True)
    png = os.path.join(outdir, name + ".png")
    return png if os.path.exists(png) else None


def plots(outdir, summary, wnames, anames):
    made = []
    rows_t, rows_r = [], []
    for wn in wnames:
        ss = [summary.get((wn, a)) for a in anames]
        walls = [s["wall"] if s and s["ok"] else None for s in ss]
        rss = [s["rss_kib"] if s and s["ok"] else None for s in ss]
        bt = min([w for w in walls if w] or [None]) if any(walls) else None
        br = min([r for r in rss if r] or [None]) if any(rss) else None
        rows_t.append((wn, [w / bt if w and bt else None for w in walls]))
        rows_r.append((wn, [r / br if r and br else None for r in rss]))
    for name, title, yl, rows in (
            ("time", "Median wall time relative to the fastest allocator per workload (lower is better)",
             "time / best", rows_t),
            ("rss", "Median peak RSS relative to the leanest allocator per workload (lower is better)",
             "peak RSS / best", rows_r)):
        p = histogram(outdir, name, title, yl, rows, anames)
        if p:
            made.append(p)
    if "frag" in wnames:
        keys = ["rss_start_kib", "rss_a_kib", "rss_b_kib", "rss_c_kib", "rss_d_kib", "rss_trim_kib"]
        series = []
        for a in anames:
            s = summary.get(("frag", a))
            if s and s["ok"]:
                series.append((a, [(s["extra"].get(k) or 0) / 1024.0 for k in keys]))
        p = lines_plot(outdir, "frag", "frag: RSS after each phase", "RSS (MiB)",
                       ["start", "A fill", "B free 90%", "C medium", "D free all", "threads gone + malloc_trim"], series)
        if p:
            made.append(p)
    if "redis-frag" in wnames:
        from .workloads import FRAG_SAMPLES
        keys = ["rss_full_kib"] + ["rss_t%d_kib" % t for t in FRAG_SAMPLES] + ["rss_purge_kib"]
        series = []
        for a in anames:
            s = summary.get(("redis-frag", a))
            if s and s["ok"]:
                series.append((a, [(s["extra"].get(k) or 0) / 1024.0 for k in keys]))
        p = lines_plot(outdir, "redis-frag", "redis-frag: RSS of redis-server after deleting 80% of its keys",
                       "RSS (MiB)", ["full"] + ["%d s" % t for t in FRAG_SAMPLES] + ["PURGE"], series)
        if p:
            made.append(p)
    return made
