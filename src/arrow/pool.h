/* pool.h — a small process-wide pool of worker threads for the Arrow IPC
 * code, to compress, decompress and copy the buffers of record batches on
 * every core. Private to src/arrow.
 */
#ifndef PT_ARROW_POOL_H
#define PT_ARROW_POOL_H

#include <stdint.h>

/* One piece of work: item i of n. Must not fail in a way that needs the
 * pool: record errors in arg (see pt__pool_run). */
typedef void (*pt__pool_fn)(void *arg, int64_t i);

/* Runs fn(arg, i) for every i in [0, n), on the calling thread and the
 * pool's workers, and returns when all have returned. Items run in no
 * particular order and concurrently: fn must only write what belongs to
 * item i (or use atomics). Everything fn wrote is visible to the caller on
 * return. With n <= 1, or when no worker could be started (a failed
 * pthread_create, a single CPU, a child after fork before the pool is made
 * again) every item runs on the caller. The pool is created on the first
 * call that can use it (one worker per online CPU besides the caller), is
 * shared by concurrent callers and stays idle between calls; it needs no
 * allocation and never fails. */
void pt__pool_run(int64_t n, pt__pool_fn fn, void *arg);

/* Workers the pool has (0 before its first use or where none could start). */
int pt__pool_workers(void);
/* Threads a pt__pool_run spreads over (the workers and the caller), starting
 * the pool if it is not yet. */
int pt__pool_threads(void);

#endif /* PT_ARROW_POOL_H */
