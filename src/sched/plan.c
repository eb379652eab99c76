/* plan.c — turns a dataset's node chain into a job: stages split at
 * shuffles, each an ordered list of ops (one source, transformations, one
 * sink) in the protobuf form the executors receive. Shuffles are planned
 * afresh for every job (new shuffle ids): simple, and a later job never
 * depends on files an earlier one may have cleaned up.
 */
#include <stdio.h>
#include <string.h>

#include "sched/sched.h"

static void op_free(Protium__Op *op) {
  if (!op) return;
  switch (op->op_case) {
  case PROTIUM__OP__OP_RANGE: pt__free(op->range); break;
  case PROTIUM__OP__OP_FILES: pt__free(op->files); break;
  case PROTIUM__OP__OP_SHUFFLE_READ: pt__free(op->shuffle_read); break;
  case PROTIUM__OP__OP_MAP: pt__free(op->map); break;
  case PROTIUM__OP__OP_FILTER: pt__free(op->filter); break;
  case PROTIUM__OP__OP_EXCLUDE:
  case PROTIUM__OP__OP_REQUIRE: /* the same layout: a predicate */
    if (op->exclude->predicate) protium__parquet_filter__free_unpacked(op->exclude->predicate, NULL);
    pt__free(op->exclude);
    break;
  case PROTIUM__OP__OP_SHUFFLE_WRITE: pt__free(op->shuffle_write); break;
  case PROTIUM__OP__OP_RESULT: pt__free(op->result); break;
  case PROTIUM__OP__OP_COUNT: pt__free(op->count); break;
  case PROTIUM__OP__OP_WRITE_IPC: pt__free(op->write_ipc); break;
  case PROTIUM__OP__OP_MAP_PARTITIONS: pt__free(op->map_partitions); break;
  case PROTIUM__OP__OP_READ_SQL: pt__free(op->read_sql); break;
  case PROTIUM__OP__OP_WRITE_SQL: pt__free(op->write_sql); break;
  case PROTIUM__OP__OP_READ_CSV:
    /* The pieces were made as one block (csv_source below). */
    if (op->read_csv->n_pieces > 0) pt__free(op->read_csv->pieces[0]);
    pt__free(op->read_csv->pieces);
    pt__free(op->read_csv);
    break;
  case PROTIUM__OP__OP_READ_PARQUET:
    /* The pieces were made as one block (parquet_source below), their
     * partition values too. */
    if (op->read_parquet->n_pieces > 0) {
      pt__free(op->read_parquet->pieces[0]->partition_values);
      pt__free(op->read_parquet->pieces[0]->partition_nulls);
      pt__free(op->read_parquet->pieces[0]);
    }
    pt__free(op->read_parquet->pieces);
    if (op->read_parquet->filter) protium__parquet_filter__free_unpacked(op->read_parquet->filter, NULL);
    pt__free(op->read_parquet);
    break;
  case PROTIUM__OP__OP_READ_KAFKA: protium__kafka_source__free_unpacked(op->read_kafka, NULL); break;
  case PROTIUM__OP__OP_WRITE_KAFKA: protium__kafka_sink__free_unpacked(op->write_kafka, NULL); break;
  default: break;
  }
  pt__free(op);
}

static void output_reset(Protium__ShuffleOutput *o) {
  if (o->path != (char *)protobuf_c_empty_string) pt__free(o->path);
  pt__free(o->segment_offsets);
  pt__free(o->segment_rows);
  protium__shuffle_output__init(o);
}

