"""The catalogue of workloads perf/run knows.

C workloads are the programs in perf/workloads/*.c (see common.h for their
interface). Real programs run under LD_PRELOAD: redis-server driven by
redis-benchmark on loopback, the sqlite3 shell on an in-memory database, and
python3 with PYTHONMALLOC=malloc.
"""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from . import proc


class Workload:
    kind = "c"
    threaded = True

    def __init__(self, name, desc, binary=None):
        self.name = name
        self.desc = desc
        self.binary = binary or name.replace("-", "_")

    def available(self):
        return None  # or a reason why not

    @staticmethod
    def env(alloc, env_extra=None):
        """The environment of a run: the allocator preloaded, plus env_extra."""
        env = alloc.env()
        env.update(env_extra or {})
        return env

    def run(self, ctx, alloc, threads, scale, prefix=(), env_extra=None):
        env = self.env(alloc, env_extra)
        argv = list(prefix) + [ctx.bins[self.binary], str(threads), repr(scale)]
        r = proc.run(argv, env=env, timeout=ctx.timeout)
        return finish(r, proc.parse_result(r["stdout"]))


def finish(r, res):
    r["result"] = res
    if r["status"] == "ok" and "ops" not in res:
        r["status"] = "no-result"
    r["ops"] = res.get("ops")
    r["secs"] = res.get("secs")
    r["ops_per_sec"] = res.get("ops_per_sec")
    if res.get("maxrss_kib"):
        r["self_maxrss_kib"] = int(res["maxrss_kib"])
    return r


class Program(Workload):
    """A real program, run under LD_PRELOAD; needs: the commands it takes."""
    kind = "program"
    threaded = False
    needs = ()
    install_hint = ""

    def available(self):
        for b in self.needs:
            if not shutil.which(b):
                return "%s not installed%s" % (b, self.install_hint)
        return None


class Redis(Program):
    needs = ("redis-server", "redis-benchmark", "redis-cli")
    install_hint = " (apt-get install redis-server redis-tools)"

    def __init__(self):
        super().__init__("redis", "redis-server under LD_PRELOAD, redis-benchmark (-c 50 -P 16 -d 256 "
                         "-r 200000) on 127.0.0.1 over 10 commands, N = 100,000 * SCALE requests each",
                         binary=None)
        self.tests = "set,get,incr,lpush,rpop,sadd,hset,spop,zadd,lrange_100"

    def run(self, ctx, alloc, threads, scale, prefix=(), env_extra=None):
        n = max(2000, int(100000 * scale))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = str(s.getsockname()[1])
        tmp = tempfile.mkdtemp(prefix="nhperf-redis-")
        env = self.env(alloc, env_extra)
        cli = ["redis-cli", "-h", "127.0.0.1", "-p", port]
        plain = dict(os.environ)
        plain.pop("LD_PRELOAD", None)
        t0 = time.monotonic()
        server = subprocess.Popen(list(prefix) + ["redis-server", "--port", port, "--bind", "127.0.0.1",
                                                  "--save", "", "--appendonly", "no", "--daemonize", "no",
                                                  "--dir", tmp, "--logfile", os.path.join(tmp, "log")],
                                  env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, start_new_session=True)
        r = {"status": "ok", "stdout": "", "stderr": ""}
        try:
            while True:
                if server.poll() is not None:
                    r["status"] = "exit %d (server)" % server.returncode
                    r["stderr"] = server.stderr.read().decode(errors="replace")
                    return finish(r, {})
                ping = subprocess.run(cli + ["ping"], env=plain, capture_output=True, text=True)
                if ping.stdout.strip() == "PONG":
                    break
                if time.monotonic() - t0 > 20:
                    r["status"] = "timeout (server start)"
                    return finish(r, {})
                time.sleep(0.05)
            b = proc.run(["redis-benchmark", "-h", "127.0.0.1", "-p", port, "-n", str(n), "-c", "50", "-P", "16",
                          "-d", "256", "-r", "200000", "-t", self.tests, "--csv"], env=plain, timeout=ctx.timeout)
            r.update({k: b[k] for k in ("wall", "stdout", "stderr")})
            if b["status"] != "ok":
                r["status"] = b["status"] + " (benchmark)"
            rps = {}
            for line in b["stdout"].splitlines():
                m = re.match(r'^"([^"]+)","([0-9.]+)"', line)
                if m:
                    rps[m.group(1).split()[0].lower()] = float(m.group(2))
            ok = subprocess.run(cli + ["set", "nhperf:check", "v42"], env=plain, capture_output=True, text=True)
            got = subprocess.run(cli + ["get", "nhperf:check"], env=plain, capture_output=True, text=True)
            if r["status"] == "ok" and (ok.stdout.strip() != "OK" or got.stdout.strip() != "v42"):
                r["status"] = "check-failed"
            if server.poll() is not None and r["status"] == "ok":
                r["status"] = "exit %s (server died)" % server.returncode
            st = proc.proc_status(server.pid)
            subprocess.run(cli + ["shutdown", "nosave"], env=plain, capture_output=True, timeout=30)
        finally:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)
                server.wait()
            err = server.stderr.read().decode(errors="replace")
            r["stderr"] += err
            shutil.rmtree(tmp, ignore_errors=True)
        if server.returncode not in (0, None) and r["status"] == "ok":
            r["status"] = "exit %d (server)" % server.returncode
        total = n * len(self.tests.split(","))
        res = {"ops": total, "secs": r.get("wall") or 0}
        if res["secs"]:
            res["ops_per_sec"] = total / res["secs"]
        for k, v in rps.items():
            res["rps_" + k] = v
        finish(r, res)
        r["maxrss_kib"] = st.get("VmHWM")
        r["minflt"] = st.get("minflt")
        r["majflt"] = st.get("majflt")
        r["user"] = st.get("user")
        r["sys"] = st.get("sys")
        return r


