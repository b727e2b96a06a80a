"""nhperf — the machinery behind perf/run (numaheap's side-by-side benchmarks).

Modules: allocators (which malloc to preload), build (numaheap and the C
workloads), proc (running one measured process), workloads (the catalogue),
bench (repetitions, alternation, medians), report (Markdown, CSV, gnuplot),
numa (the multi-socket mode); standalone, what perf/micro, perf/rss and
perf/kbypass share. Standard library only.
"""
