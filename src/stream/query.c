/* query.c — the micro-batch engine: a query's thread asks its source for new
 * offsets at each trigger, writes them to the offset log, runs the batch as
 * one job on the session through the transformation into the sink, then
 * writes the commit log. On start it recovers: a logged batch without a
 * commit runs again with the same offsets and batch id. A source or sink
 * that is unavailable (PT_EIO) is retried with backoff up to
 * stream.max_retry_time; any other failure stops the query with its message.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api_int.h"
#include "stream/stream_int.h"

struct pt_stream_query {
  pt_session *session;           /* borrowed: close the query before the session */
  pt_stream_source src;          /* owned (its free is called) */
  pt_stream_sink sink;           /* owned */
  pt_stream_options opts;        /* copy; checkpoint_dir and name point to ours */
  char *name;                    /* owned: the progress lines' label */
  pt__ckpt ckpt;                 /* opened by the query thread */
  int64_t max_retry_us, poll_us; /* from the session's configuration */
  int64_t keep;                  /* stream.progress_keep */
  pthread_t thread;
  int thread_started;
  pthread_mutex_t mu;            /* guards everything below */
  pthread_cond_t cv;             /* stop asked, state changed */
  int stop;                      /* stop asked */
  int ended;                     /* the thread is done */
  pt_stream_status status;
  pt_error failure;              /* code != 0 once failed */
  pt_stream_progress *ring;      /* keep entries, by ring_n */
  int64_t ring_n;                /* batches recorded */
};

void pt_stream_options_init(pt_stream_options *opts) {
  memset(opts, 0, sizeof *opts);
  opts->trigger = PT_TRIGGER_INTERVAL;
  opts->progress = -1;
}

static void set_state(pt_stream_query *q, pt_stream_state st, const char *fmt, ...)
    PT_PRINTF(3, 4);
static void set_state(pt_stream_query *q, pt_stream_state st, const char *fmt, ...) {
  pthread_mutex_lock(&q->mu);
  q->status.state = st;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(q->status.message, sizeof q->status.message, fmt, ap);
  va_end(ap);
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
}

static int stopping(pt_stream_query *q) {
  pthread_mutex_lock(&q->mu);
  int s = q->stop;
  pthread_mutex_unlock(&q->mu);
  return s;
}

/* Sleeps until the monotonic time `until` (µs) or a stop; 1 if stopped. */
static int sleep_until(pt_stream_query *q, int64_t until) {
  pthread_mutex_lock(&q->mu);
  while (!q->stop) {
    int64_t now = pt__stream_mono_us();
    if (now >= until) break;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wait = until - now;
    ts.tv_sec += wait / 1000000;
    ts.tv_nsec += (wait % 1000000) * 1000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&q->cv, &q->mu, &ts);
  }
  int s = q->stop;
  pthread_mutex_unlock(&q->mu);
  return s;
}

static int retryable(int rc) { return rc == PT_EIO || rc == PT_ETIMEDOUT; }

/* Backoff state for one unavailable spell. */
typedef struct backoff {
  int64_t since_us;  /* first failure of the spell; 0: none */
  int64_t delay_us;
} backoff;

/* After a retryable failure: waits and returns PT_OK to try again, or the
 * failure (with its message widened) once stream.max_retry_time passed or
 * the query was stopped (PT_ECANCELED). */
