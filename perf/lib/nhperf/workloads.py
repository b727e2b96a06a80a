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


class RedisServer:
    """redis-server under the allocator on a free loopback port, started and stopped around a with-block."""

    def __init__(self, ctx, alloc, prefix=(), env_extra=None, args=()):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = str(s.getsockname()[1])
        self.tmp = tempfile.mkdtemp(prefix="nhperf-redis-")
        self.env = Workload.env(alloc, env_extra)
        self.cli = ["redis-cli", "-h", "127.0.0.1", "-p", self.port]
        self.plain = dict(os.environ)
        self.plain.pop("LD_PRELOAD", None)
        self.argv = list(prefix) + ["redis-server", "--port", self.port, "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--daemonize", "no", "--dir", self.tmp,
                                    "--logfile", os.path.join(self.tmp, "log")] + list(args)
        self.r = {"status": "ok", "stdout": "", "stderr": ""}
        self.server = None

    def __enter__(self):
        t0 = time.monotonic()
        self.server = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        while True:
            if self.server.poll() is not None:
                self.r["status"] = "exit %d (server)" % self.server.returncode
                return self
            if self.call("ping") == "PONG":
                return self
            if time.monotonic() - t0 > 20:
                self.r["status"] = "timeout (server start)"
                return self
            time.sleep(0.05)

    def call(self, *words, timeout=600):
        """One redis-cli command (not under the allocator); its output, stripped."""
        out = subprocess.run(self.cli + list(words), env=self.plain, capture_output=True, text=True,
                             timeout=timeout)
        return out.stdout.strip()

    def benchmark(self, ctx, args):
        return proc.run(["redis-benchmark", "-h", "127.0.0.1", "-p", self.port] + list(args), env=self.plain,
                        timeout=ctx.timeout)

    def status(self):
        return proc.proc_status(self.server.pid)

    def __exit__(self, *exc):
        if self.server.poll() is None:
            subprocess.run(self.cli + ["shutdown", "nosave"], env=self.plain, capture_output=True, timeout=30)
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.server.pid, 9)
            self.server.wait()
        self.r["stderr"] += self.server.stderr.read().decode(errors="replace")
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.server.returncode not in (0, None) and self.r["status"] == "ok":
            self.r["status"] = "exit %d (server)" % self.server.returncode
        return False


def parse_rps(stdout):
    rps = {}
    for line in stdout.splitlines():
        m = re.match(r'^"([^"]+)","([0-9.]+)"', line)
        if m:
            rps[m.group(1).split()[0].lower()] = float(m.group(2))
    return rps


def redis_checked(srv):
    """The server still answers and stores: a set and a get of a check key."""
    ok = srv.call("set", "nhperf:check", "v42")
    got = srv.call("get", "nhperf:check")
    return ok == "OK" and got == "v42"


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
        with RedisServer(ctx, alloc, prefix, env_extra) as srv:
            r = srv.r
            if r["status"] != "ok":
                return finish(r, {})
            b = srv.benchmark(ctx, ["-n", str(n), "-c", "50", "-P", "16", "-d", "256", "-r", "200000",
                                    "-t", self.tests, "--csv"])
            r.update({k: b[k] for k in ("wall", "stdout", "stderr")})
            if b["status"] != "ok":
                r["status"] = b["status"] + " (benchmark)"
            rps = parse_rps(b["stdout"])
            if r["status"] == "ok" and not redis_checked(srv):
                r["status"] = "check-failed"
            if srv.server.poll() is not None and r["status"] == "ok":
                r["status"] = "exit %s (server died)" % srv.server.returncode
            st = srv.status()
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


class RedisMix(Redis):
    """Pipelined mix with the server's CPU per request: what a busy cache server spends in malloc."""

    def __init__(self):
        Program.__init__(self, "redis-mix", "redis-server under LD_PRELOAD, redis-benchmark -c 50 -P 16 "
                         "-r 100000 over 12 commands (SET GET INCR LPUSH LPOP SADD HSET SPOP ZADD ZPOPMIN MSET "
                         "LRANGE_100), once with 64 B and once with 1 KiB values, N = 100,000 * SCALE each; "
                         "reports the server's CPU time per request (cpu_us_per_req)", binary=None)
        self.tests = "set,get,incr,lpush,lpop,sadd,hset,spop,zadd,zpopmin,mset,lrange_100"

    def run(self, ctx, alloc, threads, scale, prefix=(), env_extra=None):
        n = max(2000, int(100000 * scale))
        res, wall, out = {}, 0.0, ""
        with RedisServer(ctx, alloc, prefix, env_extra) as srv:
            r = srv.r
            if r["status"] != "ok":
                return finish(r, {})
            st0 = srv.status()
            for d in ("64", "1024"):
                b = srv.benchmark(ctx, ["-n", str(n), "-c", "50", "-P", "16", "-d", d, "-r", "100000",
                                        "-t", self.tests, "--csv"])
                wall += b["wall"] or 0
                out += b["stdout"]
                r["stderr"] += b["stderr"]
                if b["status"] != "ok" and r["status"] == "ok":
                    r["status"] = b["status"] + " (benchmark)"
                for k, v in parse_rps(b["stdout"]).items():
                    res["rps_%s_%s" % (k, d)] = v
            st1 = srv.status()
            if r["status"] == "ok" and not redis_checked(srv):
                r["status"] = "check-failed"
        total = 2 * n * len(self.tests.split(","))
        r["wall"], r["stdout"] = wall, out
        res.update({"ops": total, "secs": wall, "ops_per_sec": total / wall if wall else None})
        cpu = (st1.get("user", 0) + st1.get("sys", 0)) - (st0.get("user", 0) + st0.get("sys", 0))
        if cpu > 0:
            res["cpu_us_per_req"] = cpu * 1e6 / total
            res["server_cpu_s"] = cpu
        finish(r, res)
        r["maxrss_kib"] = st1.get("VmHWM")
        r["minflt"] = st1.get("minflt")
        r["user"] = st1.get("user")
        r["sys"] = st1.get("sys")
        return r


