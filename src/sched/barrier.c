/* barrier.c — the driver's barrier coordinator (under loop_mu): gang
 * admission of barrier stages (all N tasks in one pass, only when N slots
 * are free at once), their barrier()/all_gather() steps matched by sequence
 * number, and the all-or-nothing restart of a stage attempt when anything
 * goes wrong. The protocol is described in docs/barrier.md.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exec/barrier_area.h"
#include "net/net.h"
#include "sched/sched.h"

/* Gathered payloads go back in frames of at most this many bytes. */
#define REPLY_CHUNK (4u << 20)
/* A step's payload buffers above this size are freed after the step. */
#define KEEP_PAYLOAD (1u << 20)

struct pt__barrier {
  int64_t n;                /* tasks of the stage */
  /* The attempt in flight. */
  int launched;             /* its tasks are out */
  int64_t attempt;          /* the stage attempt they run under */
  int64_t *task_ids;        /* [n] */
  int32_t *execs;           /* [n] executor index of each partition's task */
  uint8_t *ended;           /* [n] returned with output */
  char *area;               /* owned: its shared area file (all tasks on one host), or NULL */
  /* Its current step. */
  int64_t seq;
  int kind;                 /* Protium__BarrierKind of the first arrival; 0 = none */
  int64_t kind_from;        /* the partition that made that call */
  uint8_t *arrived;         /* [n] whole payload received */
  int64_t n_arrived;
  pt_buf *payloads;         /* [n] */
  int64_t *sizes;           /* [n] announced payload sizes */
  uint64_t step_start_ns;   /* first arrival */
  /* Admission. */
  int waiting;
  uint64_t wait_since_ns;
  /* History. */
  int64_t failures;         /* attempts that failed */
  pt_buf causes;            /* "attempt 0: ...; attempt 1: ..." (text, no NUL) */
};

pt__barrier *pt__barrier_new(int64_t n) {
  pt__barrier *b = pt__calloc(1, sizeof *b);
  if (!b) return NULL;
  size_t k = (size_t)(n > 0 ? n : 1);
  b->n = n;
  b->task_ids = pt__calloc(k, sizeof *b->task_ids);
  b->execs = pt__calloc(k, sizeof *b->execs);
  b->ended = pt__calloc(k, 1);
  b->arrived = pt__calloc(k, 1);
  b->payloads = pt__calloc(k, sizeof *b->payloads);
  b->sizes = pt__calloc(k, sizeof *b->sizes);
  if (!b->task_ids || !b->execs || !b->ended || !b->arrived || !b->payloads || !b->sizes) {
    pt__barrier_free(b);
    return NULL;
  }
  return b;
}

void pt__barrier_free(pt__barrier *b) {
  if (!b) return;
  for (int64_t p = 0; b->payloads && p < b->n; p++) pt_buf_free(&b->payloads[p]);
  pt__free(b->payloads);
  pt__free(b->sizes);
  pt__free(b->arrived);
  pt__free(b->ended);
  pt__free(b->execs);
  pt__free(b->task_ids);
  pt_buf_free(&b->causes);
  pt__free(b->area);
  pt__free(b);
}

/* The attempt's shared area goes with it: the next attempt gets a new one,
 * so no count or flag left by this one can be read as the next one's. */
static void drop_area(pt__sched_stage *st) {
  pt__barrier *b = st->bar;
  if (b->area) unlink(b->area);
  pt__free(b->area);
  b->area = NULL;
  st->barrier_area = NULL;
}

static void step_reset(pt__barrier *b) {
  b->kind = 0;
  b->kind_from = -1;
  b->n_arrived = 0;
  b->step_start_ns = 0;
  memset(b->arrived, 0, (size_t)(b->n > 0 ? b->n : 1));
  for (int64_t p = 0; p < b->n; p++) {
    b->sizes[p] = 0;
    if (b->payloads[p].cap > KEEP_PAYLOAD) pt_buf_free(&b->payloads[p]);
    b->payloads[p].len = 0;
  }
}