static int back_off(pt_stream_query *q, backoff *b, int rc, const char *what, pt_error *err) {
  int64_t now = pt__stream_mono_us();
  if (!b->since_us) {
    b->since_us = now;
    b->delay_us = 100000;
  }
  if (now - b->since_us >= q->max_retry_us)
    return pt__error_prefix(err, rc,
                            "stream: %s unavailable for %" PRId64 " s (stream.max_retry_time); "
                            "check that it is up and reachable, or raise stream.max_retry_time; "
                            "last error: ",
                            what, (now - b->since_us) / 1000000);
  pthread_mutex_lock(&q->mu);
  q->status.retries++;
  q->status.state = PT_STREAM_RETRYING;
  snprintf(q->status.message, sizeof q->status.message, "%s unavailable, retrying in %" PRId64
           " ms: %.600s", what, b->delay_us / 1000, err ? err->message : "");
  pthread_mutex_unlock(&q->mu);
  int64_t until = now + b->delay_us;
  if (until > b->since_us + q->max_retry_us) until = b->since_us + q->max_retry_us;
  b->delay_us = b->delay_us * 2 > 5000000 ? 5000000 : b->delay_us * 2;
  if (sleep_until(q, until)) return pt__errorf(err, PT_ECANCELED, "stream: stopped");
  return PT_OK;
}

static void copy_offsets(char *dst, size_t cap, const char *src) {
  if (!src) src = "";
  size_t n = strlen(src);
  if (n < cap) {
    memcpy(dst, src, n + 1);
  } else {
    memcpy(dst, src, cap - 4);
    memcpy(dst + cap - 4, "...", 4);
  }
}

/* Rows the batch's first stage read, from the job the sink ran on ds, the
 * oldest event time its source saw (Kafka record timestamps; ms, -1:
 * none) and the Kafka producers its tasks made (-1: unknown). */
static int64_t input_rows(pt_session *s, int64_t since_job, int64_t *event_ms,
                          int64_t *producers) {
  *event_ms = -1;
  *producers = -1;
  pt_job_stats *st;
  if (pt_session_job_stats(s, 0, &st, NULL) != PT_OK) return -1;
  int64_t rows = -1;
  if (st->job_id > since_job && st->n_stages > 0) {
    rows = 0;
    *producers = 0;
    for (int64_t i = 0; i < st->n_stages; i++) *producers += st->stages[i].kafka_producers;
    for (int64_t i = 0; i < st->n_stages; i++)
      if (st->stages[i].stage_id == st->stages[0].stage_id) {
        const pt_stage_stats *g = &st->stages[i];
        rows += g->rows_read;
        if (g->event_time_ms > 0 && (*event_ms < 0 || g->event_time_ms < *event_ms))
          *event_ms = g->event_time_ms;
      }
  }
  pt_job_stats_free(st);
  return rows;
}

static int64_t last_job_id(pt_session *s) {
  pt_job_stats *st;
  if (pt_session_job_stats(s, 0, &st, NULL) != PT_OK) return 0;
  int64_t id = st->job_id;
  pt_job_stats_free(st);
  return id;
}

static void record(pt_stream_query *q, const pt_stream_progress *p) {
  pthread_mutex_lock(&q->mu);
  q->ring[q->ring_n % q->keep] = *p;
  q->ring_n++;
  q->status.batches_committed++;
  q->status.next_batch_id = p->batch_id + 1;
  pthread_mutex_unlock(&q->mu);
  int show = q->opts.progress < 0 ? isatty(2) : q->opts.progress;
  if (!show) return;
  char rows[32] = "?", lat[48] = "";
  if (p->input_rows >= 0) snprintf(rows, sizeof rows, "%" PRId64, p->input_rows);
  if (p->latency_us >= 0)
    snprintf(lat, sizeof lat, ", latency %.0f ms", p->latency_us / 1000.0);
  fprintf(stderr, "[stream %s] batch %" PRId64 ": %s rows in %.0f ms (%.0f rows/s)%s%s, "
          "offsets %s\n", q->name, p->batch_id, rows, p->duration_us / 1000.0, p->rows_per_s,
          lat, p->recovered ? ", recovered" : "", p->end_offsets);
}

/* Runs batch `id` over [start, end) into the sink, retrying what is
 * retryable; then the commit log. */