# The fill of RedisFrag: N string values of random sizes (8 B to 8 KiB), then
# the deletion of about 80% of the keys at random, both server-side in Lua.
FILL_LUA = ("math.randomseed(tonumber(ARGV[2])) for i = 1, tonumber(ARGV[1]) do "
            "redis.call('SET', 'k:' .. i, string.rep('x', math.random(8, 8192))) end return 1")
DELETE_LUA = ("math.randomseed(tonumber(ARGV[2])) local d = 0 for i = 1, tonumber(ARGV[1]) do "
              "if math.random() < 0.8 then d = d + redis.call('DEL', 'k:' .. i) end end return d")
FRAG_SAMPLES = [0, 1, 2, 3, 4, 5, 6, 8, 10]


class RedisFrag(Redis):
    """A server's heap after most of it was freed: does the RSS come back without a call?"""

    def __init__(self):
        Program.__init__(self, "redis-frag", "redis-server under LD_PRELOAD: fill 1 GiB * SCALE of string values "
                         "of random sizes (8 B-8 KiB), delete 80% of the keys at random, then idle 10 s (RSS "
                         "sampled), then MEMORY PURGE; rss_idle10_kib is the RSS 10 s after the deletes",
                         binary=None)

    def run(self, ctx, alloc, threads, scale, prefix=(), env_extra=None):
        nkeys = max(5000, int(256 * 1024 * scale))  # ~4 KiB a value on average
        res = {}
        with RedisServer(ctx, alloc, prefix, env_extra, args=["--lua-time-limit", "0"]) as srv:
            r = srv.r
            if r["status"] != "ok":
                return finish(r, {})
            t0 = time.monotonic()
            srv.call("eval", FILL_LUA, "0", str(nkeys), "7")
            res["rss_full_kib"] = srv.status().get("VmRSS")
            deleted = srv.call("eval", DELETE_LUA, "0", str(nkeys), "11")
            t1 = time.monotonic()
            for i, t in enumerate(FRAG_SAMPLES):
                while time.monotonic() - t1 < t:
                    time.sleep(0.05)
                res["rss_t%d_kib" % t] = srv.status().get("VmRSS")
            info = dict(line.split(":", 1) for line in srv.call("info", "memory").splitlines() if ":" in line)
            res["live_kib"] = int(info.get("used_memory", "0")) // 1024
            srv.call("memory", "purge")
            time.sleep(1)
            res["rss_purge_kib"] = srv.status().get("VmRSS")
            if r["status"] == "ok" and not redis_checked(srv):
                r["status"] = "check-failed"
            try:
                res["deleted"] = int(deleted)
            except ValueError:
                if r["status"] == "ok":
                    r["status"] = "check-failed (delete: %s)" % deleted[:60]
            st = srv.status()
        r["wall"] = t1 - t0
        res.update({"ops": nkeys, "secs": r["wall"], "ops_per_sec": nkeys / r["wall"] if r["wall"] else None})
        res["rss_idle10_kib"] = res.get("rss_t10_kib")
        finish(r, res)
        r["maxrss_kib"] = st.get("VmHWM")
        r["minflt"] = st.get("minflt")
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
        Workload("swell", "a small heap swelling and shrinking: T threads grow to 6 MiB each (8-16000 B), "
                 "free 90%, pause 1.5 s, 3 rounds; for the peak RSS"),
        Workload("trim", "stress-ng's malloc stressor: T threads, 8192 slots each, random malloc/calloc/"
                 "memalign/realloc/free of 1 B-32 KiB (pages written), malloc_trim(0) after 1 step in 8"),
        Workload("tlb", "256 MiB of 32-256 B nodes linked in random order, T threads chase pointers "
                 "(TLB/cache misses set by the heap layout)"),
        Workload("walk", "128 MiB of records (a 64 B head, a 16-64 B key, a 32-512 B value) made in turn, "
                 "then the heads and the keys walked in that order (no allocation: the layout's locality)"),
        Redis(),
        RedisMix(),
        RedisFrag(),
        Sqlite(),
        Python(),
    ]
    return {w.name: w for w in c}


C_WORKLOAD_SOURCES = ["larson", "xmalloc", "cache_scratch", "cache_thrash", "pareto", "mstress", "rptest",
                      "large", "frag", "swell", "trim", "tlb", "walk"]