static void stage_free(pt__sched_stage *st) {
  if (!st) return;
  for (size_t i = 0; i < st->n_ops; i++) op_free(st->ops[i]);
  pt__free(st->ops);
  if (st->outputs)
    for (int64_t p = 0; p < st->partitions; p++) output_reset(&st->outputs[p]);
  if (st->paths)
    for (int64_t p = 0; p < st->partitions; p++) pt__free(st->paths[p]);
  if (st->last_error)
    for (int64_t p = 0; p < st->partitions; p++) pt__free(st->last_error[p]);
  pt__free(st->outputs);
  pt__free(st->output_exec);
  pt__free(st->paths);
  pt__free(st->rows);
  pt__free(st->counts);
  pt__free(st->last_error);
  pt__free(st->last_code);
  pt__free(st->done);
  pt__free(st->queued);
  pt__free(st->running);
  pt__free(st->failures);
  pt__free(st->launches);
  pt__free(st->last_exec);
  pt__free(st->pending);
  pt__free(st->def);
  pt__free(st->checkpoint_dir);
  pt__free(st->locality);
  pt__free(st->loc_part);
  pt__free(st->prefer);
  pt__barrier_free(st->bar);
  pt__free(st);
}

void pt__plan_free(pt__job *job) {
  if (!job) return;
  for (int64_t i = 0; i < job->n_stages; i++) stage_free(job->stages[i]);
  pt__free(job->stages);
  pt__stats_free(job->stats);
  pt__node_unref(job->ds);
  pt__free(job);
}

/* Allocates a message struct of the given size, initialised by init. */
#define NEW_MSG(type, init_fn) ((type *)new_msg(sizeof(type), (void (*)(void *))init_fn))
static void *new_msg(size_t size, void (*init)(void *)) {
  void *m = pt__calloc(1, size);
  if (m) init(m);
  return m;
}

static int add_op(pt__sched_stage *st, Protium__Op *op, size_t *cap) {
  if (!op) return PT_ENOMEM;
  if (st->n_ops == *cap) {
    size_t c = *cap ? *cap * 2 : 4;
    Protium__Op **p = pt__realloc(st->ops, c * sizeof *p);
    if (!p) {
      op_free(op);
      return PT_ENOMEM;
    }
    st->ops = p;
    *cap = c;
  }
  st->ops[st->n_ops++] = op;
  return PT_OK;
}

static Protium__Op *new_op(Protium__Op__OpCase c, void *payload) {
  if (!payload) return NULL;
  Protium__Op *op = NEW_MSG(Protium__Op, protium__op__init);
  if (!op) {
    pt__free(payload);
    return NULL;
  }
  op->op_case = c;
  op->range = payload; /* every member of the union is a pointer */
  return op;
}

/* The ops of a node chain ending in a source or a shuffle, in order. */
static int add_chain_ops(pt__driver *d, pt__job *job, pt__sched_stage *st, pt_dataset *node,
                         int64_t *stages_cap, size_t *cap, pt_error *err);

static int stage_alloc_state(pt__sched_stage *st, int final, pt__sink_kind sink) {
  int64_t n = st->partitions ? st->partitions : 1;
  st->done = pt__calloc((size_t)n, 1);
  st->queued = pt__calloc((size_t)n, 1);
  st->running = pt__calloc((size_t)n, sizeof *st->running);
  st->failures = pt__calloc((size_t)n, sizeof *st->failures);
  st->launches = pt__calloc((size_t)n, sizeof *st->launches);
  st->last_exec = pt__calloc((size_t)n, sizeof *st->last_exec);
  st->last_error = pt__calloc((size_t)n, sizeof *st->last_error);
  st->last_code = pt__calloc((size_t)n, sizeof *st->last_code);
  st->pending = pt__calloc((size_t)n, sizeof *st->pending);
  if (!st->done || !st->queued || !st->running || !st->failures || !st->launches ||
      !st->last_exec || !st->last_error || !st->last_code || !st->pending)
    return PT_ENOMEM;
  if (!final) {
    st->outputs = pt__calloc((size_t)n, sizeof *st->outputs);
    st->output_exec = pt__calloc((size_t)n, sizeof *st->output_exec);
    if (!st->outputs || !st->output_exec) return PT_ENOMEM;
    for (int64_t p = 0; p < n; p++) protium__shuffle_output__init(&st->outputs[p]);
  } else {
    if (sink != PT__SINK_COUNT && sink != PT__SINK_KAFKA && !(st->paths = pt__calloc((size_t)n, sizeof *st->paths)))
      return PT_ENOMEM;
    st->rows = pt__calloc((size_t)n, sizeof *st->rows);
    st->counts = pt__calloc((size_t)n, sizeof *st->counts);
    if (!st->rows || !st->counts) return PT_ENOMEM;
  }
  return PT_OK;
}

