"""Run one measured process: wall time, CPU time, peak RSS, page faults; the
counts of a live process (proc_status) and the machine's load (loadavg).

The child runs in its own session (so a timeout can kill its whole group)
and is reaped with os.wait4, whose rusage gives the peak RSS (ru_maxrss,
KiB) and minor/major faults of the child and of any children it waited for.
"""
import os
import re
import signal
import subprocess
import tempfile
import time

RESULT_RE = re.compile(r"^RESULT (.*)$", re.M)


def parse_result(text):
    """The key=value pairs of the last RESULT line, values as float where they parse."""
    m = None
    for m in RESULT_RE.finditer(text):
        pass
    if not m:
        return {}
    out = {}
    for kv in m.group(1).split():
        if "=" in kv:
            k, v = kv.split("=", 1)
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


LAUNCHER = None  # path of the compiled nhlaunch, set by perf/run


def run(argv, env=None, timeout=600, stdin_path=None, cwd=None):
    """Run argv; return a dict with status ('ok', 'exit N', 'signal NAME',
    'timeout', 'check-failed'), wall, user, sys, maxrss_kib, minflt, majflt,
    stdout, stderr. With LAUNCHER set, the rusage is the command's own, taken
    by nhlaunch (see perf/workloads/nhlaunch.c)."""
    resfile = None
    if LAUNCHER:
        fd, resfile = tempfile.mkstemp(prefix="nhlaunch-")
        os.close(fd)
        os.unlink(resfile)
        argv = [LAUNCHER, resfile] + list(argv)
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True, cwd=cwd)
    if stdin_path:
        stdin.close()
    timed_out = False
    try:
        out, err = communicate_no_reap(p, timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = communicate_no_reap(p, 30)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = 0  # reaped by us; keep Popen from trying again
    res = {"maxrss_kib": ru.ru_maxrss, "minflt": ru.ru_minflt, "majflt": ru.ru_majflt,
           "user": ru.ru_utime, "sys": ru.ru_stime}
    exitcode = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    if resfile:
        try:
            with open(resfile) as f:
                kv = dict(x.split("=", 1) for x in f.read().split())
            os.unlink(resfile)
            res = {"maxrss_kib": int(kv["maxrss_kib"]), "minflt": int(kv["minflt"]),
                   "majflt": int(kv["majflt"]), "user": float(kv["user"]), "sys": float(kv["sys"])}
            sig = int(kv["signal"])
            exitcode = int(kv["exit"]) if not sig else None
        except (OSError, KeyError, ValueError):
            pass
    out = out.decode(errors="replace")
    err = err.decode(errors="replace")
    if timed_out:
        st = "timeout"
    elif sig:
        try:
            st = "signal " + signal.Signals(sig).name
        except ValueError:
            st = "signal %d" % sig
    elif exitcode:
        st = "check-failed" if "CHECK FAILED" in err else "exit %d" % exitcode
    else:
        st = "ok"
    r = {"status": st, "wall": wall, "stdout": out, "stderr": err}
    r.update(res)
    return r


def communicate_no_reap(p, timeout):
    """Like Popen.communicate, but leaves the exited child unreaped for wait4."""
    import selectors
    sel = selectors.DefaultSelector()
    chunks = {p.stdout: [], p.stderr: []}
    for f in (p.stdout, p.stderr):
        if f and not f.closed:
            sel.register(f, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while sel.get_map():
        left = deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired(p.args, timeout)
        for key, _ in sel.select(min(left, 1.0)):
            data = os.read(key.fd, 65536)
            if data:
                chunks[key.fileobj].append(data)
            else:
                sel.unregister(key.fileobj)
                key.fileobj.close()
    return b"".join(chunks[p.stdout]), b"".join(chunks[p.stderr])


def loadavg_text():
    """The 1-minute load average as /proc/loadavg writes it; "?" when unreadable."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return "?"


def loadavg():
    """The 1-minute load average (NaN when unreadable): timings mean little on a busy machine."""
    try:
        return float(loadavg_text())
    except ValueError:
        return float("nan")


def proc_status(pid):
    """VmHWM / VmRSS (KiB) and fault counts of a live process, from /proc."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    out[line.split(":")[0]] = int(line.split()[1])
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
            out["minflt"] = int(fields[7])
            out["majflt"] = int(fields[9])
            tck = os.sysconf("SC_CLK_TCK")
            out["user"] = int(fields[11]) / tck
            out["sys"] = int(fields[12]) / tck
    except (OSError, IndexError, ValueError):
        pass
    return out
