/* scheduler.c — the DAG scheduler (under the driver's loop_mu): stages become
 * runnable when their parent's shuffle output is complete; partitions are
 * launched in batches onto executors with free queue room; failed attempts
 * are retried alone up to task.max_failures; lost map output (executor loss,
 * fetch failure) resubmits only the lost map partitions, then the reducers
 * (lineage). Per-task work is kept to a pool slot and a few bytes of frame.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net.h"
#include "sched/sched.h"

#define TASK_INDEX_BITS PT__TASK_INDEX_BITS
#define TASK_INDEX_MASK PT__TASK_INDEX_MASK

static void stage_start(pt__driver *d, pt__sched_stage *st);
static void job_fail(pt__driver *d, pt__job *job, int code, const char *fmt, ...)
    PT_PRINTF(4, 5);

/* ------------------------------------------------------------------------ */
/* Task pool and executor lists */

static int32_t task_alloc(pt__driver *d) {
  if (d->free_task < 0) {
    int32_t cap = d->cap_tasks ? d->cap_tasks * 2 : 1024;
    if (cap > TASK_INDEX_MASK) return -1;
    pt__sched_task *p = pt__realloc(d->tasks, (size_t)cap * sizeof *p);
    if (!p) return -1;
    d->tasks = p;
    for (int32_t i = cap - 1; i >= d->cap_tasks; i--) {
      p[i].id = 0;
      p[i].next = d->free_task;
      d->free_task = i;
    }
    d->cap_tasks = cap;
  }
  int32_t i = d->free_task;
  d->free_task = d->tasks[i].next;
  return i;
}

static void task_free(pt__driver *d, int32_t i) {
  pt__sched_task *t = &d->tasks[i];
  if (t->grant) {
    pt__res_release(d->execs[t->exec]->res, t->grant);
    t->grant = NULL;
  }
  if (t->cpus > 0) {
    pt__executor *ex = d->execs[t->exec];
    ex->units -= t->cpus;
    ex->n_multi -= t->cpus > 1;
    t->cpus = 0;
  }
  d->tasks[i].id = 0;
  d->tasks[i].next = d->free_task;
  d->free_task = i;
}

/* Marks the first `slots` tasks of the list as started: the executor runs
 * its queue in order, so a queued task starts when one ahead of it ends. */
static void exec_mark_started(pt__driver *d, pt__executor *ex, uint64_t now) {
  int32_t i = ex->head;
  for (int32_t k = 0; k < ex->slots && i >= 0; k++, i = d->tasks[i].next)
    if (!d->tasks[i].start_ns) d->tasks[i].start_ns = now;
}

static void exec_unlink(pt__driver *d, pt__executor *ex, int32_t i) {
  pt__sched_task *t = &d->tasks[i];
  if (t->prev >= 0) d->tasks[t->prev].next = t->next;
  else ex->head = t->next;
  if (t->next >= 0) d->tasks[t->next].prev = t->prev;
  else ex->tail = t->prev;
  ex->n_inflight--;
}

static void exec_link(pt__driver *d, pt__executor *ex, int32_t i) {
  pt__sched_task *t = &d->tasks[i];
  t->prev = ex->tail;
  t->next = -1;
  if (ex->tail >= 0) d->tasks[ex->tail].next = i;
  else ex->head = i;
  ex->tail = i;
  ex->n_inflight++;
}

/* ------------------------------------------------------------------------ */
/* Frames: one LaunchBatch per executor per pass, built in place. */

static int put_varint(pt_buf *b, uint64_t v) {
  if (pt__buf_reserve(b, 10) != PT_OK) return PT_ENOMEM;
  uint8_t *p = (uint8_t *)b->data + b->len;
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  b->len += n;
  return PT_OK;
}

/* A length-delimited field (tag, length, bytes): how protobuf encodes one
 * element of a repeated message field, so a LaunchBatch is the
 * concatenation of its stages and tasks. */
static int put_field(pt_buf *b, int field, const void *data, size_t n) {
  PT_RETURN_NOT_OK(put_varint(b, (uint64_t)field << 3 | 2));
  PT_RETURN_NOT_OK(put_varint(b, n));
  return pt__buf_append(b, data, n);
}

static int frame_open(pt__executor *ex) {
  if (ex->frame_start >= 0) return PT_OK;
  if (pt__buf_reserve(&ex->out, PT__FRAME_HEADER) != PT_OK) return PT_ENOMEM;
  ex->frame_start = (int64_t)ex->out.len;
  ex->out.len += PT__FRAME_HEADER;
  return PT_OK;
}

static void frame_close(pt__executor *ex) {
  if (ex->frame_start < 0) return;
  uint8_t *h = (uint8_t *)ex->out.data + ex->frame_start;
  pt__store_u32(h, (uint32_t)(ex->out.len - (size_t)ex->frame_start - 4));
  h[4] = PT__PROTOCOL_VERSION & 0xff;
  h[5] = PT__PROTOCOL_VERSION >> 8;
  h[6] = PT__MSG_LAUNCH_BATCH & 0xff;
  h[7] = PT__MSG_LAUNCH_BATCH >> 8;
  ex->frame_start = -1;
}