static int add_stage(pt__job *job, pt__sched_stage *st, int64_t *cap) {
  if (pt__grow((void **)&job->stages, cap, job->n_stages + 1, sizeof *job->stages) != PT_OK)
    return PT_ENOMEM;
  job->stages[job->n_stages++] = st;
  return PT_OK;
}

/* What a stage's partitions are tied to in the executors' processes
 * (scheduler.c keeps each where it ran last): a Kafka sink's partition p is
 * transactional id "<prefix>-<p>", whose initialized producer stays in the
 * process that used it; a Kafka source's range is read by a consumer kept
 * warm there. Not a barrier stage (all its tasks are placed at once). */
static int stage_locality(pt__sched_stage *st) {
  if (st->barrier || st->n_ops == 0 || st->partitions <= 0) return PT_OK;
  const Protium__Op *last = st->ops[st->n_ops - 1], *first = st->ops[0];
  pt_buf b = {0};
  int rc = PT_OK;
  if (last->op_case == PROTIUM__OP__OP_WRITE_KAFKA && last->write_kafka->client) {
    const Protium__KafkaSink *k = last->write_kafka;
    rc = pt__buf_printf(&b, "kafka-sink\x1f%s\x1f%s", k->client->bootstrap_servers,
                        k->transactional_prefix);
  } else if (first->op_case == PROTIUM__OP__OP_READ_KAFKA && first->read_kafka->client &&
             first->read_kafka->n_ranges == (size_t)st->partitions) {
    const Protium__KafkaSource *k = first->read_kafka;
    rc = pt__buf_printf(&b, "kafka-source\x1f%s\x1f%s", k->client->bootstrap_servers, k->topic);
  } else {
    return PT_OK;
  }
  if (rc == PT_OK) {
    st->locality = pt__malloc(b.len + 1);
    st->loc_part = pt__calloc((size_t)st->partitions, sizeof *st->loc_part);
    st->prefer = pt__calloc((size_t)st->partitions, sizeof *st->prefer);
    rc = st->locality && st->loc_part && st->prefer ? PT_OK : PT_ENOMEM;
  }
  if (rc == PT_OK) {
    memcpy(st->locality, b.data, b.len);
    st->locality[b.len] = '\0';
    int sink = last->op_case == PROTIUM__OP__OP_WRITE_KAFKA;
    for (int64_t p = 0; p < st->partitions; p++) /* a source's: the topic partition */
      st->loc_part[p] = sink ? p : first->read_kafka->ranges[p]->partition;
  }
  pt_buf_free(&b);
  return rc;
}

/* Plans the stage computing `node`, its parents first; the sink op is added
 * by the caller. */
static int plan_stage(pt__driver *d, pt__job *job, pt_dataset *node, int64_t *stages_cap,
                      pt__sched_stage **out, size_t *ops_cap, pt_error *err) {
  pt__sched_stage *st = pt__calloc(1, sizeof *st);
  if (!st) return pt__errorf(err, PT_ENOMEM, "plan: out of memory");
  st->id = pt__driver_next_id(d);
  st->attempt = -1;
  st->job = job;
  st->shuffle_id = -1;
  st->partitions = node->partitions;
  *ops_cap = 0;
  int rc = add_chain_ops(d, job, st, node, stages_cap, ops_cap, err);
  if (rc == PT_OK && add_stage(job, st, stages_cap) != PT_OK)
    rc = pt__errorf(err, PT_ENOMEM, "plan: out of memory");
  if (rc != PT_OK) {
    stage_free(st);
    return rc;
  }
  *out = st;
  return PT_OK;
}