static const char *kind_name(int kind) {
  return kind == PROTIUM__BARRIER_KIND__BARRIER_KIND_ALL_GATHER ? "all_gather()" : "barrier()";
}

/* ------------------------------------------------------------------------ */
/* Stopping an attempt */

/* Throws away everything the attempt produced: a barrier stage's output
 * counts only when one attempt produced all of it. */
static void discard_output(pt__sched_stage *st) {
  for (int64_t p = 0; p < st->partitions; p++) {
    st->done[p] = 0;
    st->queued[p] = 0;
    st->running[p] = 0;
    if (st->outputs) {
      Protium__ShuffleOutput *o = &st->outputs[p];
      if (o->path != (char *)protobuf_c_empty_string) pt__free(o->path);
      pt__free(o->segment_offsets);
      pt__free(o->segment_rows);
      protium__shuffle_output__init(o);
      st->output_exec[p] = 0;
    }
    if (st->paths && st->paths[p]) {
      unlink(st->paths[p]); /* a result or write_ipc attempt file: never committed */
      pt__free(st->paths[p]);
      st->paths[p] = NULL;
    }
    if (st->rows) st->rows[p] = 0;
    if (st->counts) st->counts[p] = 0;
  }
  st->n_done = 0;
  st->n_pending = 0;
  st->pend_head = 0;
}

/* Tells the executors to stop every task of st's attempt (their barrier
 * calls and emits fail at once), orphans those tasks (their statuses will
 * be ignored; their slots stay taken until they return, or their executor
 * is killed after barrier.stop_grace). */
static void abort_tasks(pt__driver *d, pt__sched_stage *st, const char *why) {
  uint64_t now = uv_hrtime();
  int64_t *ids = pt__malloc((size_t)(st->partitions > 0 ? st->partitions : 1) * sizeof *ids);
  for (int32_t e = 0; e < d->n_execs; e++) {
    pt__executor *ex = d->execs[e];
    size_t n = 0;
    for (int32_t i = ex->head; i >= 0; i = d->tasks[i].next) {
      pt__sched_task *t = &d->tasks[i];
      if (t->stage != st) continue;
      pt__stats_on_orphan(t); /* stopped, its status to be ignored */
      t->stage = NULL;
      t->stop_ns = now ? now : 1;
      if (ids && n < (size_t)st->partitions) ids[n++] = t->id;
    }
    if (n == 0 || ex->state != PT__EXEC_READY) continue;
    Protium__BarrierAbort a = PROTIUM__BARRIER_ABORT__INIT;
    a.n_task_ids = n;
    a.task_ids = ids;
    a.error = (char *)why;
    (void)pt__cluster_send(ex, PT__MSG_BARRIER_ABORT, &a.base);
  }
  pt__free(ids);
}

/* The whole attempt failed (cause): stop it, discard its output, and run
 * the stage again, or fail the job after barrier.max_attempts. */
static void stop_attempt(pt__driver *d, pt__sched_stage *st, int code, const char *cause) {
  pt__barrier *b = st->bar;
  pt__job *job = st->job;
  if (job->state != PT__JOB_RUNNING) return;
  char why[PT_ERROR_SIZE];
  snprintf(why, sizeof why, "barrier stage %lld attempt %lld stopped: %.900s", (long long)st->id,
           (long long)(st->attempt < 0 ? 0 : st->attempt), cause);
  if (b->launched) abort_tasks(d, st, why);
  b->launched = 0;
  drop_area(st);
  memset(b->ended, 0, (size_t)(b->n > 0 ? b->n : 1));
  step_reset(b);
  b->seq = 0;
  discard_output(st);
  /* The first cause gets the most room: it is the failure that started it
   * all (a Python rank's exception with its traceback), the others are
   * often its echo. */
  (void)pt__buf_printf(&b->causes, "%sattempt %lld: %.*s", b->failures ? "; " : "",
                       (long long)(st->attempt < 0 ? 0 : st->attempt),
                       b->failures ? 300 : 700, cause);
  b->failures++;
  pt__free(st->def);
  st->def = NULL;
  if (b->failures >= (st->max_attempts > 0 ? st->max_attempts : d->opts.barrier_max_attempts)) {
    char msg[PT_ERROR_SIZE];
    snprintf(msg, sizeof msg, "job %lld failed: barrier stage %lld failed %lld times: %.*s",
             (long long)job->id, (long long)st->id, (long long)b->failures,
             (int)(b->causes.len < 900 ? b->causes.len : 900), b->causes.data);
    pt__sched_job_fail(d, job, code, msg);
    return;
  }
  pt__sched_stage_submit(d, st);
  d->need_schedule = 1;
}

