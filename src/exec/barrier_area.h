/* barrier_area.h — the shared area in which the tasks of one barrier stage
 * attempt on one host meet for barrier() without the driver: a small file
 * the driver creates per attempt and every executor maps. The driver stays
 * the judge of failures: its abort stops the area, and what only the area
 * sees (mismatched calls, a task that returned early, barrier.timeout) is
 * reported to it. The protocol is described in docs/barrier.md.
 */
#ifndef PT_BARRIER_AREA_H
#define PT_BARRIER_AREA_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* File layout (native byte order: the processes share one host and one
 * build). Offsets in bytes:
 *
 * | offset      | size | field                                            |
 * |-------------|------|--------------------------------------------------|
 * | 0           | 64   | pt__area_head: magic .. timeout_ms (fixed)       |
 * | 64          | 64   | pt__area_head: the step's shared state (atomics) |
 * | 128 + 64 p  | 64   | pt__area_slot of partition p, p < n              |
 *
 * A fresh file is all zeros past the fixed fields: no step done, nobody
 * arrived, not stopped. A file is made for one attempt and never reused. */
#define PT__AREA_MAGIC 0x31414250u /* "PBA1" */

typedef struct pt__area_head {
  uint32_t magic;
  uint32_t slot_size;         /* sizeof(pt__area_slot): a layout check */
  int64_t stage_id, attempt;  /* whose area this is */
  int64_t n;                  /* tasks of the attempt */
  int64_t timeout_ms;         /* barrier.timeout */
  char pad_[24];
  /* Shared state. `bell` is the futex word: bumped after every change a
   * waiter must see (a step completes, a stop, a task returned), so a wait
   * that began before the change returns at once. */
  _Alignas(64) _Atomic uint32_t bell;
  _Atomic uint32_t sleepers;  /* tasks in a futex wait (the ringer skips the wake at 0) */
  _Atomic uint32_t stopped;   /* 1: the driver stopped the attempt */
  _Atomic uint32_t arrived;   /* tasks arrived at the current step */
  _Atomic int64_t steps;      /* steps completed; the current step's number */
  _Atomic uint64_t first;     /* the current step's first call: (partition + 1) << 2 | kind */
  _Atomic int64_t first_ns;   /* CLOCK_MONOTONIC of the first call; 0 = none yet */
} pt__area_head;

typedef struct pt__area_slot {
  _Alignas(64) _Atomic int64_t calls; /* steps this partition arrived at */
  _Atomic int64_t ended;              /* 0; calls + 1 once its task returned */
} pt__area_slot;

/* A mapping of an area (an executor's, for one task). */
typedef struct pt__area {
  pt__area_head *head;        /* NULL: not mapped */
  pt__area_slot *slots;       /* [n] */
  size_t size;                /* bytes mapped */
  int64_t n;
  int64_t partition;          /* the mapping task's (set by the executor) */
} pt__area;

/* Bytes of an area for n tasks. */
size_t pt__area_size(int64_t n);

/* Creates the area file of one attempt at path (which must not exist: an
 * attempt's area is never reused) for n tasks. PT_EIO when the file cannot
 * be made, with err saying why. */
int pt__area_create(const char *path, int64_t stage_id, int64_t attempt, int64_t n,
                    int64_t timeout_ms, pt_error *err);

/* Maps the area at path, checking that it is the one of (stage_id,
 * attempt) for n tasks: PT_EFORMAT for any other or damaged file, PT_EIO
 * when it cannot be opened. On PT_OK the caller owns *out
 * (pt__area_close). */
int pt__area_open(const char *path, int64_t stage_id, int64_t attempt, int64_t n,
                  pt__area *out, pt_error *err);

/* Unmaps (a no-op on an unmapped area). */
void pt__area_close(pt__area *a);

/* The driver stopped the attempt: every waiter returns PT__AREA_STOPPED at
 * once, and so does every later step. */
void pt__area_stop(pt__area *a);

/* Partition p's task returned (successfully): a peer waiting at a step p
 * never made learns it at once. */
void pt__area_ended(pt__area *a, int64_t p);

/* pt__area_step's outcomes. */
enum {
  PT__AREA_DONE = 0,    /* every task arrived */
  PT__AREA_STOPPED = 1, /* the attempt was stopped: its executor has the driver's reason */
  PT__AREA_FAULT = 2,   /* something the driver must judge: *code and why say what */
};

/* Partition p arrives at step seq with call kind (a Protium__BarrierKind)
 * and waits (a futex wait) until every task arrived. Returns one of the
 * outcomes above; a FAULT fills *code and why[0..cap) with the cause,
 * worded as the driver words its own findings, and leaves the step
 * incomplete. */
int pt__area_step(pt__area *a, int64_t p, int64_t seq, int kind, int *code, char *why,
                  size_t cap);

#endif /* PT_BARRIER_AREA_H */