static int add_chain_ops(pt__driver *d, pt__job *job, pt__sched_stage *st, pt_dataset *node,
                         int64_t *stages_cap, size_t *cap, pt_error *err) {
  /* Walk up to the source, remembering the transformations. */
  pt_dataset *chain[256];
  int n = 0;
  pt_dataset *src = node;
  int n_partition_fns = 0;
  while (src->kind == PT__NODE_MAP || src->kind == PT__NODE_FILTER ||
         src->kind == PT__NODE_EXCLUDE || src->kind == PT__NODE_REQUIRE ||
         src->kind == PT__NODE_MAP_PARTITIONS || src->kind == PT__NODE_BARRIER ||
         src->kind == PT__NODE_RESOURCES) {
    if (n == 256) return pt__errorf(err, PT_ENOTSUP, "plan: more than 256 transformations in a row");
    if (src->kind == PT__NODE_BARRIER) {
      st->barrier = 1;
      if (!st->max_attempts) st->max_attempts = src->max_attempts; /* the last one given */
    } else if (src->kind == PT__NODE_RESOURCES) {
      if (!st->profile) st->profile = src->profile; /* the last one given wins */
    } else chain[n++] = src;
    /* A task pulls its input through the one partition function and pushes
     * what it emits onward: a second one would need its own thread. */
    if (src->kind == PT__NODE_MAP_PARTITIONS && ++n_partition_fns == 2)
      return pt__errorf(err, PT_ENOTSUP,
                        "plan: two pt_map_partitions in one stage ('%s' after '%s'); put a "
                        "pt_repartition between them", node->kind == PT__NODE_MAP_PARTITIONS ?
                        node->fn : "a later function", src->fn);
    src = src->parent;
  }
  st->schema_ipc = src->schema_ipc;
  st->schema_ipc_size = src->schema_ipc_size;
  Protium__Op *op = NULL;
  switch (src->kind) {
  case PT__NODE_RANGE: {
    Protium__RangeSource *r = NEW_MSG(Protium__RangeSource, protium__range_source__init);
    if (r) {
      r->start = src->start;
      r->end = src->end;
      r->partitions = src->partitions;
      r->batch_rows = src->batch_rows;
    }
    op = new_op(PROTIUM__OP__OP_RANGE, r);
    break;
  }
  case PT__NODE_FILES: {
    Protium__FilesSource *f = NEW_MSG(Protium__FilesSource, protium__files_source__init);
    if (f) {
      f->n_paths = (size_t)src->partitions;
      f->paths = src->paths;
    }
    op = new_op(PROTIUM__OP__OP_FILES, f);
    break;
  }
  case PT__NODE_PARQUET: {
    Protium__ParquetSource *q = NEW_MSG(Protium__ParquetSource, protium__parquet_source__init);
    size_t n = (size_t)src->n_pieces;
    Protium__ParquetPiece **ptrs = q ? pt__calloc(n ? n : 1, sizeof *ptrs) : NULL;
    Protium__ParquetPiece *block = ptrs ? pt__calloc(n ? n : 1, sizeof *block) : NULL;
    size_t nk = (size_t)src->n_partition_keys;
    char **vals = block ? pt__calloc(n * nk > 0 ? n * nk : 1, sizeof *vals) : NULL;
    protobuf_c_boolean *nulls = vals ? pt__calloc(n * nk > 0 ? n * nk : 1, sizeof *nulls) : NULL;
    if (!nulls) {
      pt__free(vals);
      pt__free(block);
      pt__free(ptrs);
      pt__free(q);
      q = NULL;
    } else {
      for (size_t i = 0; i < n; i++) {
        protium__parquet_piece__init(&block[i]);
        block[i].partition = src->piece_partition[i];
        block[i].path = src->piece_paths[i]; /* borrowed from the node */
        block[i].row_group_start = src->piece_rg_start[i];
        block[i].row_groups = src->piece_rg_count[i];
        block[i].n_partition_values = nk;
        block[i].partition_values = vals + i * nk;
        block[i].n_partition_nulls = nk;
        block[i].partition_nulls = nulls + i * nk;
        for (size_t k = 0; k < nk; k++) {
          char *v = src->piece_values[i * nk + k];
          vals[i * nk + k] = v ? v : (char *)""; /* borrowed from the node */
          nulls[i * nk + k] = v == NULL;
        }
        ptrs[i] = &block[i];
      }
      if (n == 0) { /* op_free frees the blocks through pieces[0] only when n > 0 */
        pt__free(block);
        pt__free(vals);
        pt__free(nulls);
      }
      q->n_partition_keys = nk;
      q->partition_keys = src->partition_keys;
      q->n_pieces = n;
      q->pieces = ptrs;
      q->n_columns = (size_t)src->n_columns;
      q->columns = src->columns;
      q->n_dictionary = (size_t)src->n_dictionary;
      q->dictionary = src->dictionary;
      q->batch_rows = src->batch_rows;
      q->plain_binary = src->delta_version >= 0;
      q->threads = src->read_threads;
      /* A private copy for the op, freed with it. */
      if (src->parquet_filter) {
        q->filter = protium__parquet_filter__unpack(NULL, src->parquet_filter_size, src->parquet_filter);
        if (!q->filter) {
          op_free(new_op(PROTIUM__OP__OP_READ_PARQUET, q));
          q = NULL;
        }
      }
    }
    op = new_op(PROTIUM__OP__OP_READ_PARQUET, q);
    break;
  }
  case PT__NODE_KAFKA:
    /* A private copy for the op: the message is the node's, packed. */
    op = new_op(PROTIUM__OP__OP_READ_KAFKA,
                protium__kafka_source__unpack(NULL, src->kafka_source_size, src->kafka_source));
    break;
  case PT__NODE_SQL: {
    Protium__SqlSource *q = NEW_MSG(Protium__SqlSource, protium__sql_source__init);
    if (q) {
      q->url = src->sql_url; /* borrowed from the node */
      q->n_queries = (size_t)src->partitions;
      q->queries = src->sql_queries;
      q->fetch_size = src->sql_fetch_size;
      q->adbc_driver = src->sql_adbc_driver ? src->sql_adbc_driver : (char *)"";
    }
    op = new_op(PROTIUM__OP__OP_READ_SQL, q);
    break;
  }
  case PT__NODE_CSV: {
    Protium__CsvSource *c = NEW_MSG(Protium__CsvSource, protium__csv_source__init);
    size_t n = (size_t)src->n_pieces;
    Protium__CsvPiece **ptrs = c ? pt__calloc(n ? n : 1, sizeof *ptrs) : NULL;
    Protium__CsvPiece *block = ptrs ? pt__calloc(n ? n : 1, sizeof *block) : NULL;
    if (!block) {
      pt__free(ptrs);
      pt__free(c);
      c = NULL;
    } else {
      for (size_t i = 0; i < n; i++) {
        protium__csv_piece__init(&block[i]);
        block[i].partition = src->piece_partition[i];
        block[i].path = src->piece_paths[i]; /* borrowed from the node */
        block[i].begin = src->piece_begin[i];
        block[i].end = src->piece_end[i];
        block[i].first_line = src->piece_line[i];
        ptrs[i] = &block[i];
      }
      if (n == 0) pt__free(block); /* op_free frees it through pieces[0] only when n > 0 */
      c->n_pieces = n;
      c->pieces = ptrs;
      c->header = src->csv.header != 0;
      c->delimiter = (unsigned char)src->csv.delimiter;
      c->quote = (unsigned char)src->csv.quote;
      c->escape = (unsigned char)src->csv.escape;
      c->null_values_given = src->csv_null_values != NULL;
      c->n_null_values = (size_t)src->csv.n_null_values;
      c->null_values = src->csv_null_values;
      c->mode = (int32_t)src->csv.mode;
      c->corrupt_column = src->csv_corrupt ? src->csv_corrupt : (char *)"";
    }
    op = new_op(PROTIUM__OP__OP_READ_CSV, c);
    break;
  }
  case PT__NODE_SHUFFLE: {
    /* The parent stage writes the shuffle; this one reads it. */
    pt__sched_stage *parent;
    size_t pcap;
    PT_RETURN_NOT_OK(plan_stage(d, job, src->parent, stages_cap, &parent, &pcap, err));
    parent->shuffle_id = pt__driver_next_id(d);
    Protium__ShuffleSink *sk = NEW_MSG(Protium__ShuffleSink, protium__shuffle_sink__init);
    if (sk) {
      sk->shuffle_id = parent->shuffle_id;
      sk->partitions = src->partitions;
      sk->n_keys = (size_t)src->n_keys;
      sk->keys = src->keys;
    }
    if (add_op(parent, new_op(PROTIUM__OP__OP_SHUFFLE_WRITE, sk), &pcap) != PT_OK)
      return pt__errorf(err, PT_ENOMEM, "plan: out of memory");
    st->parent = parent;
    Protium__ShuffleSource *r = NEW_MSG(Protium__ShuffleSource, protium__shuffle_source__init);
    if (r) r->shuffle_id = parent->shuffle_id;
    st->read = r;
    op = new_op(PROTIUM__OP__OP_SHUFFLE_READ, r);
    break;
  }
  default:
    return pt__errorf(err, PT_EINTERNAL, "plan: unexpected node kind %d", (int)src->kind);
  }
  if (add_op(st, op, cap) != PT_OK) return pt__errorf(err, PT_ENOMEM, "plan: out of memory");
  for (int i = n - 1; i >= 0; i--) {
    pt_dataset *t = chain[i];
    if (t->kind == PT__NODE_MAP_PARTITIONS) {
      Protium__MapPartitionsOp *m =
          NEW_MSG(Protium__MapPartitionsOp, protium__map_partitions_op__init);
      if (m) {
        m->fn = t->fn;
        m->arg.data = t->arg;
        m->arg.len = t->arg_size;
        m->out_schema.data = t->out_schema_ipc;
        m->out_schema.len = (size_t)t->out_schema_ipc_size;
      }
      op = new_op(PROTIUM__OP__OP_MAP_PARTITIONS, m);
    } else if (t->kind == PT__NODE_MAP) {
      Protium__MapOp *m = NEW_MSG(Protium__MapOp, protium__map_op__init);
      if (m) {
        m->fn = t->fn;
        m->arg.data = t->arg;
        m->arg.len = t->arg_size;
        m->out_schema.data = t->out_schema_ipc;
        m->out_schema.len = (size_t)t->out_schema_ipc_size;
      }
      op = new_op(PROTIUM__OP__OP_MAP, m);
    } else if (t->kind == PT__NODE_EXCLUDE) {
      /* A private copy of the predicate for the op, freed with it. */
      Protium__ExcludeOp *x = NEW_MSG(Protium__ExcludeOp, protium__exclude_op__init);
      if (x && !(x->predicate = protium__parquet_filter__unpack(NULL, t->parquet_filter_size,
                                                                t->parquet_filter))) {
        pt__free(x);
        x = NULL;
      }
      Protium__ParquetFilter *pred = x ? x->predicate : NULL;
      op = new_op(PROTIUM__OP__OP_EXCLUDE, x);
      if (!op && pred) protium__parquet_filter__free_unpacked(pred, NULL);
    } else if (t->kind == PT__NODE_REQUIRE) {
      Protium__RequireOp *x = NEW_MSG(Protium__RequireOp, protium__require_op__init);
      if (x && !(x->predicate = protium__parquet_filter__unpack(NULL, t->parquet_filter_size,
                                                                t->parquet_filter))) {
        pt__free(x);
        x = NULL;
      }
      Protium__ParquetFilter *pred = x ? x->predicate : NULL;
      op = new_op(PROTIUM__OP__OP_REQUIRE, x);
      if (!op && pred) protium__parquet_filter__free_unpacked(pred, NULL);
    } else {
      Protium__FilterOp *f = NEW_MSG(Protium__FilterOp, protium__filter_op__init);
      if (f) {
        f->fn = t->fn;
        f->arg.data = t->arg;
        f->arg.len = t->arg_size;
      }
      op = new_op(PROTIUM__OP__OP_FILTER, f);
    }
    if (add_op(st, op, cap) != PT_OK) return pt__errorf(err, PT_ENOMEM, "plan: out of memory");
  }
  return PT_OK;
}

