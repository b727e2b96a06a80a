"""Building numaheap (CMake) and the C workloads (cc, one file each)."""
import os
import shutil
import subprocess
import sys

CFLAGS = ["-O2", "-g", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-pthread",
          # every malloc/free in the source must reach the allocator under test
          "-fno-builtin-malloc", "-fno-builtin-calloc", "-fno-builtin-realloc", "-fno-builtin-free"]
LIBS = ["-lm", "-ldl"]


def log(msg):
    print("perf/run: " + msg, file=sys.stderr, flush=True)


def compile_stale(src, exe, flags=(), libs=()):
    """Compile the one C file src into exe with gcc, when exe is missing or older
    than src (the stand-alone benchmarks of perf/micro, perf/rss, perf/kbypass)."""
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        subprocess.run(["gcc", "-O2", "-g", "-Wall", "-Wextra", *flags, src, "-o", exe, *libs], check=True)
    return exe


def build_numaheap(repo, build_dir, jobs=None):
    """Configure (Release, no tests) if needed and build libnumaheap.so."""
    jobs = jobs or max(1, min(os.cpu_count() or 1, 8))
    if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
        log("configuring numaheap in %s" % build_dir)
        subprocess.run(["cmake", "-S", repo, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
                        "-DNUMAHEAP_TESTS=OFF"], check=True, stdout=subprocess.DEVNULL)
    log("building libnumaheap.so")
    subprocess.run(["cmake", "--build", build_dir, "--target", "numaheap", "-j", str(jobs)], check=True,
                   stdout=subprocess.DEVNULL)
    lib = os.path.join(build_dir, "libnumaheap.so")
    if not os.path.exists(lib):
        raise RuntimeError("build produced no %s" % lib)
    return lib


def build_workloads(src_dir, out_dir, names, cc=None):
    """Compile perf/workloads/<name>.c to out_dir/<name> when stale."""
    cc = cc or os.environ.get("CC") or shutil.which("cc") or "gcc"
    os.makedirs(out_dir, exist_ok=True)
    headers = [os.path.join(src_dir, h) for h in os.listdir(src_dir) if h.endswith(".h")]
    newest_header = max([os.path.getmtime(h) for h in headers] + [0])
    bins = {}
    for n in names:
        src = os.path.join(src_dir, n + ".c")
        out = os.path.join(out_dir, n)
        if (not os.path.exists(out) or os.path.getmtime(out) < max(os.path.getmtime(src), newest_header)):
            log("compiling %s" % os.path.relpath(src))
            subprocess.run([cc] + CFLAGS + ["-o", out, src] + LIBS, check=True)
        bins[n] = out
    return bins