static int exec_has_def(pt__executor *ex, const pt__sched_stage *st) {
  for (size_t i = 0; i < ex->n_sent; i++)
    if (ex->sent_defs[i][0] == st->id && ex->sent_defs[i][1] == st->attempt) return 1;
  return 0;
}

static int exec_add_def(pt__executor *ex, const pt__sched_stage *st) {
  if (ex->n_sent == ex->cap_sent) {
    size_t cap = ex->cap_sent ? ex->cap_sent * 2 : 8;
    void *p = pt__realloc(ex->sent_defs, cap * sizeof *ex->sent_defs);
    if (!p) return PT_ENOMEM;
    ex->sent_defs = p;
    ex->cap_sent = cap;
  }
  ex->sent_defs[ex->n_sent][0] = st->id;
  ex->sent_defs[ex->n_sent][1] = st->attempt;
  ex->n_sent++;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Pending partitions (a ring per stage) */

static void push_pending(pt__driver *d, pt__sched_stage *st, int64_t p) {
  if (st->queued[p] || st->done[p] || st->running[p]) return;
  st->queued[p] = 1;
  st->pending[(st->pend_head + st->n_pending) % st->partitions] = p;
  st->n_pending++;
  d->need_schedule = 1;
}

/* ------------------------------------------------------------------------ */
/* Locality: a partition tied to state in an executor process (the stage's
 * locality key) goes back to the executor that ran it last. A Kafka sink
 * partition placed elsewhere would make a new transactional producer there,
 * fencing the pooled one, and the next move would fence that one in turn. */

static pt__sched_place *place_find(pt__driver *d, const char *key, int64_t part) {
  for (int32_t i = 0; i < d->n_places; i++)
    if (d->places[i].part == part && strcmp(d->places[i].key, key) == 0) return &d->places[i];
  return NULL;
}

/* Remembers that partition p of st ran on ex. Out of memory: forgotten. */
static void place_set(pt__driver *d, pt__sched_stage *st, int64_t p, pt__executor *ex) {
  pt__sched_place *pl = place_find(d, st->locality, st->loc_part[p]);
  if (!pl) {
    if (!d->places && !(d->places = pt__calloc(PT__SCHED_MAX_PLACES, sizeof *d->places))) return;
    if (d->n_places < PT__SCHED_MAX_PLACES) {
      pl = &d->places[d->n_places];
    } else { /* full: the least recently set goes */
      pl = &d->places[0];
      for (int32_t i = 1; i < d->n_places; i++)
        if (d->places[i].used < pl->used) pl = &d->places[i];
      pt__free(pl->key);
      pl->key = NULL;
    }
    char *key = pt__strdup(st->locality);
    if (!key) {
      if (pl != &d->places[d->n_places]) *pl = d->places[--d->n_places]; /* drop the gap */
      return;
    }
    if (pl == &d->places[d->n_places]) d->n_places++;
    pl->key = key;
    pl->part = st->loc_part[p];
  }
  pl->exec = ex->index;
  pl->used = ++d->place_seq;
}

/* At stage start: each partition's executor of last time. */
static void place_resolve(pt__driver *d, pt__sched_stage *st) {
  if (!st->locality || !st->prefer) return;
  for (int64_t p = 0; p < st->partitions; p++) {
    const pt__sched_place *pl = place_find(d, st->locality, st->loc_part[p]);
    st->prefer[p] = pl ? pl->exec + 1 : 0;
  }
}

void pt__sched_places_free(pt__driver *d) {
  for (int32_t i = 0; i < d->n_places; i++) pt__free(d->places[i].key);
  pt__free(d->places);
  d->places = NULL;
  d->n_places = 0;
}

/* Whether partition p of st is for another executor than ex: the one that
 * ran it last, alive, with a free slot and room for the stage's resources.
 * First attempts only: a retry goes where pop_pending sends it. */
static int placed_elsewhere(pt__driver *d, const pt__sched_stage *st, int64_t p,
                            const pt__executor *ex) {
  if (!st->prefer || st->prefer[p] == 0 || st->launches[p] > 0) return 0;
  int32_t i = st->prefer[p] - 1;
  if (i == ex->index || i >= d->n_execs) return 0;
  pt__executor *o = d->execs[i];
  return o->state == PT__EXEC_READY && o->n_inflight < o->slots &&
         pt__res_fits(d, o, st);
}

/* Takes the next partition for ex: the head of the ring, unless its last
 * attempt failed on ex and another partition (among the next few) did not:
 * retries go elsewhere when there is an elsewhere. When every pending
 * partition failed last on ex and another executor is ready, none is
 * taken (-1): that one gets them when it has room. */
static int64_t pop_pending(pt__driver *d, pt__sched_stage *st, pt__executor *ex, int n_ready) {
  int64_t k = 0;
  if (st->prefer && n_ready > 1) {
    /* a partition that ran here last, else the first that is not another's */
    int64_t mine = -1, free_k = -1;
    for (int64_t j = 0; j < st->n_pending && mine < 0; j++) {
      int64_t p = st->pending[(st->pend_head + j) % st->partitions];
      if (st->launches[p] == 0 && st->prefer[p] == ex->index + 1) mine = j;
      else if (free_k < 0 && !placed_elsewhere(d, st, p, ex)) free_k = j;
    }
    k = mine >= 0 ? mine : free_k;
    if (k < 0) return -1; /* each has its executor, free to take it */
    if (st->launches[st->pending[(st->pend_head + k) % st->partitions]] > 0) k = 0;
    else goto take;
  }
  if (n_ready > 1) {
    for (; k < st->n_pending && k < 8; k++) {
      int64_t p = st->pending[(st->pend_head + k) % st->partitions];
      if (st->last_exec[p] != ex->id) break;
    }
    if (k == st->n_pending) return -1;
    if (k == 8) k = 0;
  }
take:;
  int64_t *slot = &st->pending[(st->pend_head + k) % st->partitions];
  int64_t p = *slot;
  *slot = st->pending[st->pend_head];
  st->pend_head = (st->pend_head + 1) % st->partitions;
  st->n_pending--;
  st->queued[p] = 0;
  (void)d;
  return p;
}

/* ------------------------------------------------------------------------ */
/* Jobs */

static void job_finish(pt__driver *d, pt__job *job, pt__job_state state) {
  for (int64_t i = 0; i < job->n_stages; i++)
    if (job->stages[i]->bar) pt__barrier_job_ended(d, job->stages[i]);
  job->state = state;
  pt__job **pp = &d->active;
  while (*pp && *pp != job) pp = &(*pp)->next;
  if (*pp) *pp = job->next;
  job->next = d->done_jobs;
  d->done_jobs = job;

  /* Orphan its tasks still in flight (statuses for them are dropped), ask
   * executors to stop them, and to forget the job's stages and shuffles. */
  /* one array: stage ids, shuffle ids, then the task ids to kill */
  size_t n_ids = 2 * (size_t)job->n_stages + (size_t)d->cap_tasks + 1;
  int64_t *ids = pt__malloc(n_ids * sizeof *ids);
  int64_t *stage_ids = ids, *shuffle_ids = ids ? ids + job->n_stages : NULL;
  size_t n_st = 0, n_sh = 0;
  for (int64_t i = 0; ids && i < job->n_stages; i++)
    if (job->stages[i]->shuffle_id >= 0) shuffle_ids[n_sh++] = job->stages[i]->shuffle_id;
  for (int64_t i = 0; ids && i < job->n_stages; i++) stage_ids[n_st++] = job->stages[i]->id;
  int64_t *kill = ids ? shuffle_ids + n_sh : NULL;
  for (int32_t e = 0; e < d->n_execs; e++) {
    pt__executor *ex = d->execs[e];
    size_t n_kill = 0;
    for (int32_t i = ex->head; i >= 0; i = d->tasks[i].next) {
      pt__sched_task *t = &d->tasks[i];
      if (!t->stage || t->stage->job != job) continue;
      pt__stats_on_orphan(t);
      t->stage = NULL; /* always, even without memory for the messages */
      if (kill) kill[n_kill++] = t->id;
    }
    /* forget the stage definitions it had */
    size_t w = 0;
    for (size_t i = 0; i < ex->n_sent; i++) {
      int mine = 0;
      for (size_t k = 0; k < n_st; k++) mine |= ex->sent_defs[i][0] == stage_ids[k];
      if (!mine) memcpy(ex->sent_defs[w++], ex->sent_defs[i], sizeof ex->sent_defs[i]);
    }
    int had_defs = w < ex->n_sent;
    ex->n_sent = w;
    if (ex->state != PT__EXEC_READY || !ids) continue; /* out of memory: files stay */
    frame_close(ex);
    if (n_kill) {
      Protium__KillTasks k = PROTIUM__KILL_TASKS__INIT;
      k.n_task_ids = n_kill;
      k.task_ids = kill;
      (void)pt__cluster_send(ex, PT__MSG_KILL_TASKS, &k.base);
    }
    /* An executor that never had a stage of the job has neither its
     * definitions nor its shuffle files: nothing to clean. The others
     * get Cleanup with their next write (the tick's at the latest), so
     * a short job costs no extra wake-up of its executor. */
    if (!had_defs) continue;
    Protium__Cleanup c = PROTIUM__CLEANUP__INIT;
    c.n_stage_ids = n_st;
    c.stage_ids = stage_ids;
    c.n_shuffle_ids = n_sh;
    c.shuffle_ids = shuffle_ids;
    (void)pt__frame_append(&ex->lazy, PT__MSG_CLEANUP, &c.base, NULL);
  }
  pt__free(ids);
}

/* Fails job with code (what the caller's action returns: the cause's
 * PT_* code where it is known, such as a task's own error, PT_ETIMEDOUT for
 * a task past task.timeout, PT_ENOMEM for the driver; PT_EIO for lost
 * executors and outputs). */
static void job_fail(pt__driver *d, pt__job *job, int code, const char *fmt, ...) {
  if (job->state != PT__JOB_RUNNING) return;
  char msg[PT_ERROR_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (code <= PT_OK || code > PT_EINTERNAL) code = PT_EIO;
  pt__errorf(&job->error, code, "%s", msg);
  job_finish(d, job, PT__JOB_FAILED);
}

void pt__sched_job_fail(pt__driver *d, pt__job *job, int code, const char *msg) {
  job_fail(d, job, code, "%s", msg);
}

void pt__sched_flush_done(pt__driver *d) {
  while (d->done_jobs) {
    pt__job *job = d->done_jobs;
    d->done_jobs = job->next;
    job->next = NULL;
    pt__driver_job_done(d, job); /* the user thread owns it from here */
  }
}

void pt__sched_fail_all(pt__driver *d, int code, const char *why) {
  while (d->active)
    job_fail(d, d->active, code, "job %lld failed: %s", (long long)d->active->id, why);
}

/* ------------------------------------------------------------------------ */
/* Stages */

/* Makes st runnable, or waits for its parent (submitting it) when the
 * parent's output is incomplete. */
static void stage_submit(pt__driver *d, pt__sched_stage *st) {
  pt__sched_stage *parent = st->parent;
  if (parent && parent->n_done < parent->partitions) {
    st->state = PT__STAGE_WAITING;
    if (parent->state != PT__STAGE_RUNNING) stage_submit(d, parent);
    return;
  }
  stage_start(d, st);
}

void pt__sched_stage_submit(pt__driver *d, pt__sched_stage *st) { stage_submit(d, st); }

static void stage_start(pt__driver *d, pt__sched_stage *st) {
  st->state = PT__STAGE_RUNNING;
  place_resolve(d, st);
  pt__free(st->def); /* map outputs may have changed: a new attempt */
  st->def = NULL;
  for (int64_t p = 0; p < st->partitions; p++) push_pending(d, st, p);
  if (st->n_done == st->partitions) {
    /* nothing to run (zero partitions) */
    st->state = PT__STAGE_DONE;
    if (st == st->job->final) job_finish(d, st->job, PT__JOB_SUCCEEDED);
    else
      for (int64_t i = 0; i < st->job->n_stages; i++)
        if (st->job->stages[i]->parent == st) stage_submit(d, st->job->stages[i]);
  }
}

static void stage_done(pt__driver *d, pt__sched_stage *st) {
  st->state = PT__STAGE_DONE;
  pt__job *job = st->job;
  if (st == job->final) {
    job_finish(d, job, PT__JOB_SUCCEEDED);
    return;
  }
  for (int64_t i = 0; i < job->n_stages; i++) {
    pt__sched_stage *c = job->stages[i];
    if (c->parent == st && c->state == PT__STAGE_WAITING) stage_submit(d, c);
  }
}

static void output_free(Protium__ShuffleOutput *o) {
  if (o->path != (char *)protobuf_c_empty_string) pt__free(o->path);
  pt__free(o->segment_offsets);
  pt__free(o->segment_rows);
  protium__shuffle_output__init(o);
}

/* Map partition m of st lost its output: rerun it, and hold the reducers
 * until it is back (they then run under a new stage attempt). When the
 * reducers are done, it is only marked lost. */
static void output_lost(pt__driver *d, pt__sched_stage *st, int64_t m, const char *cause) {
  pt__job *job = st->job;
  pt__sched_stage *child = NULL;
  for (int64_t i = 0; i < job->n_stages; i++)
    if (job->stages[i]->parent == st) child = job->stages[i];
  if (!st->done[m] || !child) return;
  pt__stats_on_output_lost(st, m);
  if (st->bar) { /* never a subset of a barrier stage: all of it */
    pt__barrier_output_lost(d, st, cause, child->state == PT__STAGE_DONE);
    if (child->state == PT__STAGE_RUNNING && job->state == PT__JOB_RUNNING) {
      child->state = PT__STAGE_WAITING;
      pt__free(child->def);
      child->def = NULL;
    }
    return;
  }
  st->done[m] = 0;
  st->n_done--;
  output_free(&st->outputs[m]);
  st->output_exec[m] = 0;
  /* Not needed now; but should the child run again (its own output lost),
   * it finds this stage incomplete and reruns the lost partitions first,
   * instead of reading files that are gone, one fetch failure (and one
   * stage attempt) at a time. */
  if (child->state == PT__STAGE_DONE) return;
  if (st->state == PT__STAGE_DONE) {
    /* Reducers of one attempt that started before a loss report it one
     * output at a time, some after the lost outputs were recomputed: one
     * resubmission per reducer attempt counts, not one per report. */
    int counted = st->resubmit_child_attempt != child->attempt + 1;
    st->resubmit_child_attempt = child->attempt + 1;
    if (counted && ++st->resubmits >= d->opts.stage_max_attempts) {
      job_fail(d, job, PT_EIO,
               "job %lld failed: stage %lld lost its map output %lld times; last cause: %s",
               (long long)job->id, (long long)st->id, (long long)st->resubmits, cause);
      return;
    }
    stage_submit(d, st);
  } else if (st->state == PT__STAGE_RUNNING) {
    push_pending(d, st, m);
  }
  if (child->state == PT__STAGE_RUNNING && child->bar) {
    pt__barrier_task_failed(d, child, -1, cause, PT_EIO); /* its input went */
  } else if (child->state == PT__STAGE_RUNNING) {
    child->state = PT__STAGE_WAITING;
    pt__free(child->def);
    child->def = NULL;
  }
}

/* An attempt of partition p ended without output. counted: it counts
 * toward task.max_failures (a queued task of a lost executor does not). */
static void attempt_failed(pt__driver *d, pt__sched_stage *st, int64_t p, int64_t exec_id,
                           const char *cause, int code, int counted) {
  pt__job *job = st->job;
  if (job->state != PT__JOB_RUNNING || st->done[p]) return;
  if (st->bar) {
    pt__barrier_task_failed(d, st, p, cause, code);
    return;
  }
  st->last_exec[p] = exec_id;
  if (counted) {
    st->failures[p]++;
    char *c = pt__strdup(cause && *cause ? cause : "unknown error");
    if (c) {
      pt__free(st->last_error[p]);
      st->last_error[p] = c;
    }
    st->last_code[p] = code;
    if (st->failures[p] >= d->opts.max_failures) {
      job_fail(d, job, st->last_code[p],
               "job %lld failed: stage %lld partition %lld failed %d times; last error: %s",
               (long long)job->id, (long long)st->id, (long long)p, (int)st->failures[p],
               st->last_error[p] ? st->last_error[p] : cause);
      return;
    }
  }
  if (st->state == PT__STAGE_RUNNING) push_pending(d, st, p);
}

static int copy_i64(int64_t **dst, const int64_t *src, size_t n) {
  *dst = NULL;
  if (!n) return PT_OK;
  *dst = pt__malloc(n * sizeof **dst);
  if (!*dst) return PT_ENOMEM;
  memcpy(*dst, src, n * sizeof **dst);
  return PT_OK;
}

static void attempt_succeeded(pt__driver *d, pt__sched_stage *st, int64_t p, int32_t attempt,
                              pt__executor *ex, const Protium__TaskStatus *ts) {
  pt__job *job = st->job;
  if (job->state != PT__JOB_RUNNING || st->done[p]) return; /* the first success wins */
  if (st->shuffle_id >= 0) {
    Protium__ShuffleOutput *o = &st->outputs[p];
    const Protium__ShuffleOutput *s = ts->shuffle;
    if (!s || !s->path || !*s->path || s->n_segment_offsets != s->n_segment_rows + 1) {
      attempt_failed(d, st, p, ex->id, "executor reported no or malformed shuffle output", PT_EIO,
                     1);
      return;
    }
    o->path = pt__strdup(s->path);
    /* borrowed: the executor's, kept as long as the driver */
    if (ex->block_address) o->block_address = ex->block_address;
    int bad = !o->path || copy_i64(&o->segment_offsets, s->segment_offsets,
                                   s->n_segment_offsets) != PT_OK;
    bad = bad || copy_i64(&o->segment_rows, s->segment_rows, s->n_segment_rows) != PT_OK;
    o->n_segment_offsets = s->n_segment_offsets;
    o->n_segment_rows = s->n_segment_rows;
    if (bad) {
      output_free(o);
      job_fail(d, job, PT_ENOMEM, "job %lld failed: driver out of memory", (long long)job->id);
      return;
    }
    st->output_exec[p] = ex->id;
  } else {
    if (st->paths && ex->results_stream && st->job->action.sink == PT__SINK_RESULT &&
        ts->result_inline.len > 0) {
      pt_error err = {0};
      if (pt__results_inline(d, st, p, attempt, ts, &st->paths[p], &err) != PT_OK) {
        if (err.code == PT_ENOMEM) {
          job_fail(d, job, PT_ENOMEM, "job %lld failed: driver out of memory",
                   (long long)job->id);
          return;
        }
        attempt_failed(d, st, p, ex->id, err.message, err.code, 1);
        return;
      }
    } else if (st->paths && ex->results_stream && st->job->action.sink == PT__SINK_RESULT) {
      /* The file is on the executor's host: the attempt counts once the
       * driver has it. Until then the partition is running, so that
       * nothing launches it again meanwhile. */
      if (!ts->output_path || !*ts->output_path || ts->bytes_written <= 0) {
        attempt_failed(d, st, p, ex->id, "executor reported no result file", PT_EIO, 1);
        return;
      }
      pt_error ferr = {0};
      if (pt__results_fetch(d, ex, st, p, ts, &ferr) != PT_OK) {
        job_fail(d, job, ferr.code, "job %lld failed: %s", (long long)job->id, ferr.message);
        return;
      }
      st->running[p]++;
      return;
    } else if (st->paths) {
      if (!ts->output_path || !*ts->output_path) {
        attempt_failed(d, st, p, ex->id, "executor reported no output file", PT_EIO, 1);
        return;
      }
      st->paths[p] = pt__strdup(ts->output_path);
      if (!st->paths[p]) {
        job_fail(d, job, PT_ENOMEM, "job %lld failed: driver out of memory", (long long)job->id);
        return;
      }
    }
    st->rows[p] = ts->rows;
    st->counts[p] = ts->count;
  }
  st->done[p] = 1;
  if (st->locality) place_set(d, st, p, ex);
  if (st->bar && !pt__barrier_task_succeeded(d, st, p)) return;
  if (job->state == PT__JOB_RUNNING && ++st->n_done == st->partitions) stage_done(d, st);
}

void pt__sched_result_fetched(pt__driver *d, int64_t job_id, int64_t stage_id,
                              int64_t stage_attempt, int64_t p, int64_t exec_id, int64_t rows,
                              int64_t count, const char *local_path, int rc, int unreachable,
                              const char *error) {
  pt__job *job = d->active;
  while (job && job->id != job_id) job = job->next;
  pt__sched_stage *st = job ? job->final : NULL;
  if (!st || st->id != stage_id || p < 0 || p >= st->partitions) {
    if (rc == PT_OK) unlink(local_path); /* the job ended meanwhile */
    return;
  }
  st->running[p]--;
  pt__executor *ex = NULL;
  for (int32_t i = 0; i < d->n_execs; i++)
    if (d->execs[i]->id == exec_id) ex = d->execs[i];
  if (rc != PT_OK) {
    char cause[PT_ERROR_SIZE];
    snprintf(cause, sizeof cause, "the result of partition %lld could not be fetched from "
             "executor %lld: %.800s", (long long)p, (long long)exec_id, error);
    /* Cannot be reached: gone, with what it held (as a reduce task's
     * failed fetch says). Not counted, as any task of a lost executor. */
    int lost = unreachable || !ex || ex->state == PT__EXEC_LOST;
    if (unreachable && ex && ex->state != PT__EXEC_LOST) {
      char why[PT_ERROR_SIZE];
      snprintf(why, sizeof why, "executor %lld lost: its block server cannot be reached from "
               "the driver (%.800s)", (long long)exec_id, error);
      pt__cluster_lose(ex, why, 0, NULL);
    }
    attempt_failed(d, st, p, exec_id, cause, PT_EIO, !lost);
    d->need_schedule = 1;
    return;
  }
  /* The first success wins; a stopped barrier attempt's output is void. */
  if (job->state != PT__JOB_RUNNING || st->done[p] || (st->bar && st->attempt != stage_attempt)) {
    unlink(local_path);
    return;
  }
  st->paths[p] = pt__strdup(local_path);
  if (!st->paths[p]) {
    job_fail(d, job, PT_ENOMEM, "job %lld failed: driver out of memory", (long long)job->id);
    return;
  }
  st->rows[p] = rows;
  st->counts[p] = count;
  st->done[p] = 1;
  d->need_schedule = 1;
  if (st->bar && !pt__barrier_task_succeeded(d, st, p)) return;
  if (job->state == PT__JOB_RUNNING && ++st->n_done == st->partitions) stage_done(d, st);
}

/* ------------------------------------------------------------------------ */
/* Entry points */

void pt__sched_submit(pt__driver *d, pt__job *job) {
  job->state = PT__JOB_RUNNING;
  pt__stats_job_start(job);
  pt__job **pp = &d->active;
  while (*pp) pp = &(*pp)->next;
  *pp = job;
  job->next = NULL;
  if (d->start_failures >= 3) {
    job_fail(d, job, PT_EIO, "job %lld failed: executors keep exiting before they connect to the "
                     "driver; run the program alone to see their messages", (long long)job->id);
    return;
  }
  if (!pt__res_check_job(d, job) || !pt__barrier_check_job(d, job)) return;
  stage_submit(d, job->final);
  d->need_schedule = 1;
}

int pt__sched_launch(pt__driver *d, pt__executor *ex, pt__sched_stage *st, int64_t p,
                     uint64_t now, Protium__TaskInfo **infos, size_t n_infos, int64_t *task_id) {
  PT_RETURN_NOT_OK(frame_open(ex));
  if (!exec_has_def(ex, st)) {
    PT_RETURN_NOT_OK(put_field(&ex->out, 1, st->def, st->def_size));
    PT_RETURN_NOT_OK(exec_add_def(ex, st));
  }
  int32_t i = task_alloc(d);
  if (i < 0) return PT_ENOMEM;
  pt__sched_task *t = &d->tasks[i];
  t->id = (++d->task_seq << TASK_INDEX_BITS) | i;
  t->stage = st;
  t->job_id = st->job->id;
  t->partition = p;
  t->attempt = st->launches[p]++;
  t->stage_attempt = (int32_t)st->attempt;
  t->exec = ex->index;
  t->start_ns = 0;
  t->stop_ns = 0;
  t->grant = NULL;
  t->cpus = 0;
  Protium__TaskLaunch tl = PROTIUM__TASK_LAUNCH__INIT;
  uint32_t refs_buf[2 * PT__RES_GRANT_SMALL], *refs = refs_buf;
  if (st->profile) {
    int rc = pt__res_take(ex->res, st->profile, st->res_pools, &t->grant);
    if (rc == PT_OK && t->grant) {
      if (t->grant->n > PT__RES_GRANT_SMALL &&
          !(refs = pt__malloc(2 * (size_t)t->grant->n * sizeof *refs)))
        rc = PT_ENOMEM;
      if (rc == PT_OK && t->grant->n == 1) {
        tl.resource_ref = ((uint64_t)t->grant->e[0][0] << 32 | (uint32_t)t->grant->e[0][1]) + 1;
      } else if (rc == PT_OK) {
        tl.n_resource_refs = pt__res_grant_refs(t->grant, refs);
        tl.resource_refs = refs;
      }
    }
    if (rc != PT_OK) {
      if (refs != refs_buf) pt__free(refs);
      task_free(d, i); /* gives the grant back */
      st->launches[p]--;
      return rc;
    }
  }
  tl.task_id = t->id;
  tl.stage_id = st->id;
  tl.stage_attempt = st->attempt;
  tl.partition = p;
  tl.attempt = t->attempt;
  tl.n_task_infos = n_infos;
  tl.task_infos = infos;
  /* Five int64 fields take at most 55 bytes, resource_ref 12, and
   * resource_refs 5 per value and 5 more: most launches fit in buf
   * unmeasured. */
  uint8_t buf[256], *packed = buf;
  int rc = PT_OK;
  if ((n_infos > 0 || 72 + 5 * tl.n_resource_refs > sizeof buf) &&
      protium__task_launch__get_packed_size(&tl) > sizeof buf &&
      !(packed = pt__malloc(protium__task_launch__get_packed_size(&tl))))
    rc = PT_ENOMEM;
  if (rc == PT_OK) {
    size_t n = protium__task_launch__pack(&tl, packed);
    rc = put_field(&ex->out, 2, packed, n);
  }
  if (packed != buf) pt__free(packed);
  if (refs != refs_buf) pt__free(refs);
  if (rc != PT_OK) {
    task_free(d, i);
    return PT_ENOMEM;
  }
  exec_link(d, ex, i);
  t->cpus = pt__res_cpus(st->profile);
  ex->units += t->cpus;
  ex->n_multi += t->cpus > 1;
  pt__stats_on_launch(st, t);
  if (task_id) *task_id = t->id;
  if (ex->n_inflight <= ex->slots) t->start_ns = now;
  st->running[p]++;
  return PT_OK;
}

/* The next runnable (stage, partition) for ex, in job order; NULL when
 * there is none (*skipped = 1: none for ex, but others may take some). */
static pt__sched_stage *pick(pt__driver *d, pt__executor *ex, int n_ready, int64_t *p,
                             int *skipped) {
  for (pt__job *job = d->active; job; job = job->next) {
    for (int64_t i = 0; i < job->n_stages; i++) {
      pt__sched_stage *st = job->stages[i];
      if (st->state != PT__STAGE_RUNNING || st->n_pending == 0 || st->bar) continue;
      if (!st->def) {
        pt_error err = {0};
        st->attempt++;
        if (pt__plan_encode_stage(st, &err) != PT_OK) {
          job_fail(d, job, err.code, "job %lld failed: stage %lld: %s", (long long)job->id,
                   (long long)st->id, err.message);
          return pick(d, ex, n_ready, p, skipped);
        }
      }
      if (!pt__res_fits(d, ex, st)) {
        *skipped = 1; /* its resources are busy, or not on this executor */
        continue;
      }
      *p = pop_pending(d, st, ex, n_ready);
      if (*p >= 0) return st;
      *skipped = 1;
    }
  }
  return NULL;
}

void pt__sched_schedule(pt__driver *d) {
  if (!d->active || d->n_execs == 0) return;
  uint64_t now = uv_hrtime();
  /* Barrier stages first, all tasks or none; while one waits for slots,
   * nothing else takes them. */
  if (pt__barrier_admit(d, now)) {
    for (int32_t e = 0; e < d->n_execs; e++) frame_close(d->execs[e]);
    return;
  }
  int n_ready = 0;
  for (int32_t e = 0; e < d->n_execs; e++) n_ready += d->execs[e]->state == PT__EXEC_READY;
  int32_t cap_per_slot = 1 + d->opts.queue_depth;
  int more = n_ready > 0;
  while (more) {
    int progress = 0;
    for (int32_t k = 0; k < d->n_execs && more; k++) {
      pt__executor *ex = d->execs[(d->rr + k) % d->n_execs];
      if (ex->state != PT__EXEC_READY || ex->n_inflight >= ex->slots * cap_per_slot) continue;
      int64_t p;
      int skipped = 0;
      pt__sched_stage *st = pick(d, ex, n_ready, &p, &skipped);
      if (!st) {
        if (skipped) continue; /* retries left for another executor */
        more = 0;
        break;
      }
      if (pt__sched_launch(d, ex, st, p, now, NULL, 0, NULL) != PT_OK) {
        st->queued[p] = 0;
        job_fail(d, st->job, PT_ENOMEM, "job %lld failed: driver out of memory",
                 (long long)st->job->id);
        continue;
      }
      progress = 1;
    }
    if (!progress) more = 0;
  }
  d->rr++;
  for (int32_t e = 0; e < d->n_execs; e++) frame_close(d->execs[e]);
}

void pt__sched_on_status(pt__driver *d, pt__executor *ex, const Protium__TaskStatus *ts) {
  int32_t i = (int32_t)(ts->task_id & TASK_INDEX_MASK);
  if (ts->task_id <= 0 || i >= d->cap_tasks || d->tasks[i].id != ts->task_id ||
      d->tasks[i].exec != ex->index)
    return; /* a task already accounted for (its executor was lost, say) */
  pt__sched_task t = d->tasks[i];
  int was_started = t.start_ns != 0;
  exec_unlink(d, ex, i);
  task_free(d, i);
  if (was_started) exec_mark_started(d, ex, uv_hrtime());
  pt__sched_stage *st = t.stage;
  if (!st) return; /* orphan of a finished job */
  pt__stats_on_status(st, &t, ts);
  st->running[t.partition]--;
  switch (ts->state) {
  case PROTIUM__TASK_STATE__TASK_SUCCEEDED:
    attempt_succeeded(d, st, t.partition, t.attempt, ex, ts);
    break;
  case PROTIUM__TASK_STATE__TASK_FETCH_FAILED: {
    int64_t m = ts->failed_map_partition;
    if (st->parent && m >= 0 && m < st->parent->partitions && ts->map_executor_unreachable)
      pt__cluster_lose_unreachable(d, st->parent->output_exec[m], ex);
    if (st->parent && m >= 0 && m < st->parent->partitions) {
      /* A task of an older stage attempt read older map locations: what it
       * missed may have been recomputed since. */
      if (t.stage_attempt == st->attempt) output_lost(d, st->parent, m, ts->error);
      attempt_failed(d, st, t.partition, ex->id, ts->error, PT_EIO, 0);
    } else {
      attempt_failed(d, st, t.partition, ex->id, ts->error, PT_EIO, 1);
    }
    break;
  }
  case PROTIUM__TASK_STATE__TASK_KILLED:
    attempt_failed(d, st, t.partition, ex->id, "killed", PT_ECANCELED, 0);
    break;
  default:
    attempt_failed(d, st, t.partition, ex->id, ts->error, ts->error_code, 1);
    break;
  }
}

void pt__sched_on_executor_lost(pt__driver *d, pt__executor *ex, const char *cause,
                                int64_t timed_out_task, const char *cause_timeout,
                                int64_t crashed_task) {
  pt__stats_on_executor(d, 1);
  /* A crash note counts only when it names a task that was running there
   * (not a stale or a forked child's one). */
  int crash_known = 0;
  for (int32_t k = ex->head; k >= 0 && crashed_task > 0; k = d->tasks[k].next)
    if (d->tasks[k].id == crashed_task && d->tasks[k].start_ns) crash_known = 1;
  /* Detach the whole list first: failing a job below walks executor lists. */
  int32_t i = ex->head;
  ex->head = ex->tail = -1;
  ex->n_inflight = 0;
  ex->n_sent = 0;
  while (i >= 0) {
    pt__sched_task t = d->tasks[i];
    int32_t next = t.next;
    task_free(d, i);
    i = next;
    if (!t.stage) continue;
    /* Tasks beside the one that crashed the process lost their work, not
     * an attempt: they run again, uncounted (a barrier stage reruns whole
     * anyway). */
    int innocent = crash_known && t.id != crashed_task && !t.stage->bar;
    pt__stats_on_lost_task(t.stage, &t, t.id == timed_out_task && cause_timeout, innocent);
    if (t.stage->bar) {
      int timed_out = t.id == timed_out_task && cause_timeout;
      pt__barrier_task_lost(d, &t, timed_out ? cause_timeout : cause,
                            timed_out ? PT_ETIMEDOUT : PT_EIO);
      continue;
    }
    t.stage->running[t.partition]--;
    if (t.id == timed_out_task && cause_timeout)
      attempt_failed(d, t.stage, t.partition, ex->id, cause_timeout, PT_ETIMEDOUT, 1);
    else
      attempt_failed(d, t.stage, t.partition, ex->id, cause, PT_EIO, t.start_ns != 0 && !innocent);
  }
  /* Its map outputs went with its directory. */
  for (pt__job *job = d->active, *next; job; job = next) {
    next = job->next;
    for (int64_t s = 0; s < job->n_stages && job->state == PT__JOB_RUNNING; s++) {
      pt__sched_stage *st = job->stages[s];
      if (st->shuffle_id < 0) continue;
      for (int64_t p = 0; p < st->partitions && job->state == PT__JOB_RUNNING; p++)
        if (st->done[p] && st->output_exec[p] == ex->id) output_lost(d, st, p, cause);
    }
  }
  d->need_schedule = 1;
}

void pt__sched_on_tick(pt__driver *d, uint64_t now) {
  pt__barrier_on_tick(d, now);
  if (d->opts.task_timeout_ms <= 0) return;
  uint64_t limit = (uint64_t)d->opts.task_timeout_ms * 1000000u;
  for (int32_t e = 0; e < d->n_execs; e++) {
    pt__executor *ex = d->execs[e];
    if (ex->state != PT__EXEC_READY) continue;
    int32_t i = ex->head;
    for (int32_t k = 0; k < ex->slots && i >= 0; k++, i = d->tasks[i].next) {
      pt__sched_task *t = &d->tasks[i];
      if (!t->start_ns || t->start_ns >= now || now - t->start_ns <= limit) continue;
      /* A thread cannot be stopped: the executor goes, with the task. */
      char why[320], cause[64];
      int64_t ms = d->opts.task_timeout_ms;
      if (ms % 1000 == 0) snprintf(cause, sizeof cause, "task timed out after %llds", (long long)(ms / 1000));
      else snprintf(cause, sizeof cause, "task timed out after %lldms", (long long)ms);
      snprintf(why, sizeof why, "executor %lld lost: killed because stage %lld partition %lld %s",
               (long long)ex->id, (long long)(t->stage ? t->stage->id : -1),
               (long long)t->partition, cause);
      pt__cluster_lose(ex, why, t->id, cause);
      break;
    }
  }
}
