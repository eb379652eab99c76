/* node.c — the lifetime of dataset nodes (struct pt_dataset in sched.h):
 * made by src/api, read by the planner, released here when the last
 * reference (a user's handle, a child node, a running job) goes.
 */
#include <stdlib.h>

#include "sched/sched.h"

/* An IPC stream holding only the schema: how stages carry schemas. The
 * buffer is the IPC writer's (free()). */
static int schema_to_ipc(const struct ArrowSchema *schema, void **data, int64_t *size,
                         pt_error *err) {
  pt_ipc_writer *w;
  *data = NULL;
  *size = 0;
  PT_RETURN_NOT_OK(pt_ipc_writer_open_buffer(schema, NULL, &w, err));
  int rc = pt_ipc_writer_close(w, err);
  if (rc == PT_OK) rc = pt_ipc_writer_take_buffer(w, data, size, err);
  pt_ipc_writer_free(w);
  return rc;
}

static void node_release(pt_dataset *ds) {
  if (ds->schema.release) ds->schema.release(&ds->schema);
  free(ds->schema_ipc);
  pt__free(ds->out_schema_ipc);
  if (ds->paths)
    for (int64_t i = 0; i < ds->partitions; i++) pt__free(ds->paths[i]);
  pt__free(ds->paths);
  if (ds->piece_paths)
    for (int64_t i = 0; i < ds->n_pieces; i++) pt__free(ds->piece_paths[i]);
  pt__free(ds->piece_paths);
  pt__free(ds->piece_partition);
  pt__free(ds->piece_rg_start);
  pt__free(ds->piece_rg_count);
  if (ds->columns)
    for (int64_t i = 0; i < ds->n_columns; i++) pt__free(ds->columns[i]);
  pt__free(ds->columns);
  for (int64_t i = 0; ds->dictionary && i < ds->n_dictionary; i++) pt__free(ds->dictionary[i]);
  pt__free(ds->dictionary);
  if (ds->partition_keys)
    for (int64_t i = 0; i < ds->n_partition_keys; i++) pt__free(ds->partition_keys[i]);
  pt__free(ds->partition_keys);
  if (ds->piece_values)
    for (int64_t i = 0; i < ds->n_pieces * ds->n_partition_keys; i++) pt__free(ds->piece_values[i]);
  pt__free(ds->piece_values);
  pt__free(ds->parquet_filter);
  if (ds->keys)
    for (int64_t i = 0; i < ds->n_keys; i++) pt__free(ds->keys[i]);
  pt__free(ds->keys);
  pt__free(ds->fn);
  pt__free(ds->arg);
  pt_resource_profile_free(ds->profile);
  pt__free(ds->kafka_source);
  pt__free(ds->piece_begin);
  pt__free(ds->piece_end);
  pt__free(ds->piece_line);
  if (ds->csv_null_values)
    for (int64_t i = 0; i < ds->csv.n_null_values; i++) pt__free(ds->csv_null_values[i]);
  pt__free(ds->csv_null_values);
  pt__free(ds->csv_corrupt);
  pt__free(ds->sql_url);
  pt__free(ds->sql_adbc_driver);
  if (ds->sql_queries)
    for (int64_t i = 0; i < ds->partitions; i++) pt__free(ds->sql_queries[i]);
  pt__free(ds->sql_queries);
  pt__free(ds);
}

void pt__node_unref(pt_dataset *ds) {
  /* Iterative: long chains must not recurse. */
  while (ds && atomic_fetch_sub(&ds->refs, 1) == 1) {
    pt_dataset *parent = ds->parent;
    node_release(ds);
    ds = parent;
  }
}

/* A node of `kind` over parent (referenced) with schema copied from
 * `schema`, its IPC form made. */
int pt__node_new(pt_session *s, pt__driver *d, pt__node_kind kind, pt_dataset *parent,
                 const struct ArrowSchema *schema, pt_dataset **out, pt_error *err) {
  *out = NULL;
  pt_dataset *ds = pt__calloc(1, sizeof *ds);
  if (!ds) return pt__errorf(err, PT_ENOMEM, "dataset: out of memory");
  atomic_init(&ds->refs, 1);
  atomic_init(&ds->last_job, 0);
  ds->session = s;
  ds->driver = d;
  ds->kind = kind;
  ds->delta_version = -1;
  ds->parquet_files = -1;
  int rc = pt_schema_copy(schema, &ds->schema, err);
  if (rc == PT_OK) rc = schema_to_ipc(&ds->schema, &ds->schema_ipc, &ds->schema_ipc_size, err);
  if (rc != PT_OK) {
    node_release(ds);
    return rc;
  }
  if (parent) {
    atomic_fetch_add(&parent->refs, 1);
    ds->parent = parent;
    ds->partitions = parent->partitions;
  }
  *out = ds;
  return PT_OK;
}