void pt__barrier_job_ended(pt__driver *d, pt__sched_stage *st) {
  pt__barrier *b = st->bar;
  if (!b->launched) return;
  char why[128];
  snprintf(why, sizeof why, "job %lld ended", (long long)st->job->id);
  abort_tasks(d, st, why);
  b->launched = 0;
  drop_area(st);
}

void pt__barrier_task_failed(pt__driver *d, pt__sched_stage *st, int64_t p, const char *cause,
                             int code) {
  pt__barrier *b = st->bar;
  if (st->job->state != PT__JOB_RUNNING) return;
  if (!b->launched) {
    /* Waiting for slots when its input went: wait for the input again. */
    st->state = PT__STAGE_WAITING;
    discard_output(st);
    pt__free(st->def);
    st->def = NULL;
    b->waiting = 0;
    return;
  }
  char text[PT_ERROR_SIZE];
  if (p >= 0) snprintf(text, sizeof text, "partition %lld failed: %.900s", (long long)p,
                       cause && *cause ? cause : "unknown error");
  else snprintf(text, sizeof text, "%.900s", cause ? cause : "input lost");
  stop_attempt(d, st, code, text);
}

void pt__barrier_task_lost(pt__driver *d, const pt__sched_task *t, const char *cause, int code) {
  pt__sched_stage *st = t->stage;
  pt__barrier *b = st->bar;
  if (!b->launched || t->stage_attempt != b->attempt || st->job->state != PT__JOB_RUNNING)
    return; /* of an attempt already stopped */
  char text[PT_ERROR_SIZE];
  snprintf(text, sizeof text, "partition %lld lost: %.900s", (long long)t->partition, cause);
  stop_attempt(d, st, code, text);
}

void pt__barrier_output_lost(pt__driver *d, pt__sched_stage *st, const char *cause,
                             int only_forget) {
  if (only_forget) {
    discard_output(st);
    return;
  }
  char text[PT_ERROR_SIZE];
  snprintf(text, sizeof text, "its output was lost after it ended: %.900s", cause);
  stop_attempt(d, st, PT_EIO, text);
}

/* Partitions in `set` (1 = in) as "1, 4, 7", at most 16 named. */
static void list_partitions(char *out, size_t cap, const uint8_t *set, int64_t n, int want) {
  size_t len = 0;
  int named = 0;
  out[0] = '\0';
  for (int64_t p = 0; p < n && len + 24 < cap; p++) {
    if ((set[p] != 0) != want) continue;
    if (named == 16) {
      len += (size_t)snprintf(out + len, cap - len, ", ...");
      break;
    }
    len += (size_t)snprintf(out + len, cap - len, "%s%lld", named ? ", " : "", (long long)p);
    named++;
  }
}

