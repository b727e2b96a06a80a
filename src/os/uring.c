/*
 * os/uring.c — releasing memory in batches: io_uring, or madvise.
 *
 * The scavenger gives memory back with one system call per batch: each run
 * of pages becomes an IORING_OP_MADVISE submission on a private ring, and
 * one io_uring_enter submits the batch and waits for its completions. Where
 * io_uring is unavailable — kernel.io_uring_disabled, a seccomp profile
 * (Docker's default blocks it), a kernel older than 5.6 without the madvise
 * opcode — the same batch goes through plain madvise calls, and the
 * statistics say so. Setting up the ring does not allocate (liburing maps
 * the rings itself). A batch belongs to one thread (the scavenger's).
 *
 * The ring keeps no descriptor in the program's table where the kernel
 * allows (Linux 5.18: the thread registers the ring, io_uring_enter names
 * it by that registration, and the descriptor is closed), and never one of
 * 0, 1 and 2 (a program started with stdin closed would find numaheap's
 * ring there: Python's test_posix did). So a daemon that closes every
 * descriptor cannot take a registered ring away, and a program that counts
 * on an fd it closed staying closed is not surprised. On older kernels the
 * ring's descriptor stays visible (3 or above); if the program closes it,
 * the next submission fails and the number is forgotten, not closed (it
 * may be the program's file by then), and madvise takes over.
 */

#include "os/os.h"
#include "os/fault.h"


#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int os_batch_init(struct os_batch *b, bool want_uring)
{
	memset(b, 0, sizeof *b);
	b->backend = OS_BACKEND_MADVISE;
	if (!want_uring)
		return b->backend;
	if (nh_fault("io_uring"))
		return b->backend;
	/* One page a ring, kept for good (a child after fork forgets it). */
	b->ring = os_map((sizeof(struct io_uring) + os_page_size() - 1) & ~(os_page_size() - 1), 0);
	if (!b->ring)
		return b->backend;
	if (io_uring_queue_init(OS_BATCH_MAX, b->ring, 0) != 0)
		return b->backend;
	if (io_uring_register_ring_fd(b->ring) == 1) {
		/* Submissions go by the registration (IORING_ENTER_REGISTERED_RING),
		 * which holds the ring: the descriptor is not needed. */
		os_close(b->ring->ring_fd);
		b->ring->ring_fd = -1;
	} else if (b->ring->ring_fd <= 2) {
		int fd = fcntl(b->ring->ring_fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			io_uring_queue_exit(b->ring);
			return b->backend;
		}
		os_close(b->ring->ring_fd);
		b->ring->ring_fd = b->ring->enter_ring_fd = fd;
	}
	b->backend = OS_BACKEND_URING;
	return b->backend;
}

void os_batch_fini(struct os_batch *b)
{
	if (b->backend == OS_BACKEND_URING)
		io_uring_queue_exit(b->ring);
	if (b->ring)
		os_unmap(b->ring, (sizeof(struct io_uring) + os_page_size() - 1) & ~(os_page_size() - 1));
	b->ring = NULL;
	b->backend = OS_BACKEND_MADVISE;
	b->n = 0;
}

/* In a child after fork: the ring's memory is shared with the parent's, so
 * the child must not touch it; dropping the fd leaves the parent's intact. */
void os_batch_forget(struct os_batch *b)
{
	if (b->backend == OS_BACKEND_URING && b->ring->ring_fd >= 0)
		os_close(b->ring->ring_fd); /* a direct system call: no cancellation point in a fork handler */
	b->backend = OS_BACKEND_MADVISE;
	b->n = 0;
}

static void submit_madvise(struct os_batch *b, enum os_release_mode mode, unsigned from)
{
	for (unsigned i = from; i < b->n; i++)
		b->op[i].res = nh_fault("madvise") ? -ENOMEM : os_release(b->op[i].p, b->op[i].len, mode);
	b->syscalls += b->n - from;
}

unsigned os_batch_submit(struct os_batch *b, enum os_release_mode mode)
{
	if (b->n == 0)
		return 0;
	if (b->backend == OS_BACKEND_URING) {
		int advice = mode == RELEASE_FREE ? MADV_FREE : MADV_DONTNEED;
		for (unsigned i = 0; i < b->n; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(b->ring);
			io_uring_prep_madvise(sqe, b->op[i].p, (off_t)b->op[i].len, advice);
			io_uring_sqe_set_data64(sqe, i);
			b->op[i].res = 1; /* not completed */
		}
		NH_KSTAT_INC(io_uring_enter);
		b->syscalls++;
		b->submissions += b->n;
		int r = io_uring_submit_and_wait(b->ring, b->n);
		unsigned done = 0;
		struct io_uring_cqe *cqe;
		while (done < b->n && io_uring_peek_cqe(b->ring, &cqe) == 0) {
			uint64_t i = io_uring_cqe_get_data64(cqe);
			if (i < b->n)
				b->op[i].res = cqe->res;
			io_uring_cqe_seen(b->ring, cqe);
			done++;
		}
		bool unsupported = r < 0;
		if (r == -EBADF || r == -EOPNOTSUPP || r == -ENXIO)
			b->ring->ring_fd = -1; /* not our ring (the program closed it): not ours to close */
		for (unsigned i = 0; i < b->n; i++)
			if (b->op[i].res == -EINVAL || b->op[i].res == -EOPNOTSUPP || b->op[i].res == 1)
				unsupported = true;
		if (unsupported) {
			/* No madvise opcode (or a broken ring): madvise from now on,
			 * this batch's ranges too (fini empties the batch). */
			unsigned n = b->n;
			os_batch_fini(b);
			b->n = n;
			submit_madvise(b, mode, 0);
		}
	} else {
		submit_madvise(b, mode, 0);
	}
	unsigned ok = 0;
	for (unsigned i = 0; i < b->n; i++)
		ok += b->op[i].res == 0;
	return ok;
}
