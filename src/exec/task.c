/* task.c — preparing stage definitions (a private copy, schemas decoded,
 * functions looked up once per stage rather than per task) and running one
 * task: open the source, pass each batch through the transforms into the
 * sink, and turn the outcome into a TaskStatus.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/registry.h"
#include "exec/exec_int.h"

/* ------------------------------------------------------------------------ */
/* Stages */

static void stage_free(pt__stage *s) {
  if (s == NULL) return;
  if (s->ops != NULL)
    for (size_t i = 0; i < s->def->n_ops; i++) {
      struct ArrowSchema *os = &s->ops[i].out_schema;
      if (os->release != NULL) os->release(os);
      pt__free(s->ops[i].error);
      pt_parquet_filter_free(s->ops[i].predicate);
    }
  pt__free(s->ops);
  if (s->source_schema.release != NULL) s->source_schema.release(&s->source_schema);
  pt__msg_free(s->def ? &s->def->base : NULL);
  pt__free(s);
}

static int op_error(pt__op_prep *op, pt_error *e) {
  op->error = pt__strdup(e->message);
  return op->error != NULL ? PT_OK : PT_ENOMEM;
}

int pt__stage_new(const Protium__StageDef *def, pt__stage **out, pt_error *err) {
  *out = NULL;
  int rc = PT_OK;
  uint8_t *packed = NULL;
  pt__stage *s = pt__calloc(1, sizeof *s);
  if (s == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory for a stage");
  atomic_init(&s->refs, 1);
  /* A private copy: the LaunchBatch it came in is freed after dispatch. */
  size_t size = protobuf_c_message_get_packed_size(&def->base);
  packed = pt__malloc(size ? size : 1);
  if (packed == NULL) {
    rc = pt__errorf(err, PT_ENOMEM, "out of memory for a stage");
    goto fail;
  }
  protobuf_c_message_pack(&def->base, packed);
  s->def = protium__stage_def__unpack(&pt__pb_allocator, size, packed);
  if (s->def == NULL) {
    rc = pt__errorf(err, PT_ENOMEM, "out of memory copying a stage");
    goto fail;
  }
  s->ops = pt__calloc(s->def->n_ops ? s->def->n_ops : 1, sizeof *s->ops);
  if (s->ops == NULL) {
    rc = pt__errorf(err, PT_ENOMEM, "out of memory for a stage");
    goto fail;
  }
  if (s->def->schema.len > 0) {
    pt_error e;
    if (pt__schema_from_ipc(s->def->schema.data, s->def->schema.len, &s->source_schema, &e) !=
        PT_OK) {
      pt__error_prefix(&e, PT_EFORMAT, "stage %lld: source schema: ",
                       (long long)s->def->stage_id);
      if (s->def->n_ops > 0 && op_error(&s->ops[0], &e) != PT_OK) {
        rc = pt__errorf(err, PT_ENOMEM, "out of memory");
        goto fail;
      }
    }
  }
  for (size_t i = 0; i < s->def->n_ops; i++) {
    const Protium__Op *op = s->def->ops[i];
    pt__op_prep *prep = &s->ops[i];
    pt_error e = {0};
    int bad = 0;
    const char *name = NULL, *what = NULL;
    const ProtobufCBinaryData *out_schema = NULL;
    if (op->op_case == PROTIUM__OP__OP_MAP) {
      name = op->map->fn, what = "map", out_schema = &op->map->out_schema;
    } else if (op->op_case == PROTIUM__OP__OP_MAP_PARTITIONS) {
      name = op->map_partitions->fn, what = "map_partitions";
      out_schema = &op->map_partitions->out_schema;
    } else if (op->op_case == PROTIUM__OP__OP_FILTER) {
      name = op->filter->fn, what = "filter";
    } else if (op->op_case == PROTIUM__OP__OP_EXCLUDE || op->op_case == PROTIUM__OP__OP_REQUIRE) {
      const Protium__ParquetFilter *m = op->op_case == PROTIUM__OP__OP_EXCLUDE
                                        ? op->exclude->predicate : op->require->predicate;
      const char *opn = op->op_case == PROTIUM__OP__OP_EXCLUDE ? "exclude" : "require";
      if (!m) {
        pt__errorf(&e, PT_EINVAL, "%s: no predicate", opn);
        bad = 1;
      } else if (pt__filter_from_msg(m, &prep->predicate, &e) != PT_OK) {
        pt__error_prefix(&e, PT_EINVAL, "%s: ", opn);
        bad = 1;
      }
    }
    if (name && pt__fn_lookup_name(name, &prep->fn, &e) != PT_OK) {
      pt__error_prefix(&e, PT_EINVAL, "%s '%s': ", what, name);
      bad = 1;
    }
    if (!bad && out_schema && out_schema->len > 0 &&
        pt__schema_from_ipc(out_schema->data, out_schema->len, &prep->out_schema, &e) != PT_OK) {
      pt__error_prefix(&e, PT_EFORMAT, "%s '%s': output schema: ", what, name);
      bad = 1;
    }
    if (bad && prep->error == NULL && op_error(prep, &e) != PT_OK) {
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      goto fail;
    }
  }
  pt__free(packed);
  *out = s;
  return PT_OK;
fail:
  pt__free(packed);
  stage_free(s);
  return rc;
}

void pt__stage_ref(pt__stage *s) {
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void pt__stage_unref(pt__stage *s) {
  if (s != NULL && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
    stage_free(s);
}

int64_t pt__stage_id(const pt__stage *s) { return s->def->stage_id; }
int64_t pt__stage_attempt(const pt__stage *s) { return s->def->stage_attempt; }

/* ------------------------------------------------------------------------ */
/* Statuses */

static void free_string(char **p) {
  if (*p != NULL && *p != protobuf_c_empty_string) pt__free(*p);
  *p = (char *)protobuf_c_empty_string;
}

void pt__task_status_clear(Protium__TaskStatus *st) {
  free_string(&st->error);
  free_string(&st->output_path);
  pt__free(st->result_inline.data);
  st->result_inline.data = NULL;
  st->result_inline.len = 0;
  if (st->shuffle != NULL) {
    free_string(&st->shuffle->path);
    pt__free(st->shuffle->segment_offsets);
    pt__free(st->shuffle->segment_rows);
    pt__free(st->shuffle);
    st->shuffle = NULL;
  }
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------------ */
/* Running a task */

/* The schema after op i (the sink's input when i is the last transform). */
static const struct ArrowSchema *schema_after(pt__stage *s, size_t i,
                                              const struct ArrowSchema *in) {
  Protium__Op__OpCase c = s->def->ops[i]->op_case;
  if ((c == PROTIUM__OP__OP_MAP || c == PROTIUM__OP__OP_MAP_PARTITIONS) &&
      s->ops[i].out_schema.release != NULL)
    return &s->ops[i].out_schema;
  return in;
}

/* Passes *batch (schema `schema`) through the transforms [from, to). */
static int apply_ops(pt__task *t, size_t from, size_t to, const struct ArrowSchema *schema,
                     struct ArrowArray *batch, pt_error *err) {
  const Protium__StageDef *def = t->stage->def;
  for (size_t i = from; i < to; i++) {
    const Protium__Op *op = def->ops[i];
    const struct ArrowSchema *next = schema_after(t->stage, i, schema);
    int rc;
    if (op->op_case == PROTIUM__OP__OP_MAP)
      rc = pt__op_map(t, (int)i, schema, next, batch, err);
    else if (op->op_case == PROTIUM__OP__OP_FILTER)
      rc = pt__op_filter(t, (int)i, schema, batch, err);
    else if (op->op_case == PROTIUM__OP__OP_EXCLUDE)
      rc = pt__op_exclude(t, (int)i, schema, batch, err);
    else if (op->op_case == PROTIUM__OP__OP_REQUIRE)
      rc = pt__op_require(t, (int)i, schema, batch, err);
    else {
      batch->release(batch);
      rc = pt__errorf(err, PT_EINVAL, "operator %d cannot be a transformation",
                      (int)op->op_case);
    }
    if (rc != PT_OK) return rc;
    schema = next;
  }
  return PT_OK;
}

/* A partition function's two ends: the stream it reads (the source and
 * the transforms before it) and where what it emits goes (the transforms
 * after it, then the sink). */
typedef struct partition_io {
  pt__task *t;
  size_t k;                            /* index of the partition function's op */
  pt__source *src;
  const struct ArrowSchema *in_schema; /* entering op k */
  const struct ArrowSchema *out_schema; /* leaving op k */
  pt__sink *sink;
  pt_error in_err;                     /* the input's failure, kept for the status */
  int in_rc;
  pt_error out_err;                    /* the first failed emit: the task fails with it */
  int out_rc;
} partition_io;

static int in_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  partition_io *io = s->private_data;
  pt_error err = {0};
  if (pt_schema_copy(io->in_schema, out, &err) != PT_OK) {
    io->in_err = err;
    return ENOMEM;
  }
  return 0;
}

static int in_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  partition_io *io = s->private_data;
  memset(out, 0, sizeof *out);
  if (io->in_rc != PT_OK) return EIO; /* stays failed */
  pt_error err = {0};
  int rc = pt__source_next(io->src, out, &err);
  if (rc == PT_OK && out->release != NULL)
    rc = apply_ops(io->t, 1, io->k, &io->src->schema, out, &err);
  if (rc != PT_OK) {
    memset(out, 0, sizeof *out);
    io->in_rc = rc;
    io->in_err = err;
    return EIO;
  }
  return 0;
}

static const char *in_last_error(struct ArrowArrayStream *s) {
  partition_io *io = s->private_data;
  return io->in_err.message[0] ? io->in_err.message : NULL;
}

static void in_release(struct ArrowArrayStream *s) { s->release = NULL; }

static int emit_batch(void *arg, struct ArrowArray *batch, pt_error *err) {
  partition_io *io = arg;
  const Protium__StageDef *def = io->t->stage->def;
  int rc = pt_array_validate(io->out_schema, batch, err);
  if (rc != PT_OK) {
    batch->release(batch);
    return pt__error_prefix(err, rc, "emit: the batch does not match the output schema of "
                            "map_partitions '%s': ", def->ops[io->k]->map_partitions->fn);
  }
  if (io->out_rc != PT_OK) {
    batch->release(batch);
    *err = io->out_err;
    return io->out_rc;
  }
  rc = apply_ops(io->t, io->k + 1, def->n_ops - 1, io->out_schema, batch, err);
  if (rc == PT_OK) rc = pt__sink_consume(io->sink, batch, err);
  if (rc != PT_OK) {
    io->out_rc = rc;
    io->out_err = *err;
  }
  return rc;
}

static int run_partition_fn(pt__task *t, size_t k, pt__source *src,
                            const struct ArrowSchema *in_schema, pt__sink *sink, pt_error *err) {
  const Protium__MapPartitionsOp *m = t->stage->def->ops[k]->map_partitions;
  partition_io io = {.t = t, .k = k, .src = src, .in_schema = in_schema,
                     .out_schema = schema_after(t->stage, k, in_schema), .sink = sink};
  struct ArrowArrayStream in = {.get_schema = in_get_schema, .get_next = in_get_next,
                                .get_last_error = in_last_error, .release = in_release,
                                .private_data = &io};
  t->emit = emit_batch;
  t->emit_arg = &io;
  pt_partition_fn fn = (pt_partition_fn)t->stage->ops[k].fn;
  pt_error uerr = {0};
  int rc = fn(&t->ctx, &in, m->arg.data, m->arg.len, &uerr);
  t->emit = NULL;
  t->emit_arg = NULL;
  if (rc == PT_OK && io.out_rc != PT_OK) {
    *err = io.out_err;
    return io.out_rc;
  }
  if (rc == PT_OK) return PT_OK;
  /* The input's own failure (a lost shuffle block, say) is the cause. */
  if (io.in_rc != PT_OK) {
    *err = io.in_err;
    return io.in_rc;
  }
  return pt__errorf(err, rc, "map_partitions '%s': %s", m->fn,
                    uerr.message[0] ? uerr.message : "failed without a message");
}

/* PROTIUM_FAULT_INLINE_RESULT (tests): what the status carries instead of
 * the result: "truncate" (its first half), "garbage" (its bytes inverted),
 * "oversize" (PT__INLINE_RESULT_MAX + 1 bytes). */
static void inline_fault(Protium__TaskStatus *st) {
  const char *f = getenv("PROTIUM_FAULT_INLINE_RESULT");
  if (!f) return;
  if (strcmp(f, "truncate") == 0) st->result_inline.len /= 2;
  if (strcmp(f, "garbage") == 0)
    for (size_t i = 0; i < st->result_inline.len; i++) st->result_inline.data[i] ^= 0xff;
  if (strcmp(f, "oversize") == 0) {
    uint8_t *big = pt__calloc(1, PT__INLINE_RESULT_MAX + 1);
    if (!big) return;
    memcpy(big, st->result_inline.data, st->result_inline.len);
    pt__free(st->result_inline.data);
    st->result_inline.data = big;
    st->result_inline.len = PT__INLINE_RESULT_MAX + 1;
  }
}

/* A result the driver would fetch from the block server: one that small
 * goes in the status instead, sparing the driver a connection, a handshake
 * and a request per task (net.results, src/sched/results.c). The file was
 * written whole first, as it cannot be known before the last batch whether
 * it stays small; it is in the page cache, and read back and removed here. */
static int result_inline(Protium__TaskStatus *st, pt_error *err) {
  if (!st->output_path || !*st->output_path || st->bytes_written <= 0 ||
      st->bytes_written > PT__INLINE_RESULT)
    return PT_OK;
  int fd = open(st->output_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return pt__errorf(err, PT_EIO, "cannot open '%s': %s", st->output_path, strerror(errno));
  size_t n = (size_t)st->bytes_written, got = 0;
  uint8_t *data = pt__malloc(n);
  int rc = data ? PT_OK : pt__errorf(err, PT_ENOMEM, "out of memory for a %zu-byte result", n);
  while (rc == PT_OK && got < n) {
    ssize_t k = read(fd, data + got, n - got);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0)
      rc = pt__errorf(err, PT_EIO, "cannot read '%s': %s", st->output_path,
                      k < 0 ? strerror(errno) : "it is shorter than it was");
    else
      got += (size_t)k;
  }
  close(fd);
  if (rc != PT_OK) {
    pt__free(data);
    return rc;
  }
  unlink(st->output_path);
  free_string(&st->output_path);
  st->result_inline.data = data;
  st->result_inline.len = n;
  inline_fault(st);
  return PT_OK;
}

static int run(pt__task *t, Protium__TaskStatus *st, pt_error *err) {
  const Protium__StageDef *def = t->stage->def;
  size_t n_ops = def->n_ops;
  if (n_ops < 2)
    return pt__errorf(err, PT_EINVAL,
                      "stage %lld has %zu operators; it needs a source and a sink",
                      (long long)def->stage_id, n_ops);
  for (size_t i = 0; i < n_ops; i++)
    if (t->stage->ops[i].error != NULL)
      return pt__errorf(err, PT_EINVAL, "%s", t->stage->ops[i].error);
  const Protium__Op *src_op = def->ops[0], *sink_op = def->ops[n_ops - 1];

  /* Counting a range needs no rows. */
  if (n_ops == 2 && src_op->op_case == PROTIUM__OP__OP_RANGE &&
      sink_op->op_case == PROTIUM__OP__OP_COUNT) {
    int64_t lo, hi;
    pt__range_bounds(src_op->range, t->launch->partition, &lo, &hi);
    st->rows = st->count = st->rows_read = hi - lo;
    return PT_OK;
  }
  /* Nor counting a PERMISSIVE CSV read, where every record is a row: the
   * records are counted by the quote-aware scan alone; nor a FAILFAST one,
   * whose records' structure the same scan checks (a value that does not
   * convert fails only a read that converts it). DROPMALFORMED parses: a
   * record with a bad value is not counted there. */
  if (n_ops == 2 && src_op->op_case == PROTIUM__OP__OP_READ_CSV &&
      sink_op->op_case == PROTIUM__OP__OP_COUNT &&
      (src_op->read_csv->mode == PT_CSV_PERMISSIVE || src_op->read_csv->mode == PT_CSV_FAILFAST)) {
    int64_t rows = 0, bytes = 0;
    PT_RETURN_NOT_OK(pt__csv_count_rows(t, src_op, &rows, &bytes, err));
    st->rows = st->count = st->rows_read = rows;
    st->bytes_read = bytes;
    return PT_OK;
  }

  pt__source src;
  pt__sink sink;
  memset(&sink, 0, sizeof sink);
  PT_RETURN_NOT_OK(pt__source_open(t, src_op, &src, err));
  int rc = PT_OK;
  size_t k = 0; /* the partition function's op, if any */
  const struct ArrowSchema *sink_schema = &src.schema, *k_schema = NULL;
  for (size_t i = 1; i + 1 < n_ops; i++) {
    if (def->ops[i]->op_case == PROTIUM__OP__OP_MAP_PARTITIONS && k == 0) {
      k = i;
      k_schema = sink_schema;
    }
    sink_schema = schema_after(t->stage, i, sink_schema);
  }
  rc = pt__sink_open(t, sink_op, sink_schema, &sink, err);
  if (rc != PT_OK) goto close_all;
  if (k > 0) {
    rc = run_partition_fn(t, k, &src, k_schema, &sink, err);
  } else {
    for (;;) {
      struct ArrowArray batch;
      rc = pt__source_next(&src, &batch, err);
      if (rc != PT_OK || batch.release == NULL) break;
      rc = apply_ops(t, 1, n_ops - 1, &src.schema, &batch, err);
      if (rc != PT_OK) break;
      rc = pt__sink_consume(&sink, &batch, err);
      if (rc != PT_OK) break;
    }
  }
  if (rc == PT_OK) rc = pt__sink_finish(&sink, st, err);
  if (rc == PT_OK) {
    st->rows_read = src.rows_read;
    st->bytes_read = src.bytes_read;
    st->parquet_pages_read = src.pages_read;
    st->parquet_pages_skipped = src.pages_skipped;
    st->event_time_ms = src.event_time_ms;
    struct stat sb;
    if (st->shuffle && st->shuffle->n_segment_offsets)
      st->bytes_written = st->shuffle->segment_offsets[st->shuffle->n_segment_offsets - 1];
    else if (st->output_path && *st->output_path && stat(st->output_path, &sb) == 0)
      st->bytes_written = (int64_t)sb.st_size;
    if (sink_op->op_case == PROTIUM__OP__OP_RESULT && t->env->results_stream)
      rc = result_inline(st, err);
  }
close_all:
  pt__sink_close(&sink);
  pt__source_close(&src);
  return rc;
}

/* A barrier task's view of its stage attempt, from its launch. */
static int copy_infos(pt__task *t, pt_error *err) {
  const Protium__TaskLaunch *l = t->launch;
  if (l->n_task_infos == 0) return PT_OK;
  t->infos = pt__calloc(l->n_task_infos, sizeof *t->infos);
  if (t->infos == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory for task infos");
  for (size_t i = 0; i < l->n_task_infos; i++) {
    const Protium__TaskInfo *in = l->task_infos[i];
    pt_task_info *o = &t->infos[i];
    o->partition = in->partition;
    o->executor_id = in->executor_id;
    o->pid = in->pid;
    o->port = in->port;
    snprintf(o->host, sizeof o->host, "%s", in->host ? in->host : "");
  }
  t->n_infos = (int64_t)l->n_task_infos;
  return PT_OK;
}

void pt__task_run(const pt__exec_env *env, pt__stage *stage, const Protium__TaskLaunch *task,
                  Protium__Resource *const *res, size_t n_res, Protium__TaskStatus *st) {
  int64_t t0 = now_us();
  protium__task_status__init(st);
  st->task_id = task->task_id;
  pt__task t = {
      .env = env,
      .stage = stage,
      .launch = task,
      .res = res,
      .n_res = n_res,
      .ctx = {.job_id = stage->def->job_id,
              .stage_id = stage->def->stage_id,
              .partition = task->partition,
              .attempt = task->attempt,
              .executor_id = env->executor_id,
              .stage_attempt = stage->def->stage_attempt,
              .num_tasks = stage->def->num_tasks},
      .failed_map = -1,
  };
  t.ctx.internal_ = &t;
  pt_error err = {0};
  int rc = copy_infos(&t, &err);
  if (rc == PT_OK) rc = run(&t, st, &err);
  pt__free(t.infos);
  if (rc == PT_OK) {
    st->state = PROTIUM__TASK_STATE__TASK_SUCCEEDED;
  } else {
    pt__task_status_clear(st);
    st->state = t.failed_map >= 0 ? PROTIUM__TASK_STATE__TASK_FETCH_FAILED
                                  : PROTIUM__TASK_STATE__TASK_FAILED;
    st->failed_map_partition = t.failed_map >= 0 ? t.failed_map : 0;
    st->map_executor_unreachable = t.failed_map >= 0 && t.fetch_unreachable;
    st->rows = st->count = 0;
    st->error_code = rc;
    char *msg = pt__strdup(err.message[0] ? err.message : pt_strerror(rc));
    /* Out of memory for the message itself: a static text still tells. */
    st->error = msg != NULL ? msg : (char *)protobuf_c_empty_string;
  }
  st->duration_us = now_us() - t0;
}