class Sqlite(Program):
    needs = ("sqlite3",)

    def __init__(self):
        super().__init__("sqlite", "sqlite3 shell, in-memory database: insert 100,000 * SCALE rows, "
                         "two indexes, GROUP BY, UPDATE/DELETE, CREATE TABLE AS, JOIN, ORDER BY, VACUUM")

    def run(self, ctx, alloc, threads, scale, prefix=(), env_extra=None):
        rows = max(1000, int(100000 * scale))
        with open(os.path.join(ctx.workload_dir, "sqlite.sql.in")) as f:
            sql = f.read().replace("@ROWS@", str(rows))
        path = os.path.join(ctx.tmp, "sqlite-%d.sql" % rows)
        with open(path, "w") as f:
            f.write(sql)
        env = self.env(alloc, env_extra)
        r = proc.run(list(prefix) + ["sqlite3", ":memory:"], env=env, timeout=ctx.timeout, stdin_path=path)
        lines = r["stdout"].split()
        if r["status"] == "ok" and (not lines or lines[-1] != str(rows - rows // 5)):
            r["status"] = "check-failed"
        return finish(r, {"ops": rows, "secs": r["wall"], "ops_per_sec": rows / r["wall"]})


class Python(Program):
    needs = ("python3",)

    def __init__(self):
        super().__init__("python", "python3 with PYTHONMALLOC=malloc running perf/workloads/pyalloc.py "
                         "(dicts, JSON, sort, delete/rebuild, string and bytearray growth), 100,000 * SCALE records")

    def run(self, ctx, alloc, threads, scale, prefix=(), env_extra=None):
        n = max(2000, int(100000 * scale))
        env = self.env(alloc, env_extra)
        # not -I or -E: they ignore PYTHONMALLOC too (pymalloc would then serve
        # the small objects); -s and a cleared PYTHON* environment instead
        for k in [k for k in env if k.startswith("PYTHON")]:
            del env[k]
        env["PYTHONMALLOC"] = "malloc"
        r = proc.run(list(prefix) + ["python3", "-s", os.path.join(ctx.workload_dir, "pyalloc.py"), str(n)],
                     env=env, timeout=ctx.timeout)
        return finish(r, proc.parse_result(r["stdout"]))


def catalogue():
    c = [
        Workload("larson", "server: 2T connections of 4096 objects (16-512 B) passed between threads "
                 "through a FIFO; nearly every free is remote"),
        Workload("xmalloc", "producer/consumer: T/2 threads only allocate (8-256 B, batches of 64), "
                 "T/2 only free"),
        Workload("cache-scratch", "passive false sharing: each thread frees an 8 B object the main "
                 "thread allocated next to the others', then allocates/writes/frees its own"),
        Workload("cache-thrash", "active false sharing: threads allocate, write and free 8 B objects "
                 "concurrently"),
        Workload("pareto", "Pareto-distributed sizes (16 B min, shape 1.1, 1 MiB cap), 16384 live "
                 "objects per thread replaced at random"),
        Workload("mstress", "thread churn: 40 rounds of T new threads, long-lived objects freed by later "
                 "threads, bursts of short-lived 16 B-4 KiB objects"),
        Workload("rptest", "realistic mix: sizes 16 B-256 KiB in 4 bands, lifetimes 1-65536 ticks, 5% "
                 "realloc, 10% of frees sent to another thread"),
        Workload("large", "8 live blocks of 64 KiB-8 MiB (every page touched) replaced at random, then "
                 "realloc growth x1.125 to 16 MiB and +4 KiB to 2 MiB"),
        Workload("frag", "fill 256 MiB of 16-512 B objects, free 90% at random, allocate 128 MiB of "
                 "1-8 KiB objects, free all, malloc_trim: RSS after each phase"),
        Workload("tlb", "256 MiB of 32-256 B nodes linked in random order, T threads chase pointers "
                 "(TLB/cache misses set by the heap layout)"),
        Redis(),
        Sqlite(),
        Python(),
    ]
    return {w.name: w for w in c}


C_WORKLOAD_SOURCES = ["larson", "xmalloc", "cache_scratch", "cache_thrash", "pareto", "mstress", "rptest",
                      "large", "frag", "tlb"]
