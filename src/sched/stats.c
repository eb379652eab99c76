/* stats.c — job metrics, recorded as the scheduler sees them (loop_mu held):
 * one entry per stage attempt that launched tasks, counting launches, how
 * attempts ended, lost map outputs and the rows and bytes the executors
 * report. The scheduler calls one hook per event; the entries become a
 * pt_job_stats handed to the action with its result.
 */
#include <string.h>

#include "sched/sched.h"

typedef struct entry {
  pt_stage_stats s;
  int64_t lost_cap;
  uint64_t first_ns, last_ns;     /* first launch, last status (uv_hrtime) */
} entry;

struct pt__jstats {
  uint64_t start_ns;
  int64_t executors_lost, executors_started;
  entry *e;                       /* [n] in order of first launch */
  int64_t n, cap;
};

static pt__jstats *of(const pt__sched_stage *st) { return st && st->job ? st->job->stats : NULL; }

/* The entry of (stage, attempt), made on first use; NULL without memory
 * (the metrics then miss that event, the job goes on). Searched from the
 * newest: a job has few stage attempts and the current one is last. */
static pt_stage_stats *entry_of(pt__jstats *js, const pt__sched_stage *st, int64_t attempt) {
  if (!js) return NULL;
  for (int64_t i = js->n - 1; i >= 0; i--)
    if (js->e[i].s.stage_id == st->id && js->e[i].s.attempt == attempt) return &js->e[i].s;
  if (js->n == js->cap) {
    int64_t cap = js->cap ? js->cap * 2 : 4;
    entry *p = pt__realloc(js->e, (size_t)cap * sizeof *p);
    if (!p) return NULL;
    js->e = p;
    js->cap = cap;
  }
  entry *e = &js->e[js->n++];
  memset(e, 0, sizeof *e);
  e->s.stage_id = st->id;
  e->s.attempt = attempt;
  e->s.partitions = st->partitions;
  e->s.is_map = st->shuffle_id >= 0;
  return &e->s;
}

int64_t pt__stats_job_elapsed_us(const pt__job *job, uint64_t now_ns) {
  if (!job->stats || now_ns < job->stats->start_ns) return 0;
  return (int64_t)((now_ns - job->stats->start_ns) / 1000);
}

void pt__stats_job_start(pt__job *job) {
  job->stats = pt__calloc(1, sizeof *job->stats);
  if (job->stats) job->stats->start_ns = uv_hrtime();
}

void pt__stats_on_launch(const pt__sched_stage *st, const pt__sched_task *t) {
  pt_stage_stats *s = entry_of(of(st), st, t->stage_attempt);
  if (!s) return;
  entry *e = (entry *)s; /* s is the first member */
  if (!e->first_ns) e->first_ns = uv_hrtime();
  s->tasks_launched++;
  s->tasks_retried += t->attempt > 0;
}

void pt__stats_on_status(const pt__sched_stage *st, const pt__sched_task *t,
                         const Protium__TaskStatus *ts) {
  pt_stage_stats *s = entry_of(of(st), st, t->stage_attempt);
  if (!s) return;
  ((entry *)s)->last_ns = uv_hrtime();
  s->task_time_us += ts->duration_us;
  switch (ts->state) {
    case PROTIUM__TASK_STATE__TASK_SUCCEEDED:
      if (st->done[t->partition] || st->job->state != PT__JOB_RUNNING) s->tasks_duplicate++;
      else s->tasks_succeeded++;
      s->rows_read += ts->rows_read;
      s->bytes_read += ts->bytes_read;
      s->rows_written += ts->rows;
      s->bytes_written += ts->bytes_written;
      s->parquet_pages_read += ts->parquet_pages_read;
      s->parquet_pages_skipped += ts->parquet_pages_skipped;
      s->kafka_producers += ts->kafka_producers;
      if (ts->event_time_ms > 0 && (s->event_time_ms == 0 || ts->event_time_ms < s->event_time_ms))
        s->event_time_ms = ts->event_time_ms;
      return;
    case PROTIUM__TASK_STATE__TASK_FETCH_FAILED:
      s->failed_by_cause[PT_CAUSE_FETCH_FAILED]++;
      break;
    case PROTIUM__TASK_STATE__TASK_KILLED:
      s->failed_by_cause[PT_CAUSE_KILLED]++;
      break;
    default:
      s->failed_by_cause[PT_CAUSE_ERROR]++;
      break;
  }
  s->tasks_failed++;
}

void pt__stats_on_lost_task(const pt__sched_stage *st, const pt__sched_task *t, int timed_out,
                            int innocent) {
  pt_stage_stats *s = entry_of(of(st), st, t->stage_attempt);
  if (!s) return;
  if ((!t->start_ns || innocent) && !timed_out) {
    s->tasks_requeued++;
    return;
  }
  s->failed_by_cause[timed_out ? PT_CAUSE_TIMEOUT : PT_CAUSE_EXECUTOR_LOST]++;
  s->tasks_failed++;
}

void pt__stats_on_orphan(const pt__sched_task *t) {
  pt_stage_stats *s = entry_of(of(t->stage), t->stage, t->stage_attempt);
  if (s) s->tasks_orphaned++;
}