static int run_batch(pt_stream_query *q, int64_t id, const char *start, const char *end,
                     int recovered, pt_error *err) {
  pt_stream_progress p;
  memset(&p, 0, sizeof p);
  p.batch_id = id;
  p.recovered = recovered;
  copy_offsets(p.start_offsets, sizeof p.start_offsets, start);
  copy_offsets(p.end_offsets, sizeof p.end_offsets, end);
  int64_t t0 = pt__stream_mono_us();
  backoff b = {0};
  int rc;
  for (;;) {
    p.attempts++;
    set_state(q, PT_STREAM_RUNNING, "running batch %" PRId64, id);
    pt_stream_batch batch = {.batch_id = id, .records = -1, .event_time_us = -1};
    pt_dataset *ds = NULL, *out = NULL;
    int64_t since = last_job_id(q->session);
    rc = q->src.plan_batch(q->src.state, q->session, start, end, &batch, &ds, err);
    if (rc == PT_OK && q->opts.transform) {
      rc = q->opts.transform(ds, q->opts.transform_arg, &out, err);
      ds = NULL; /* the transform's */
      if (rc == PT_OK && !out)
        rc = pt__errorf(err, PT_EINVAL, "stream: the transformation returned no dataset");
      if (rc != PT_OK) pt__error_prefix(err, rc, "stream: batch %" PRId64 ": transformation: ", id);
    } else {
      out = ds;
    }
    int64_t rows = -1;
    if (rc == PT_OK) {
      rc = q->sink.write_batch(q->sink.state, out, id, &rows, err); /* takes out */
      out = NULL;
    }
    pt_dataset_free(out);
    if (rc == PT_OK) {
      int64_t event_ms;
      p.records = batch.records;
      p.output_rows = rows;
      p.input_rows = input_rows(q->session, since, &event_ms, &p.kafka_producers);
      /* the source's own time (files) or the records' (Kafka) */
      p.event_time_us = batch.event_time_us >= 0 ? batch.event_time_us
                        : event_ms >= 0         ? event_ms * 1000
                                                : -1;
      break;
    }
    if (!retryable(rc)) return rc;
    if (back_off(q, &b, rc, q->sink.name, err) != PT_OK) return err ? err->code : PT_EIO;
  }
  if ((rc = pt__ckpt_write_commit(&q->ckpt, id, err)) != PT_OK) return rc;
  int64_t t1 = pt__stream_mono_us();
  p.committed_us = pt__stream_wall_us();
  p.latency_us = p.event_time_us >= 0 ? p.committed_us - p.event_time_us : -1;
  p.duration_us = t1 - t0;
  p.rows_per_s = p.input_rows > 0 && p.duration_us > 0 ? p.input_rows * 1e6 / p.duration_us : 0;
  if (q->src.commit && (rc = q->src.commit(q->src.state, end, err)) != PT_OK) return rc;
  record(q, &p);
  if (id >= 100) pt__ckpt_purge(&q->ckpt, id - 99); /* Spark keeps 100 too */
  return PT_OK;
}

/* A source call, retried while it says unavailable. */
static int source_offsets(pt_stream_query *q, const char *start, const char *bound, char **latest,
                          char **end, pt_error *err) {
  backoff b = {0};
  for (;;) {
    int rc = PT_OK;
    *end = NULL;
    if (!bound) {
      *latest = NULL;
      rc = q->src.latest_offsets(q->src.state, latest, err);
      if (rc == PT_OK && !*latest)
        rc = pt__errorf(err, PT_EINVAL, "stream: source '%s' gave no offsets", q->src.name);
    }
    if (rc == PT_OK)
      rc = q->src.next_offsets(q->src.state, start, bound ? bound : *latest, end, err);
    if (rc == PT_OK && !*end)
      rc = pt__errorf(err, PT_EINVAL, "stream: source '%s' gave no end offsets", q->src.name);
    if (rc == PT_OK) return PT_OK;
    if (!bound) {
      free(*latest);
      *latest = NULL;
    }
    free(*end);
    *end = NULL;
    if (!retryable(rc)) return rc;
    if ((rc = back_off(q, &b, rc, q->src.name, err)) != PT_OK) return rc;
  }
}

