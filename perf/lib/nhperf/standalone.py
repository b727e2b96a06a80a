"""What the stand-alone benchmarks share: perf/micro/micro.py, perf/rss/rss.py
and perf/kbypass/kbypass.py (each one C program run under numaheap and its
peers, one allocator after the other).

numaheap is taken from --lib, or from <build>/libnumaheap.so, built there
(cmake, Release) when missing; a peer is the Debian library of PEERS,
preloaded with LD_PRELOAD, glibc being the run with nothing preloaded.
"""
import argparse
import os
import subprocess
import sys

from .allocators import DEFAULT_ORDER
from .allocators import PEERS as PEER_CANDIDATES
from .bench import log
from .build import compile_stale

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
# name, library to preload ("" = glibc's own malloc)
PEERS = [(n, "" if n == "glibc" else PEER_CANDIDATES[n][0]) for n in DEFAULT_ORDER if n != "numaheap"]
LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
            "/lib/x86_64-linux-gnu")


def parser(doc):
    """The script's argument parser, its docstring the description, with
    --build and --lib: where numaheap comes from."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build"),
                    help="numaheap build directory (default: <repo>/build; built there if missing)")
    ap.add_argument("--lib", help="libnumaheap.so to use instead of <build>/libnumaheap.so")
    return ap


def numaheap_lib(who, lib, build):
    """Path of libnumaheap.so: lib when given, else <build>/libnumaheap.so,
    configured and built there when missing."""
    if lib:
        if not os.path.exists(lib):
            sys.exit(f"{who}: --lib {lib}: no such file")
        return os.path.abspath(lib)
    build = os.path.abspath(build)
    path = os.path.join(build, "libnumaheap.so")
    if not os.path.exists(path):
        log(f"{who}: {path} missing; building numaheap in {build}")
        if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
            subprocess.run(["cmake", "-S", REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release"],
                           check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", build, "-j2", "--target", "numaheap"], check=True,
                       stdout=subprocess.DEVNULL)
    return path


def compile_bench(build, src, flags=(), libs=()):
    """<build>/perf-bench/<name>, compiled from the C file src (<name>.c) when older than it."""
    name = os.path.splitext(os.path.basename(src))[0]
    exe = os.path.join(os.path.abspath(build), "perf-bench", name)
    return compile_stale(src, exe, flags, libs)


def find_lib(name):
    """The path of library name in the system's library directories; "" for
    "" (glibc), None when it is not installed."""
    if not name:
        return ""
    for d in LIB_DIRS:
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return None


def peer_libs(who, glibc=""):
    """[(name, library)] of the peers installed (glibc's: the glibc argument);
    a line on stderr for each one that is not."""
    out = []
    for name, so in PEERS:
        p = find_lib(so) if so else glibc
        if p is None:
            log(f"{who}: {so} not installed (tools/install-deps.sh --perf); {name} left out")
            continue
        out.append((name, p))
    return out


def pick(allocs, spec, variants=False):
    """The entries of allocs (tuples, the name first) named in spec, a
    comma-separated list (None or "": all); with variants, the numaheap-*
    entries go along with numaheap."""
    if not spec:
        return allocs
    want = spec.split(",")
    return [a for a in allocs
            if a[0] in want or (variants and a[0].startswith("numaheap-") and "numaheap" in want)]


def preload_env(preload, extra=None):
    """This environment with LD_PRELOAD=preload (none for ""), and extra."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    env.update(extra or {})
    return env


def describe_lib(lib):
    """'<lib> (commit abc1234[, source modified])[ with NUMAHEAP_...]', the commit
    read from the build's CMakeCache, the settings from the environment."""
    opts = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                    if k.startswith("NUMAHEAP_") and k not in ("NUMAHEAP_STATS", "NUMAHEAP_STATS_FILE"))
    return describe_build(lib) + (f" with {opts}" if opts else "")


def describe_build(lib):
    src = None
    try:
        for line in open(os.path.join(os.path.dirname(lib), "CMakeCache.txt")):
            if line.startswith("CMAKE_HOME_DIRECTORY:INTERNAL="):
                src = line.split("=", 1)[1].strip()
    except OSError:
        pass
    if not src:
        return lib
    try:
        head = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", src, "status", "--porcelain", "--", "src", "numa", "arch",
                                "include", "CMakeLists.txt"], capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return lib
    return f"{lib} (commit {head}{', source modified since' if dirty else ''})"


def write_csv(path, header, rows):
    """A CSV file: the header line, then a line per row (a sequence of cells, each written with str())."""
    with open(path, "w") as f:
        f.write(header + "\n")
        for row in rows:
            f.write(",".join(str(c) for c in row) + "\n")