int pt__barrier_task_succeeded(pt__driver *d, pt__sched_stage *st, int64_t p) {
  pt__barrier *b = st->bar;
  b->ended[p] = 1;
  if (b->launched && b->n_arrived > 0 && !b->arrived[p]) {
    char waiting[256], text[512];
    list_partitions(waiting, sizeof waiting, b->arrived, b->n, 1);
    snprintf(text, sizeof text,
             "partition %lld returned without calling %s step %lld, in which partitions %s "
             "wait; every task must make the same calls", (long long)p, kind_name(b->kind),
             (long long)b->seq, waiting);
    stop_attempt(d, st, PT_ESTATE, text);
    return 0;
  }
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Steps */

static void reply_error(pt__executor *ex, int64_t task_id, int64_t seq, int code,
                        const char *why) {
  Protium__BarrierReply r = PROTIUM__BARRIER_REPLY__INIT;
  r.task_id = task_id;
  r.seq = seq;
  r.error = (char *)why;
  r.error_code = code;
  (void)pt__cluster_send(ex, PT__MSG_BARRIER_REPLY, &r.base);
}

/* Every task arrived: each gets every payload, in partition order. */
static void complete_step(pt__driver *d, pt__sched_stage *st) {
  pt__barrier *b = st->bar;
  int gather = b->kind == PROTIUM__BARRIER_KIND__BARRIER_KIND_ALL_GATHER;
  size_t total = 0;
  for (int64_t p = 0; p < b->n; p++) total += b->payloads[p].len;
  /* One contiguous copy when the payloads are several: frames take slices. */
  uint8_t *all = NULL;
  int own_all = 0;
  if (gather && total > 0) {
    if (b->n == 1) {
      all = (uint8_t *)b->payloads[0].data;
    } else {
      all = pt__malloc(total);
      if (!all) {
        stop_attempt(d, st, PT_ENOMEM, "driver out of memory for all_gather() payloads");
        return;
      }
      own_all = 1;
      size_t off = 0;
      for (int64_t p = 0; p < b->n; p++) {
        if (b->payloads[p].len) memcpy(all + off, b->payloads[p].data, b->payloads[p].len);
        off += b->payloads[p].len;
      }
    }
  }
  for (int64_t q = 0; q < b->n; q++) {
    pt__executor *ex = d->execs[b->execs[q]];
    if (ex->state != PT__EXEC_READY) continue; /* its loss stops the attempt */
    Protium__BarrierReply r = PROTIUM__BARRIER_REPLY__INIT;
    r.task_id = b->task_ids[q];
    r.seq = b->seq;
    if (gather) {
      r.n_sizes = (size_t)b->n;
      r.sizes = b->sizes;
    }
    size_t off = 0;
    do {
      size_t len = total - off < REPLY_CHUNK ? total - off : REPLY_CHUNK;
      r.offset = (int64_t)off;
      r.data.data = all ? all + off : NULL;
      r.data.len = len;
      if (pt__cluster_send(ex, PT__MSG_BARRIER_REPLY, &r.base) != PT_OK) {
        char why[160];
        snprintf(why, sizeof why, "executor %lld lost: out of memory for a barrier reply",
                 (long long)ex->id);
        if (own_all) pt__free(all);
        pt__cluster_lose(ex, why, 0, NULL); /* stops the attempt */
        return;
      }
      r.n_sizes = 0; /* sizes ride in the first frame only */
      r.sizes = NULL;
      off += len;
    } while (off < total);
  }
  if (own_all) pt__free(all);
  b->seq++;
  step_reset(b);
}

void pt__barrier_on_call(pt__driver *d, pt__executor *ex, const Protium__BarrierCall *c) {
  int32_t i = (int32_t)(c->task_id & PT__TASK_INDEX_MASK);
  if (c->task_id <= 0 || i >= d->cap_tasks || d->tasks[i].id != c->task_id ||
      d->tasks[i].exec != ex->index) {
    reply_error(ex, c->task_id, c->seq, PT_ECANCELED,
                "the driver has no such task running (its stage attempt was stopped)");
    return;
  }
  pt__sched_task *t = &d->tasks[i];
  pt__sched_stage *st = t->stage;
  if (!st || !st->bar || !st->bar->launched || t->stage_attempt != st->bar->attempt ||
      st->job->state != PT__JOB_RUNNING) {
    reply_error(ex, c->task_id, c->seq, st && !st->bar ? PT_ESTATE : PT_ECANCELED,
                st && !st->bar ? "not a barrier stage" : "the barrier stage attempt was stopped");
    return;
  }
  pt__barrier *b = st->bar;
  int64_t p = t->partition;
  char text[512];
  /* With a shared area, barrier() steps never come here: the next call
   * the driver sees may be several steps on. */
  if (b->area && b->kind == 0 && c->seq > b->seq) b->seq = c->seq;
  if (c->seq != b->seq || b->arrived[p]) {
    snprintf(text, sizeof text, "partition %lld called step %lld while the stage is at step %lld",
             (long long)p, (long long)c->seq, (long long)b->seq);
    stop_attempt(d, st, PT_EINVAL, text);
    return;
  }
  if (b->kind == 0) {
    b->kind = c->kind;
    b->kind_from = p;
  } else if ((int)c->kind != b->kind) {
    snprintf(text, sizeof text,
             "step %lld: partition %lld called %s but partition %lld called %s; every task must "
             "make the same calls in the same order", (long long)b->seq, (long long)p,
             kind_name(c->kind), (long long)b->kind_from, kind_name(b->kind));
    stop_attempt(d, st, PT_EINVAL, text);
    return;
  }
  pt_buf *pl = &b->payloads[p];
  if (c->offset == 0 && pl->len == 0) b->sizes[p] = c->size;
  if (c->size < 0 || c->size != b->sizes[p] || c->offset != (int64_t)pl->len ||
      (int64_t)c->data.len > c->size - c->offset) {
    snprintf(text, sizeof text, "partition %lld sent a malformed %s payload", (long long)p,
             kind_name(c->kind));
    stop_attempt(d, st, PT_EINVAL, text);
    return;
  }
  if (c->data.len > 0) {
    if (pl->len == 0 && pt__buf_reserve(pl, (size_t)c->size) != PT_OK) {
      stop_attempt(d, st, PT_ENOMEM, "driver out of memory for all_gather() payloads");
      return;
    }
    if (pt__buf_append(pl, c->data.data, c->data.len) != PT_OK) {
      stop_attempt(d, st, PT_ENOMEM, "driver out of memory for all_gather() payloads");
      return;
    }
  }
  if ((int64_t)pl->len < c->size) return; /* more frames to come */
  b->arrived[p] = 1;
  if (b->n_arrived++ == 0) b->step_start_ns = uv_hrtime();
  for (int64_t q = 0; q < b->n; q++)
    if (b->ended[q] && !b->arrived[q]) {
      snprintf(text, sizeof text, "partition %lld returned without calling %s step %lld, in "
               "which others wait; every task must make the same calls", (long long)q,
               kind_name(b->kind), (long long)b->seq);
      stop_attempt(d, st, PT_ESTATE, text);
      return;
    }
  if (b->n_arrived == b->n) complete_step(d, st);
}

void pt__barrier_on_fault(pt__driver *d, pt__executor *ex, const Protium__BarrierFault *f) {
  int32_t i = (int32_t)(f->task_id & PT__TASK_INDEX_MASK);
  if (f->task_id <= 0 || i >= d->cap_tasks || d->tasks[i].id != f->task_id ||
      d->tasks[i].exec != ex->index)
    return; /* of an attempt already stopped: its tasks were told */
  pt__sched_task *t = &d->tasks[i];
  pt__sched_stage *st = t->stage;
  if (!st || !st->bar || !st->bar->launched || !st->bar->area ||
      t->stage_attempt != st->bar->attempt || st->job->state != PT__JOB_RUNNING)
    return;
  int code = f->error_code > PT_OK && f->error_code <= PT_EINTERNAL ? f->error_code : PT_EINVAL;
  stop_attempt(d, st, code, f->error && f->error[0] ? f->error : "a task's barrier area failed");
}

/* ------------------------------------------------------------------------ */
/* Admission */

int pt__barrier_check_job(pt__driver *d, pt__job *job) {
  int64_t total = (int64_t)d->opts.n_executors * d->opts.slots;
  for (int64_t i = 0; i < job->n_stages; i++) {
    pt__sched_stage *st = job->stages[i];
    if (!st->bar || st->partitions <= total) continue;
    char msg[PT_ERROR_SIZE];
    snprintf(msg, sizeof msg,
             "job %lld failed: barrier stage %lld needs %lld slots at once but the cluster has "
             "%lld (%d executors x %d slots); lower the number of partitions (pt_repartition) "
             "or add executors (local[N], executor.slots)", (long long)job->id,
             (long long)st->id, (long long)st->partitions, (long long)total,
             d->opts.n_executors, d->opts.slots);
    pt__sched_job_fail(d, job, PT_EINVAL, msg);
    return 0;
  }
  return 1;
}

/* A TCP port free now (the kernel's pick for port 0), not in used[0..n). */
static int32_t free_port(const int32_t *used, int64_t n) {
  for (int tries = 0; tries < 16; tries++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    socklen_t len = sizeof a;
    int32_t port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
      port = ntohs(a.sin_port);
    close(fd);
    int dup = 0;
    for (int64_t k = 0; k < n; k++) dup |= used[k] == port;
    if (port > 0 && !dup) return port;
  }
  return 0;
}

static int free_slots(pt__executor *ex) {
  if (ex->state != PT__EXEC_READY) return 0;
  return ex->n_inflight < ex->slots ? ex->slots - ex->n_inflight : 0;
}

/* When every task of the attempt about to launch runs on one host, makes
 * its shared area beside the stage's checkpoint directory (removed with the
 * job's). Without one (another host, no file) the calls go to the driver. */
static void make_area(pt__driver *d, pt__sched_stage *st) {
  pt__barrier *b = st->bar;
  drop_area(st);
  if (!d->opts.barrier_shared_memory || !st->checkpoint_dir || b->n < 1) return;
  const char *host = d->execs[b->execs[0]]->host;
  for (int64_t p = 1; p < b->n; p++) {
    const char *h = d->execs[b->execs[p]]->host;
    if (!host || !h || strcmp(host, h) != 0) return;
  }
  size_t len = strlen(st->checkpoint_dir) + 48;
  char *path = pt__malloc(len);
  if (!path) return;
  snprintf(path, len, "%s", st->checkpoint_dir);
  char *slash = strrchr(path, '/');
  pt_error err = {0};
  if (slash) *slash = '\0';
  int rc = slash ? pt__mkdirs(path, &err) : PT_EINVAL;
  snprintf(path, len, "%s-attempt-%lld.barrier", st->checkpoint_dir, (long long)st->attempt);
  if (rc == PT_OK) unlink(path); /* a leftover of a crashed driver: never reused */
  if (rc == PT_OK)
    rc = pt__area_create(path, st->id, st->attempt, b->n, d->opts.barrier_timeout_ms, &err);
  if (rc != PT_OK) {
    pt__free(path);
    return;
  }
  b->area = path;
  st->barrier_area = path;
}

/* Launches every task of st, now, on free slots spread over executors
 * (or where b->execs says, when placed: a resource profile's placement). */
static void launch_attempt(pt__driver *d, pt__sched_stage *st, uint64_t now, int placed) {
  pt__barrier *b = st->bar;
  pt__job *job = st->job;
  int64_t n = b->n;
  pt_error err = {0};
  st->attempt++;
  Protium__TaskInfo *infos = pt__calloc((size_t)n, sizeof *infos);
  Protium__TaskInfo **ptrs = pt__calloc((size_t)n, sizeof *ptrs);
  int32_t *ports = pt__calloc((size_t)n, sizeof *ports);
  int32_t *left = pt__calloc((size_t)d->n_execs, sizeof *left);
  if (!infos || !ptrs || !ports || !left) goto oom;
  for (int32_t e = 0; e < d->n_execs; e++) left[e] = free_slots(d->execs[e]);
  /* One task per executor in turn: peers spread over processes (and, with
   * several hosts, machines) as evenly as the free slots allow. */
  for (int64_t p = placed ? n : 0, e = d->rr % (d->n_execs ? d->n_execs : 1); p < n;
       e = (e + 1) % d->n_execs) {
    if (left[e] == 0) continue;
    left[e]--;
    b->execs[p++] = (int32_t)e;
  }
  make_area(d, st);
  if (pt__plan_encode_stage(st, &err) != PT_OK) {
    char msg[PT_ERROR_SIZE];
    snprintf(msg, sizeof msg, "job %lld failed: stage %lld: %.900s", (long long)job->id,
             (long long)st->id, err.message);
    pt__sched_job_fail(d, job, err.code, msg);
    goto free_all;
  }
  for (int64_t p = 0; p < n; p++) {
    pt__executor *ex = d->execs[b->execs[p]];
    protium__task_info__init(&infos[p]);
    infos[p].partition = p;
    infos[p].host = ex->host ? ex->host : (char *)"";
    infos[p].executor_id = ex->id;
    infos[p].pid = ex->pid;
    ports[p] = free_port(ports, p);
    infos[p].port = ports[p];
    ptrs[p] = &infos[p];
  }
  for (int64_t p = 0; p < n; p++) {
    if (pt__sched_launch(d, d->execs[b->execs[p]], st, p, now, ptrs, (size_t)n,
                         &b->task_ids[p]) != PT_OK)
      goto oom;
    st->queued[p] = 0;
  }
  st->n_pending = 0;
  st->pend_head = 0;
  b->launched = 1;
  b->attempt = st->attempt;
  b->waiting = 0;
  b->seq = 0;
  memset(b->ended, 0, (size_t)(n > 0 ? n : 1));
  step_reset(b);
  goto free_all;
oom:
  {
    char msg[128];
    snprintf(msg, sizeof msg, "job %lld failed: driver out of memory", (long long)job->id);
    pt__sched_job_fail(d, job, PT_ENOMEM, msg);
  }
free_all:
  pt__free(infos);
  pt__free(ptrs);
  pt__free(ports);
  pt__free(left);
}

int pt__barrier_admit(pt__driver *d, uint64_t now) {
  int hold = 0;
  for (pt__job *job = d->active, *next; job; job = next) {
    next = job->next;
    for (int64_t i = 0; i < job->n_stages && job->state == PT__JOB_RUNNING; i++) {
      pt__sched_stage *st = job->stages[i];
      pt__barrier *b = st->bar;
      if (!b || st->state != PT__STAGE_RUNNING || b->launched || st->n_pending < st->partitions ||
          st->partitions == 0)
        continue;
      int64_t free = 0;
      for (int32_t e = 0; e < d->n_execs; e++) free += free_slots(d->execs[e]);
      int placed = st->profile != NULL;
      if (placed && !pt__res_barrier_place(d, st, b->execs)) free = 0;
      if (free < b->n) {
        if (!b->waiting) {
          b->waiting = 1;
          b->wait_since_ns = now;
        }
        hold = 1;
        continue;
      }
      launch_attempt(d, st, now, placed);
    }
  }
  return hold;
}

/* ------------------------------------------------------------------------ */
/* Time */

static void fmt_ms(char *out, size_t cap, int64_t ms) {
  if (ms % 1000 == 0) snprintf(out, cap, "%llds", (long long)(ms / 1000));
  else snprintf(out, cap, "%lldms", (long long)ms);
}

/* What holds the slots a waiting barrier stage needs, for its error. */
static void describe_holders(pt__driver *d, char *out, size_t cap) {
  struct { int64_t job, stage, n; } held[8];
  int n_held = 0;
  int64_t starting = 0;
  for (int32_t e = 0; e < d->n_execs; e++) {
    pt__executor *ex = d->execs[e];
    if (ex->state == PT__EXEC_STARTING) starting += d->opts.slots;
    if (ex->state != PT__EXEC_READY) continue;
    int32_t i = ex->head;
    for (int32_t k = 0; k < ex->slots && i >= 0; k++, i = d->tasks[i].next) {
      pt__sched_task *t = &d->tasks[i];
      int64_t job = t->job_id, stage = t->stage ? t->stage->id : -1;
      int h = 0;
      while (h < n_held && (held[h].job != job || held[h].stage != stage)) h++;
      if (h == n_held && n_held < 8) held[n_held++] = (typeof(held[0])){job, stage, 0};
      if (h < n_held) held[h].n++;
    }
  }
  size_t len = 0;
  out[0] = '\0';
  for (int h = 0; h < n_held && len + 80 < cap; h++) {
    if (held[h].stage >= 0)
      len += (size_t)snprintf(out + len, cap - len, "%sjob %lld stage %lld (%lld tasks)",
                              h ? ", " : "", (long long)held[h].job, (long long)held[h].stage,
                              (long long)held[h].n);
    else
      len += (size_t)snprintf(out + len, cap - len, "%sjob %lld (%lld ending tasks)",
                              h ? ", " : "", (long long)held[h].job, (long long)held[h].n);
  }
  if (starting && len + 60 < cap)
    snprintf(out + len, cap - len, "%s%lld slots of executors still starting", len ? ", " : "",
             (long long)starting);
  if (!out[0]) snprintf(out, cap, "nothing (executors lost)");
}

void pt__barrier_on_tick(pt__driver *d, uint64_t now) {
  uint64_t timeout = (uint64_t)d->opts.barrier_timeout_ms * 1000000u;
  uint64_t admission = (uint64_t)d->opts.barrier_admission_ms * 1000000u;
  for (pt__job *job = d->active, *next; job; job = next) {
    next = job->next;
    for (int64_t i = 0; i < job->n_stages && job->state == PT__JOB_RUNNING; i++) {
      pt__sched_stage *st = job->stages[i];
      pt__barrier *b = st->bar;
      if (!b) continue;
      char text[PT_ERROR_SIZE], missing[256], t[32];
      if (b->launched && b->n_arrived > 0 && now > b->step_start_ns &&
          now - b->step_start_ns > timeout) {
        list_partitions(missing, sizeof missing, b->arrived, b->n, 0);
        fmt_ms(t, sizeof t, d->opts.barrier_timeout_ms);
        snprintf(text, sizeof text,
                 "%s step %lld timed out after %s (barrier.timeout): partitions %s never "
                 "arrived", kind_name(b->kind), (long long)b->seq, t, missing);
        stop_attempt(d, st, PT_ETIMEDOUT, text);
      } else if (!b->launched && b->waiting && st->state == PT__STAGE_RUNNING &&
                 now > b->wait_since_ns && now - b->wait_since_ns > admission) {
        int64_t free = 0;
        for (int32_t e = 0; e < d->n_execs; e++) free += free_slots(d->execs[e]);
        describe_holders(d, missing, sizeof missing);
        fmt_ms(t, sizeof t, d->opts.barrier_admission_ms);
        if (st->profile && free >= b->n) {
          /* The slots were there; the resources were not. */
          char want[300];
          pt__res_profile_text(st->profile, want, sizeof want);
          snprintf(text, sizeof text,
                   "job %lld failed: barrier stage %lld needs %lld tasks with %s each at "
                   "once; after waiting %s (barrier.admission_timeout) %lld slots were free "
                   "but not the resources for all of them, held by %s",
                   (long long)job->id, (long long)st->id, (long long)b->n, want, t,
                   (long long)free, missing);
        } else {
          snprintf(text, sizeof text,
                   "job %lld failed: barrier stage %lld needs %lld slots at once; after "
                   "waiting %s (barrier.admission_timeout) only %lld were free, the others "
                   "held by %s",
                   (long long)job->id, (long long)st->id, (long long)b->n, t,
                   (long long)free, missing);
        }
        pt__sched_job_fail(d, job, PT_ETIMEDOUT, text);
      }
    }
  }
  /* A stopped task that does not return in time goes with its executor:
   * a thread cannot be stopped from outside. */
  uint64_t grace = (uint64_t)d->opts.barrier_stop_grace_ms * 1000000u;
  for (int32_t e = 0; e < d->n_execs; e++) {
    pt__executor *ex = d->execs[e];
    if (ex->state != PT__EXEC_READY) continue;
    for (int32_t i = ex->head; i >= 0; i = d->tasks[i].next) {
      pt__sched_task *t = &d->tasks[i];
      if (!t->stop_ns || now < t->stop_ns || now - t->stop_ns <= grace) continue;
      char why[256], g[32];
      fmt_ms(g, sizeof g, d->opts.barrier_stop_grace_ms);
      snprintf(why, sizeof why, "executor %lld lost: killed because a task of a stopped barrier "
               "stage attempt did not return within %s (barrier.stop_grace)",
               (long long)ex->id, g);
      pt__cluster_lose(ex, why, 0, NULL);
      break;
    }
  }
}
