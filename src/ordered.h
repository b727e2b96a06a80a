/*
 * ordered.h — small objects placed in allocation order (ordered.c,
 * NUMAHEAP_ORDERED).
 */
#ifndef NUMAHEAP_ORDERED_H
#define NUMAHEAP_ORDERED_H

#include "internal.h"

struct mspan;
struct mcache;
struct mheap;

/* A P's hole in an ordered span (in its mcache): granules [next, end) of
 * span are the P's to cut from; carved and carvedg count what it cut
 * since it took the span (objects, granules), added to the span's counts
 * when it lets go. The P held. */
struct ohole {
	struct mspan *span;
	uint16_t next, end, carved, carvedg;
	uint8_t last, streak; /* the class of the last slow-path cut, and its visits in a row */
};

#define OBANDS 2 /* up to 1 KiB, up to 8 KiB (ospan.h) */

/* Classes lo..hi are placed in order (hi 0: off). Set at start-up. */
extern unsigned nh_ordered_lo, nh_ordered_hi;

/* Is class cls placed in allocation order? */
NH_INLINE bool ordered_class(unsigned cls) { return cls - nh_ordered_lo <= nh_ordered_hi - nh_ordered_lo && nh_ordered_hi; }

/* Start-up: the classes from NUMAHEAP_ORDERED (none in hardened mode). */
void ordered_init(void);
/* A fresh object of class cls from c's hole of its band, c a P the caller
 * holds (per-CPU: its slab's lock); NULL when the heap is exhausted. Its
 * first word may hold an old free mark: it goes out as a fresh entry
 * (fastpath.h, fresh_object). Takes the band's lock when the hole is used
 * up, and the heap's for a new span. */
void *ordered_alloc(struct mcache *c, unsigned cls);
/* As ordered_alloc, and from the P's third slow-path visit in a row for
 * one class on, more of them from the rest of the hole (2, 4, 8, then 16,
 * at most max): out[0..n) in address order; n, 0 when exhausted. */
unsigned ordered_alloc_n(struct mcache *c, unsigned cls, uintptr_t *out, unsigned max);
/* c gives up its holes' spans (a drain, a thread's exit); the P held.
 * Takes the band locks. */
void ordered_retire(struct mcache *c);
/* free of p on ordered span s (malloc.c, free_general: the class from
 * ospan.h's ordered_object_class), when p starts no object: reports and
 * aborts. */
NH_COLD NH_NORETURN void ordered_bad_free(const struct mspan *s, uintptr_t p);
/* free of p, of class cls, on ordered span s that is being emptied: the
 * object goes straight back to it. Takes the band's lock. */
void ordered_free_evac(struct mspan *s, uintptr_t p, unsigned cls);
/* The usable size of the object at p on ordered span s; reports (api) and
 * aborts when p does not start an object there. */
size_t ordered_size(const char *api, const struct mspan *s, uintptr_t p);
/* Cache entries of class cls going back from caches of h's node: the ones
 * on ordered spans go back to them; the others are copied to rest[] (room
 * for n), and their number returned. Takes the band's lock, then the
 * heap's. */
unsigned ordered_release(struct mheap *h, unsigned cls, const uintptr_t *objs, unsigned n, uintptr_t *rest);
/* The in-span release of h's ordered spans (scavenger.c), as
 * mcentral_take_free_pages and mcentral_put_free_pages. Take the band's
 * lock (and put, the heap's after it). */
struct span_piece;
unsigned ordered_take_free_pages(struct mheap *h, unsigned band, uint64_t idle_before, uint64_t *busy,
				 struct span_piece *out, unsigned max);
void ordered_put_free_pages(struct mheap *h, unsigned band, const struct span_piece *p, unsigned n, const int *res);
/* For the collapse step (spanrange.c): the bytes of [lo, hi) that s, an
 * ordered span, has released (and with reclaim, takes them back as the
 * program's: the collapse fills them in), or its objects' bytes there (by
 * the span's share of the range). s is rechecked under its band's lock,
 * which these take (it may have been freed, its struct reused). */
size_t ordered_range_released(struct mheap *h, struct mspan *s, uintptr_t lo, uintptr_t hi, bool reclaim);
size_t ordered_range_used(struct mheap *h, struct mspan *s, uintptr_t lo, uintptr_t hi);
/* Each pass of the background thread (mcentral_evacuate): the sparsest
 * spans to the evac lists. Takes the band locks, and nothing else. */
void ordered_evacuate(struct mheap *h);
/* Fork: take or drop every band's lock; reset them in the child. */
void ordered_fork_lock(bool lock);
void ordered_fork_child(void);
/* Objects of class cls handed out from node's ordered spans (statistics;
 * a racy read). */
uint64_t ordered_objects_out(int node, unsigned cls);
/* The node's ordered spans in use, their bytes, and the OS pages released
 * inside them (statistics; racy reads). */
void ordered_stats(int node, size_t *spans, size_t *bytes, size_t *released);

#endif
