/* exec.h — the executor side of the engine: the process main that serves a
 * driver over the control plane (executor.c), and the task runner that
 * applies a stage's operators to one partition (task.c, ops.c). The runner
 * is usable on its own, without a driver (tests do that).
 */
#ifndef PT_EXEC_H
#define PT_EXEC_H

#include "core/core.h"
#include "net/control.pb-c.h"
#include "net/tcp.h"
#include "net/tls.h"

/* A barrier stage task's call to the driver's coordinator (executor.c):
 * step seq of task_id, kind a Protium__BarrierKind, size bytes of data.
 * Blocks until every task of the attempt made the same call, then on PT_OK
 * *out (malloc'd, the caller's, free()) holds all payloads in partition
 * order and sizes[0..n) their lengths; out may be NULL for a barrier. */
typedef int (*pt__coord_call_fn)(void *arg, int64_t task_id, int64_t seq, int kind,
                                 const void *data, size_t size, void **out, size_t *sizes,
                                 int64_t n, pt_error *err);
/* PT_OK unless the driver stopped task_id's stage attempt (then
 * PT_ECANCELED and err says why). */
typedef int (*pt__coord_check_fn)(void *arg, int64_t task_id, pt_error *err);

/* Where a task's files go and who runs it. Strings are borrowed. */
typedef struct pt__exec_env {
  int64_t executor_id;
  const char *local_dir;   /* shuffle outputs: <local_dir>/shuffle-<sid>-<p>-<a>.arrows */
  const char *session_dir; /* results: <session_dir>/results/<job>/part-<p>-<a>.arrows */
  const char *results_memory; /* ... or <results_memory>/<job>/... while it has room; NULL:
                               * no such directory */
  pt__coord_call_fn coord_call;   /* NULL without a driver (tests): barrier calls fail */
  pt__coord_check_fn coord_check; /* NULL: never stopped */
  void *coord_arg;
  /* net.transport = tcp: the session's secret, this executor's block
   * server ("HOST:PORT", NULL = none), and shuffle.fetch = remote (fetch
   * every map output not written by this executor over TCP). */
  const pt__secret *secret;
  pt__tls_ctx *tls; /* net.tls = on: for block fetches; else NULL */
  const char *block_address;
  int fetch_remote;
  /* Welcome.heartbeat_timeout_ms: a block server whose connect is not
   * answered this long is taken for gone (0 = the kernel's bound). */
  int64_t fetch_connect_timeout_ms;
  /* Welcome.results_stream: result partitions go to
   * <local_dir>/result-<stage>-<p>-<a>.arrows, which the driver fetches
   * from the block server, instead of the session directory. */
  int results_stream;
} pt__exec_env;

/* A stage definition ready to run tasks: a private copy of the StageDef with
 * its schemas decoded and its functions looked up. Reference-counted: queued
 * and running tasks hold a reference, so Cleanup can drop a stage at any
 * time. */
typedef struct pt__stage pt__stage;

/* Copies def. A function that is not registered or a schema that does not
 * decode is not an error here: every task of the stage then fails with that
 * message. On PT_OK the caller holds one reference on *out. */
int pt__stage_new(const Protium__StageDef *def, pt__stage **out, pt_error *err);
void pt__stage_ref(pt__stage *s);
void pt__stage_unref(pt__stage *s);
int64_t pt__stage_id(const pt__stage *s);
int64_t pt__stage_attempt(const pt__stage *s);

/* Runs one task (partition task->partition, attempt task->attempt) of stage
 * holding resources res[0..n_res) (pt_ctx_resources; borrowed for the
 * call) and fills *st, which the function initializes: task_id, state
 * (SUCCEEDED, FAILED or FETCH_FAILED), error, rows, count, output_path,
 * shuffle, failed_map_partition, duration_us. Strings and st->shuffle are
 * allocated here: free them with pt__task_status_clear. Never fails in any
 * other way: every problem becomes a failed status. */
void pt__task_run(const pt__exec_env *env, pt__stage *stage, const Protium__TaskLaunch *task,
                  Protium__Resource *const *res, size_t n_res, Protium__TaskStatus *st);
void pt__task_status_clear(Protium__TaskStatus *st);

/* The executor process: reads PROTIUM_EXECUTOR_* from the environment,
 * serves the driver until Shutdown (returns 0) or until the connection is
 * lost (returns 1). Called by a constructor of libprotium before main(). */
int pt__executor_main(void);

/* Writes the crash note (PT__CRASH_NOTE) for the task the calling thread
 * runs, if any and if this is the executor process (not a child forked by
 * the task): for a task that is about to end the process without a signal
 * (the Python package calls it from os._exit). Fatal signals on a task's
 * thread write it by themselves. */
void pt__executor_note_crash(void);

/* Referenced by the driver so that static linking keeps executor.o. */
extern const int pt__executor_linked;

#endif /* PT_EXEC_H */
