"""Run one measured process: wall time, CPU time, peak RSS, page faults.

The child runs in its own session (so a timeout can kill its whole group)
and is reaped with os.wait4, whose rusage gives the peak RSS (ru_maxrss,
KiB) and minor/major faults of the child and of any children it waited for.
"""
import os
import re
import signal
import subprocess
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


def run(argv, env=None, timeout=600, stdin_path=None, cwd=None):
    """Run argv; return a dict with status ('ok', 'exit N', 'signal NAME',
    'timeout', 'check-failed'), wall, user, sys, maxrss_kib, minflt, majflt,
    stdout, stderr."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True, cwd=cwd)
    if stdin_path:
        stdin.close()
    # Read the pipes in threads-free fashion: communicate() with a timeout,
    # then reap with wait4 ourselves (communicate does not reap if we are fast).
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
    p.returncode = 0  # reaped by us; keep Popen from trying again
    wall = time.monotonic() - t0
    out = out.decode(errors="replace")
    err = err.decode(errors="replace")
    if timed_out:
        st = "timeout"
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            st = "signal " + signal.Signals(sig).name
        except ValueError:
            st = "signal %d" % sig
    elif os.WEXITSTATUS(status) != 0:
        st = "check-failed" if "CHECK FAILED" in err else "exit %d" % os.WEXITSTATUS(status)
    else:
        st = "ok"
    return {"status": st, "wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime, "maxrss_kib": ru.ru_maxrss,
            "minflt": ru.ru_minflt, "majflt": ru.ru_majflt, "stdout": out, "stderr": err}


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