int pt__plan_build(pt__driver *d, pt_dataset *ds, const pt__action *action, pt__job **out,
                   pt_error *err) {
  *out = NULL;
  pt__job *job = pt__calloc(1, sizeof *job);
  if (!job) return pt__errorf(err, PT_ENOMEM, "plan: out of memory");
  job->id = action->job_id;
  job->action = *action;
  atomic_fetch_add(&ds->refs, 1);
  job->ds = ds;
  int64_t stages_cap = 0;
  size_t ops_cap;
  pt__sched_stage *final;
  int rc = plan_stage(d, job, ds, &stages_cap, &final, &ops_cap, err);
  if (rc != PT_OK) goto fail;
  job->final = final;
  Protium__Op *sink = NULL;
  switch (action->sink) {
  case PT__SINK_RESULT:
    sink = new_op(PROTIUM__OP__OP_RESULT, NEW_MSG(Protium__ResultSink, protium__result_sink__init));
    break;
  case PT__SINK_COUNT:
    sink = new_op(PROTIUM__OP__OP_COUNT, NEW_MSG(Protium__CountSink, protium__count_sink__init));
    break;
  case PT__SINK_IPC: {
    Protium__IpcSink *w = NEW_MSG(Protium__IpcSink, protium__ipc_sink__init);
    if (w) {
      w->temp_dir = (char *)action->ipc_temp_dir; /* the caller's: it waits for the job */
      w->format = action->ipc_format;
      w->compression = action->ipc_compression;
      w->parquet = action->parquet != 0;
      w->parquet_codec = action->parquet_codec;
      w->parquet_row_group_rows = action->parquet_row_group_rows;
      w->parquet_page_version = action->parquet_page_version;
      w->parquet_no_dictionary = action->parquet_no_dictionary != 0;
      w->parquet_compression_level = action->parquet_compression_level;
      w->parquet_page_bytes = action->parquet_page_bytes;
      w->parquet_dictionary_page_bytes = action->parquet_dictionary_page_bytes;
      w->parquet_no_statistics = action->parquet_no_statistics != 0;
      w->parquet_threads = action->parquet_threads;
      w->n_parquet_partition_by = (size_t)action->parquet_n_partition_by;
      w->parquet_partition_by = (char **)action->parquet_partition_by; /* the caller's */
      w->n_parquet_metadata_keys = (size_t)action->parquet_n_metadata;
      w->parquet_metadata_keys = (char **)action->parquet_metadata_keys; /* the caller's */
      w->n_parquet_metadata_values = (size_t)action->parquet_n_metadata;
      w->parquet_metadata_values = (char **)action->parquet_metadata_values;
      w->csv = action->csv != 0;
      w->csv_header = action->csv_header != 0;
      w->csv_delimiter = (unsigned char)action->csv_delimiter;
    }
    sink = new_op(PROTIUM__OP__OP_WRITE_IPC, w);
    break;
  }
  case PT__SINK_KAFKA:
    sink = new_op(PROTIUM__OP__OP_WRITE_KAFKA,
                  protium__kafka_sink__unpack(NULL, action->kafka_sink_size, action->kafka_sink));
    break;
  case PT__SINK_SQL: {
    Protium__SqlSink *w = NEW_MSG(Protium__SqlSink, protium__sql_sink__init);
    if (w) { /* the caller's strings: it waits for the job */
      w->url = (char *)action->sql_url;
      w->staging_prefix = (char *)action->sql_staging_prefix;
      w->columns_ddl = (char *)action->sql_columns_ddl;
      w->shared_staging = action->sql_shared_staging;
    }
    sink = new_op(PROTIUM__OP__OP_WRITE_SQL, w);
    break;
  }
  }
  if (add_op(final, sink, &ops_cap) != PT_OK) {
    rc = pt__errorf(err, PT_ENOMEM, "plan: out of memory");
    goto fail;
  }
  for (int64_t i = 0; i < job->n_stages; i++) {
    pt__sched_stage *st = job->stages[i];
    if (stage_alloc_state(st, st == final, action->sink) != PT_OK ||
        (st->barrier && !(st->bar = pt__barrier_new(st->partitions)))) {
      rc = pt__errorf(err, PT_ENOMEM, "plan: out of memory");
      goto fail;
    }
    if (stage_locality(st) != PT_OK) {
      rc = pt__errorf(err, PT_ENOMEM, "plan: out of memory");
      goto fail;
    }
    size_t len = strlen(pt__driver_session_dir(d)) + 80;
    st->checkpoint_dir = pt__malloc(len);
    if (!st->checkpoint_dir) {
      rc = pt__errorf(err, PT_ENOMEM, "plan: out of memory");
      goto fail;
    }
    snprintf(st->checkpoint_dir, len, "%s/checkpoints/%lld/stage-%lld",
             pt__driver_session_dir(d), (long long)job->id, (long long)st->id);
  }
  *out = job;
  return PT_OK;
fail:
  pt__plan_free(job);
  return rc;
}