static int run(pt_stream_query *q, pt_error *err) {
  int rc;
  char srcdir[4200];
  snprintf(srcdir, sizeof srcdir, "%s/sources/0", q->ckpt.dir);
  if (q->src.open) {
    backoff b = {0};
    while ((rc = q->src.open(q->src.state, q->session, srcdir, err)) != PT_OK) {
      if (!retryable(rc)) return rc;
      if ((rc = back_off(q, &b, rc, q->src.name, err)) != PT_OK) return rc;
    }
  }
  int64_t last;
  int committed;
  PT_RETURN_NOT_OK(pt__ckpt_last(&q->ckpt, &last, &committed, err));
  char *start = NULL, *end = NULL;
  int64_t id = 0;
  if (last >= 0) {
    PT_RETURN_NOT_OK(pt__ckpt_read_offsets(&q->ckpt, last, &start, &end, err));
    if (committed) {
      pt__free(start);
      start = end;
      end = NULL;
      id = last + 1;
    } else {
      id = last;
    }
  } else if (q->src.initial_offsets) {
    char *first = NULL;
    backoff b = {0};
    while ((rc = q->src.initial_offsets(q->src.state, &first, err)) != PT_OK || !first) {
      if (rc == PT_OK) rc = pt__errorf(err, PT_EINVAL, "stream: source '%s' gave no initial "
                                       "offsets", q->src.name);
      if (!retryable(rc)) return rc;
      if ((rc = back_off(q, &b, rc, q->src.name, err)) != PT_OK) return rc;
    }
    start = pt__strdup(first);
    free(first);
    if (!start) return pt__errorf(err, PT_ENOMEM, "stream: out of memory");
  }
  pthread_mutex_lock(&q->mu);
  q->status.next_batch_id = id;
  pthread_mutex_unlock(&q->mu);
  /* start, end: pt__malloc'd from here on (the source's are copied) */
  if (end) { /* the batch the last run logged but never committed */
    rc = run_batch(q, id, start, end, 1, err);
    if (rc != PT_OK) goto done;
    pt__free(start);
    start = end;
    end = NULL;
    id++;
  }
  char *bound = NULL; /* available-now: the offsets available at start */
  int64_t next_trigger = pt__stream_mono_us();
  for (;;) {
    if (stopping(q)) break;
    if (q->opts.trigger == PT_TRIGGER_INTERVAL && q->opts.interval_ms > 0) {
      set_state(q, PT_STREAM_WAITING, "waiting for the next trigger");
      if (sleep_until(q, next_trigger)) break;
      int64_t now = pt__stream_mono_us(), step = q->opts.interval_ms * 1000;
      next_trigger += step;
      if (next_trigger < now) next_trigger = now; /* late: the next one at once */
    }
    char *latest = NULL, *e = NULL;
    rc = source_offsets(q, start, bound, &latest, &e, err);
    if (rc != PT_OK) {
      if (rc == PT_ECANCELED) rc = PT_OK;
      break;
    }
    if (q->opts.trigger == PT_TRIGGER_AVAILABLE_NOW && !bound) {
      bound = latest;
      latest = NULL;
    }
    free(latest);
    if (start && strcmp(start, e) == 0) { /* nothing new */
      free(e);
      if (q->opts.trigger == PT_TRIGGER_AVAILABLE_NOW) break;
      set_state(q, PT_STREAM_WAITING, "waiting for data");
      if (q->opts.trigger == PT_TRIGGER_CONTINUOUS ||
          !(q->opts.trigger == PT_TRIGGER_INTERVAL && q->opts.interval_ms > 0))
        if (sleep_until(q, pt__stream_mono_us() + q->poll_us)) break;
      continue;
    }
    end = pt__strdup(e);
    free(e);
    if (!end) {
      rc = pt__errorf(err, PT_ENOMEM, "stream: out of memory");
      break;
    }
    /* The offset log first: a crash from here on reruns this very batch. */
    if ((rc = pt__ckpt_write_offsets(&q->ckpt, id, start, end, err)) != PT_OK) break;
    if ((rc = run_batch(q, id, start, end, 0, err)) != PT_OK) break;
    pt__free(start);
    start = end;
    end = NULL;
    id++;
  }
  free(bound);
done:
  pt__free(start);
  pt__free(end);
  return rc;
}