void pt__stats_on_output_lost(const pt__sched_stage *st, int64_t m) {
  pt__jstats *js = of(st);
  pt_stage_stats *s = entry_of(js, st, st->attempt < 0 ? 0 : st->attempt);
  if (!s) return;
  entry *e = (entry *)s; /* s is the first member */
  if (s->outputs_lost == e->lost_cap) {
    int64_t cap = e->lost_cap ? e->lost_cap * 2 : 8;
    int64_t *p = pt__realloc(s->lost_partitions, (size_t)cap * sizeof *p);
    if (!p) return;
    s->lost_partitions = p;
    e->lost_cap = cap;
  }
  s->lost_partitions[s->outputs_lost++] = m;
}

void pt__stats_on_executor(pt__driver *d, int lost) {
  for (pt__job *job = d->active; job; job = job->next) {
    if (!job->stats) continue;
    if (lost) job->stats->executors_lost++;
    else job->stats->executors_started++;
  }
}

pt_job_stats *pt__stats_take(pt__job *job, int status) {
  pt__jstats *js = job->stats;
  pt_job_stats *out = pt__calloc(1, sizeof *out);
  if (!out) return NULL;
  out->job_id = job->id;
  out->status = status;
  if (!js) return out;
  out->duration_us = (int64_t)((uv_hrtime() - js->start_ns) / 1000);
  out->executors_lost = js->executors_lost;
  out->executors_started = js->executors_started;
  if (js->n) {
    out->stages = pt__calloc((size_t)js->n, sizeof *out->stages);
    if (out->stages) {
      for (int64_t i = 0; i < js->n; i++) {
        entry *e = &js->e[i];
        if (e->first_ns && e->last_ns > e->first_ns)
          e->s.duration_us = (int64_t)((e->last_ns - e->first_ns) / 1000);
        out->stages[i] = e->s;
        js->e[i].s.lost_partitions = NULL; /* moved */
      }
      out->n_stages = js->n;
    }
  }
  return out;
}

void pt__stats_free(pt__jstats *js) {
  if (!js) return;
  for (int64_t i = 0; i < js->n; i++) pt__free(js->e[i].s.lost_partitions);
  pt__free(js->e);
  pt__free(js);
}

/* ------------------------------------------------------------------------ */
/* The public part: pt_job_stats is plain memory (pt__malloc). */

void pt_job_stats_free(pt_job_stats *st) {
  if (!st) return;
  for (int64_t i = 0; i < st->n_stages; i++) pt__free(st->stages[i].lost_partitions);
  pt__free(st->stages);
  pt__free(st);
}

int pt__stats_copy(const pt_job_stats *src, pt_job_stats **out) {
  pt_job_stats *c = pt__calloc(1, sizeof *c);
  if (!c) return PT_ENOMEM;
  *c = *src;
  c->stages = NULL;
  c->n_stages = 0;
  if (src->n_stages) {
    c->stages = pt__calloc((size_t)src->n_stages, sizeof *c->stages);
    if (!c->stages) goto oom;
    for (int64_t i = 0; i < src->n_stages; i++) {
      c->stages[i] = src->stages[i];
      c->stages[i].lost_partitions = NULL;
      c->n_stages = i + 1;
      int64_t n = src->stages[i].outputs_lost;
      if (!n) continue;
      c->stages[i].lost_partitions = pt__malloc((size_t)n * sizeof(int64_t));
      if (!c->stages[i].lost_partitions) goto oom;
      memcpy(c->stages[i].lost_partitions, src->stages[i].lost_partitions,
             (size_t)n * sizeof(int64_t));
    }
  }
  *out = c;
  return PT_OK;
oom:
  pt_job_stats_free(c);
  return PT_ENOMEM;
}

void pt_job_stats_total(const pt_job_stats *st, pt_stage_stats *out) {
  memset(out, 0, sizeof *out);
  if (!st || !st->n_stages) return;
  out->stage_id = st->stages[0].stage_id;
  out->attempt = st->stages[0].attempt;
  out->partitions = st->stages[0].partitions;
  for (int64_t i = 0; i < st->n_stages; i++) {
    const pt_stage_stats *s = &st->stages[i];
    out->is_map |= s->is_map;
    out->tasks_launched += s->tasks_launched;
    out->tasks_succeeded += s->tasks_succeeded;
    out->tasks_failed += s->tasks_failed;
    for (int c = 0; c < PT_CAUSE_COUNT_; c++) out->failed_by_cause[c] += s->failed_by_cause[c];
    out->tasks_retried += s->tasks_retried;
    out->tasks_requeued += s->tasks_requeued;
    out->tasks_duplicate += s->tasks_duplicate;
    out->tasks_orphaned += s->tasks_orphaned;
    out->outputs_lost += s->outputs_lost;
    out->rows_read += s->rows_read;
    out->bytes_read += s->bytes_read;
    out->rows_written += s->rows_written;
    out->bytes_written += s->bytes_written;
    out->parquet_pages_read += s->parquet_pages_read;
    out->parquet_pages_skipped += s->parquet_pages_skipped;
    out->kafka_producers += s->kafka_producers;
    out->task_time_us += s->task_time_us;
    out->duration_us += s->duration_us;
    if (s->event_time_ms > 0 && (out->event_time_ms == 0 || s->event_time_ms < out->event_time_ms))
      out->event_time_ms = s->event_time_ms;
  }
}
