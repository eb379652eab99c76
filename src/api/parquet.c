/* parquet.c — pt_read_parquet: Parquet files as a lazy dataset. The driver
 * reads every footer once, keeps the row groups a filter does not rule out,
 * and deals them into partitions of about parquet.partition_bytes: small
 * files share a partition, a big file is split between row groups. Executors
 * read their partition's row groups with the Parquet reader (src/parquet).
 */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "parquet/parquet.h"

typedef struct pieces {
  int64_t n, cap;
  char **paths;
  int64_t *partition, *start, *count;
} pieces;

static void pieces_free(pieces *p) {
  for (int64_t i = 0; i < p->n; i++) pt__free(p->paths[i]);
  pt__free(p->paths);
  pt__free(p->partition);
  pt__free(p->start);
  pt__free(p->count);
  memset(p, 0, sizeof *p);
}

static int pieces_add(pieces *p, const char *path, int64_t partition, int64_t rg) {
  /* A row group right after the last piece's, same file and partition,
   * extends it. */
  if (p->n > 0 && p->partition[p->n - 1] == partition && strcmp(p->paths[p->n - 1], path) == 0 &&
      p->start[p->n - 1] + p->count[p->n - 1] == rg) {
    p->count[p->n - 1]++;
    return PT_OK;
  }
  if (p->n == p->cap) {
    int64_t cap = p->cap ? p->cap * 2 : 16;
    char **a = pt__realloc(p->paths, (size_t)cap * sizeof *a);
    if (!a) return PT_ENOMEM;
    p->paths = a;
    int64_t *b = pt__realloc(p->partition, (size_t)cap * sizeof *b);
    if (!b) return PT_ENOMEM;
    p->partition = b;
    b = pt__realloc(p->start, (size_t)cap * sizeof *b);
    if (!b) return PT_ENOMEM;
    p->start = b;
    b = pt__realloc(p->count, (size_t)cap * sizeof *b);
    if (!b) return PT_ENOMEM;
    p->count = b;
    p->cap = cap;
  }
  p->paths[p->n] = pt__strdup(path);
  if (!p->paths[p->n]) return PT_ENOMEM;
  p->partition[p->n] = partition;
  p->start[p->n] = rg;
  p->count[p->n] = 1;
  p->n++;
  return PT_OK;
}

int pt_read_parquet(pt_session *s, const char *path, const pt_parquet_read_options *opts,
                    pt_dataset **out, pt_error *err) {
  if (!s || !path || !out)
    return pt__errorf(err, PT_EINVAL, "read_parquet: session, path and out must not be NULL");
  *out = NULL;
  char **paths;
  int64_t n;
  PT_RETURN_NOT_OK(pt__list_files(path, 1, &paths, &n, err));
  int64_t target = pt__conf_int(s->conf, "parquet.partition_bytes");
  struct ArrowSchema first = {0};
  char first_type[1024] = "";
  pieces pc = {0};
  int64_t partition = 0, acc = 0;
  int rc = PT_OK;
  for (int64_t f = 0; f < n && rc == PT_OK; f++) {
    struct ArrowSchema schema;
    pt__parquet_rg *rgs;
    int64_t nrg;
    rc = pt__parquet_plan(paths[f], opts, &schema, &rgs, &nrg, err);
    if (rc != PT_OK) {
      pt__error_prefix(err, rc, "read_parquet: ");
      break;
    }
    if (f == 0) {
      pt_type_name(&schema, first_type, sizeof first_type);
      first = schema;
    } else {
      char t[1024];
      pt_type_name(&schema, t, sizeof t);
      schema.release(&schema);
      if (strcmp(t, first_type) != 0)
        rc = pt__errorf(err, PT_EINVAL,
                        "read_parquet: file '%s' has schema %s, but '%s' has %s; all files must "
                        "share one schema", paths[f], t, paths[0], first_type);
    }
    for (int64_t g = 0; g < nrg && rc == PT_OK; g++) {
      if (acc > 0 && acc + rgs[g].bytes > target) {
        partition++;
        acc = 0;
      }
      acc += rgs[g].bytes > 0 ? rgs[g].bytes : 1;
      if (pieces_add(&pc, paths[f], partition, rgs[g].index) != PT_OK)
        rc = pt__errorf(err, PT_ENOMEM, "read_parquet: out of memory");
    }
    pt__free(rgs);
  }
  for (int64_t i = 0; i < n; i++) pt__free(paths[i]);
  pt__free(paths);
  if (rc == PT_OK) rc = pt__node_new(s, s->driver, PT__NODE_PARQUET, NULL, &first, out, err);
  if (rc == PT_OK) {
    pt_dataset *ds = *out;
    /* A dataset has at least one partition, empty when nothing matched. */
    ds->partitions = pc.n > 0 ? partition + 1 : 1;
    ds->n_pieces = pc.n;
    ds->piece_paths = pc.paths;
    ds->piece_partition = pc.partition;
    ds->piece_rg_start = pc.start;
    ds->piece_rg_count = pc.count;
    memset(&pc, 0, sizeof pc);
    ds->batch_rows = opts ? opts->batch_size : 0;
    if (opts && opts->columns && opts->n_columns > 0) {
      ds->columns = pt__calloc((size_t)opts->n_columns, sizeof *ds->columns);
      if (!ds->columns) rc = pt__errorf(err, PT_ENOMEM, "read_parquet: out of memory");
      for (int64_t i = 0; i < opts->n_columns && rc == PT_OK; i++) {
        ds->columns[i] = pt__strdup(opts->columns[i]);
        if (!ds->columns[i]) rc = pt__errorf(err, PT_ENOMEM, "read_parquet: out of memory");
        else ds->n_columns = i + 1;
      }
    }
    if (rc != PT_OK) {
      pt_dataset_free(*out);
      *out = NULL;
    }
  }
  pieces_free(&pc);
  if (first.release) first.release(&first);
  return rc;
}