static void *query_main(void *arg) {
  pt_stream_query *q = arg;
  pt_error err = {0};
  int rc = run(q, &err);
  pthread_mutex_lock(&q->mu);
  if (rc == PT_ECANCELED && q->stop) rc = PT_OK; /* stopped while backing off */
  if (rc != PT_OK) {
    if (!err.message[0]) snprintf(err.message, sizeof err.message, "%s", pt_strerror(rc));
    err.code = rc;
    q->failure = err;
    q->status.state = PT_STREAM_FAILED;
    snprintf(q->status.message, sizeof q->status.message, "%s", err.message);
  } else {
    q->status.state = PT_STREAM_STOPPED;
    snprintf(q->status.message, sizeof q->status.message, "%s",
             q->stop ? "stopped" : "finished: everything available at start was processed");
  }
  q->ended = 1;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
  /* the checkpoint lock goes as soon as the query ends */
  pt__ckpt_close(&q->ckpt);
  return NULL;
}

static void drop(pt_stream_source *src, pt_stream_sink *sink) {
  if (src && src->free) src->free(src->state);
  if (sink && sink->free) sink->free(sink->state);
  if (src) memset(src, 0, sizeof *src);
  if (sink) memset(sink, 0, sizeof *sink);
}

int pt_stream_start(pt_session *s, pt_stream_source *source, pt_stream_sink *sink,
                    const pt_stream_options *opts, pt_stream_query **out, pt_error *err) {
  if (out) *out = NULL;
  if (!s || !source || !sink || !opts || !out) {
    drop(source, sink);
    return pt__errorf(err, PT_EINVAL, "stream_start: session, source, sink, opts and out must "
                                      "not be NULL");
  }
  if (!source->latest_offsets || !source->next_offsets || !source->plan_batch ||
      !sink->write_batch) {
    drop(source, sink);
    return pt__errorf(err, PT_EINVAL, "stream_start: the source needs latest_offsets, "
                                      "next_offsets and plan_batch, the sink write_batch");
  }
  if (!opts->checkpoint_dir || !*opts->checkpoint_dir) {
    drop(source, sink);
    return pt__errorf(err, PT_EINVAL, "stream_start: a checkpoint directory is required (it "
                                      "holds the offsets that make batches exactly once)");
  }
  if ((unsigned)opts->trigger > PT_TRIGGER_CONTINUOUS || opts->interval_ms < 0) {
    drop(source, sink);
    return pt__errorf(err, PT_EINVAL, "stream_start: unknown trigger %d or negative interval",
                      (int)opts->trigger);
  }
  pt_stream_query *q = pt__calloc(1, sizeof *q);
  if (!q) {
    drop(source, sink);
    return pt__errorf(err, PT_ENOMEM, "stream_start: out of memory");
  }
  q->session = s;
  q->src = *source;
  q->sink = *sink;
  memset(source, 0, sizeof *source);
  memset(sink, 0, sizeof *sink);
  q->opts = *opts;
  q->max_retry_us = pt__conf_ms(s->conf, "stream.max_retry_time") * 1000;
  q->poll_us = pt__conf_ms(s->conf, "stream.poll_interval") * 1000;
  q->keep = pt__conf_int(s->conf, "stream.progress_keep");
  q->opts.checkpoint_dir = pt__strdup(opts->checkpoint_dir);
  q->name = opts->name ? pt__strdup(opts->name) : NULL;
  q->ring = pt__calloc((size_t)q->keep, sizeof *q->ring);
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->cv, NULL);
  q->ckpt.lock_fd = -1;
  q->status.state = PT_STREAM_STARTING;
  snprintf(q->status.message, sizeof q->status.message, "starting");
  if (!q->opts.checkpoint_dir || (opts->name && !q->name) || !q->ring) {
    pt_stream_query_free(q);
    return pt__errorf(err, PT_ENOMEM, "stream_start: out of memory");
  }
  /* here, so that a checkpoint in use or unusable fails the start itself */
  int rc = pt__ckpt_open(q->opts.checkpoint_dir, &q->ckpt, err);
  if (rc == PT_OK && !q->name && !(q->name = pt__strdup(q->ckpt.id)))
    rc = pt__errorf(err, PT_ENOMEM, "stream_start: out of memory");
  if (rc == PT_OK && q->sink.open) rc = q->sink.open(q->sink.state, s, q->ckpt.id, err);
  if (rc != PT_OK) {
    pt_stream_query_free(q);
    return rc;
  }
  if (pthread_create(&q->thread, NULL, query_main, q) != 0) {
    pt_stream_query_free(q);
    return pt__errorf(err, PT_ENOMEM, "stream_start: cannot start the query's thread");
  }
  q->thread_started = 1;
  *out = q;
  return PT_OK;
}

