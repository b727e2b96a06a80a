"""Allocators under test: each is a shared library preloaded with LD_PRELOAD.

glibc is the odd one: its malloc lives in libc itself. It is "preloaded" by
putting libc.so.6 first in LD_PRELOAD, which changes nothing for ordinary
programs but makes programs linked against another malloc (Debian's
redis-server is linked with libjemalloc) resolve malloc to glibc's.
"""
import glob
import os

# name -> candidate library file names (first found wins)
PEERS = {
    "glibc": ["libc.so.6"],
    "jemalloc": ["libjemalloc.so.2", "libjemalloc.so"],
    "tcmalloc": ["libtcmalloc_minimal.so.4", "libtcmalloc_minimal.so"],
    "mimalloc": ["libmimalloc.so.2", "libmimalloc.so.2.0", "libmimalloc.so"],
}
DEFAULT_ORDER = ["numaheap", "glibc", "jemalloc", "tcmalloc", "mimalloc"]
DESCRIPTIONS = {
    "numaheap": "numaheap (this repository, built Release)",
    "glibc": "glibc ptmalloc2 (the system malloc)",
    "jemalloc": "jemalloc (Debian libjemalloc2)",
    "tcmalloc": "gperftools tcmalloc_minimal (Debian libtcmalloc-minimal4)",
    "mimalloc": "mimalloc (Debian libmimalloc2.0)",
}


def lib_dirs():
    dirs = []
    for pat in ("/usr/lib/*-linux-gnu*", "/lib/*-linux-gnu*", "/usr/lib64", "/lib64", "/usr/lib",
                "/usr/local/lib"):
        for d in sorted(glob.glob(pat)):
            if os.path.isdir(d) and d not in dirs:
                dirs.append(d)
    return dirs


def find_library(names):
    for d in lib_dirs():
        for n in names:
            p = os.path.join(d, n)
            if os.path.exists(p):
                return os.path.realpath(p) if n == "libc.so.6" else p
    return None


class Allocator:
    def __init__(self, name, lib, description="", extra_env=None):
        self.name = name
        self.lib = lib
        self.description = description or DESCRIPTIONS.get(name, name)
        # variables set for this allocator's runs only (--alloc-env), e.g.
        # NUMAHEAP_MIN_ALIGN=8 on a second copy of numaheap
        self.extra_env = dict(extra_env or {})

    def env(self, base=None):
        env = dict(os.environ if base is None else base)
        if self.lib:
            env["LD_PRELOAD"] = self.lib
        else:
            env.pop("LD_PRELOAD", None)
        env.update(self.extra_env)
        return env

    def env_text(self):
        return " ".join("%s=%s" % kv for kv in sorted(self.extra_env.items()))

    def __repr__(self):
        return "Allocator(%s, %s)" % (self.name, self.lib)


def resolve(names, numaheap_lib, extra=None, envs=None):
    """Return (allocators, missing) for the requested names.

    extra: dict name -> path from --alloc-lib, which also adds new names; a
    path that is the name of a known allocator (no '/', e.g. "numaheap")
    takes that allocator's library. envs: dict name -> {VAR: VALUE} from
    --alloc-env, set in that allocator's runs only."""
    extra = extra or {}
    envs = envs or {}
    found, missing = [], []
    for n in names:
        if n in extra and "/" not in extra[n] and (extra[n] == "numaheap" or extra[n] in PEERS):
            base, bmiss = resolve([extra[n]], numaheap_lib)
            if base:
                found.append(Allocator(n, base[0].lib, "%s (the %s library)" % (n, extra[n])))
            else:
                missing.append((n, bmiss[0][1]))
        elif n in extra:
            lib = extra[n]
            if os.path.exists(lib):
                found.append(Allocator(n, lib, "%s (%s)" % (n, lib)))
            else:
                missing.append((n, "no file " + lib))
        elif n == "numaheap":
            if numaheap_lib and os.path.exists(numaheap_lib):
                found.append(Allocator(n, numaheap_lib))
            else:
                missing.append((n, "not built"))
        elif n in PEERS:
            lib = find_library(PEERS[n])
            if lib:
                found.append(Allocator(n, lib))
            else:
                missing.append((n, "library %s not found (apt-get install the Debian package)" % PEERS[n][0]))
        else:
            missing.append((n, "unknown allocator (use --alloc-lib %s=/path/lib.so)" % n))
    for a in found:
        a.extra_env = dict(envs.get(a.name, {}))
        if a.extra_env:
            a.description += ", with " + a.env_text()
    return found, missing