int pt__plan_encode_stage(pt__sched_stage *st, pt_error *err) {
  Protium__StageDef def = PROTIUM__STAGE_DEF__INIT;
  def.stage_id = st->id;
  def.stage_attempt = st->attempt;
  def.job_id = st->job->id;
  def.schema.data = (uint8_t *)st->schema_ipc;
  def.schema.len = (size_t)st->schema_ipc_size;
  def.n_ops = st->n_ops;
  def.ops = st->ops;
  def.barrier = st->barrier != 0;
  def.num_tasks = st->partitions;
  def.checkpoint_dir = st->checkpoint_dir;
  def.barrier_area = st->barrier_area ? (char *)st->barrier_area : (char *)"";
  Protium__ShuffleOutput **outs = NULL;
  if (st->read) {
    pt__sched_stage *parent = st->parent;
    outs = pt__malloc((size_t)(parent->partitions ? parent->partitions : 1) * sizeof *outs);
    if (!outs) return pt__errorf(err, PT_ENOMEM, "out of memory");
    for (int64_t p = 0; p < parent->partitions; p++) outs[p] = &parent->outputs[p];
    st->read->n_map_outputs = (size_t)parent->partitions;
    st->read->map_outputs = outs;
    st->read->n_map_executor_ids = (size_t)parent->partitions;
    st->read->map_executor_ids = parent->output_exec;
  }
  size_t n = protium__stage_def__get_packed_size(&def);
  pt__free(st->def);
  st->def = pt__malloc(n ? n : 1);
  int rc = PT_OK;
  if (!st->def) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  else st->def_size = protium__stage_def__pack(&def, st->def);
  if (st->read) {
    st->read->n_map_outputs = 0;
    st->read->map_outputs = NULL;
    st->read->n_map_executor_ids = 0;
    st->read->map_executor_ids = NULL;
  }
  pt__free(outs);
  return rc;
}