int pt_stream_query_status(pt_stream_query *q, pt_stream_status *out, pt_error *err) {
  if (!q || !out) return pt__errorf(err, PT_EINVAL, "stream status: query and out must not be NULL");
  pthread_mutex_lock(&q->mu);
  *out = q->status;
  pthread_mutex_unlock(&q->mu);
  return PT_OK;
}

int pt_stream_query_progress(pt_stream_query *q, pt_stream_progress *out, int64_t cap, int64_t *n,
                             pt_error *err) {
  if (!q || !n || (cap > 0 && !out))
    return pt__errorf(err, PT_EINVAL, "stream progress: query, out and n must not be NULL");
  pthread_mutex_lock(&q->mu);
  int64_t have = q->ring_n < q->keep ? q->ring_n : q->keep;
  *n = have;
  int64_t first = q->ring_n - have;
  for (int64_t i = 0; i < have && i < cap; i++) out[i] = q->ring[(first + i) % q->keep];
  pthread_mutex_unlock(&q->mu);
  return PT_OK;
}

const char *pt_stream_query_id(const pt_stream_query *q) { return q ? q->ckpt.id : ""; }

int pt_stream_query_await(pt_stream_query *q, int64_t timeout_ms, int *ended, pt_error *err) {
  if (!q) return pt__errorf(err, PT_EINVAL, "stream await: query must not be NULL");
  pthread_mutex_lock(&q->mu);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (timeout_ms >= 0) {
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
  }
  while (!q->ended) {
    if (timeout_ms < 0) {
      pthread_cond_wait(&q->cv, &q->mu);
    } else if (pthread_cond_timedwait(&q->cv, &q->mu, &ts) == ETIMEDOUT) {
      break;
    }
  }
  if (ended) *ended = q->ended;
  int rc = PT_OK;
  if (q->ended && q->failure.code != PT_OK) {
    rc = q->failure.code;
    if (err) *err = q->failure;
  }
  pthread_mutex_unlock(&q->mu);
  return rc;
}

int pt_stream_query_stop(pt_stream_query *q, pt_error *err) {
  if (!q) return pt__errorf(err, PT_EINVAL, "stream stop: query must not be NULL");
  pthread_mutex_lock(&q->mu);
  q->stop = 1;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
  if (q->thread_started) {
    pthread_join(q->thread, NULL);
    q->thread_started = 0;
  }
  return PT_OK;
}

void pt_stream_query_free(pt_stream_query *q) {
  if (!q) return;
  pt_stream_query_stop(q, NULL);
  drop(&q->src, &q->sink);
  pt__ckpt_close(&q->ckpt);
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->cv);
  pt__free((char *)q->opts.checkpoint_dir);
  pt__free(q->name);
  pt__free(q->ring);
  pt__free(q);
}
