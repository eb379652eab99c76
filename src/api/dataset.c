/* dataset.c — lazy datasets: each function makes one immutable node of the
 * plan (sched/sched.h: struct pt_dataset) that refers to its parent; nothing
 * runs until an action (actions.c). Functions are named by their registered
 * names so that executors, running the same program, can find them.
 */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api_int.h"
#include "core/registry.h"

void pt_dataset_free(pt_dataset *ds) { pt__node_unref(ds); }

static int node_new(pt_session *s, pt__node_kind kind, pt_dataset *parent,
                    const struct ArrowSchema *schema, pt_dataset **out, pt_error *err) {
  return pt__node_new(s, s->driver, kind, parent, schema, out, err);
}

int pt_range(pt_session *s, int64_t start, int64_t end, int64_t partitions, pt_dataset **out,
             pt_error *err) {
  if (!s || !out) return pt__errorf(err, PT_EINVAL, "range: session and out must not be NULL");
  if (end < start)
    return pt__errorf(err, PT_EINVAL, "range: end (%lld) is less than start (%lld)",
                      (long long)end, (long long)start);
  if (partitions < 1)
    return pt__errorf(err, PT_EINVAL, "range: partitions must be at least 1, not %lld",
                      (long long)partitions);
  int64_t n;
  if (__builtin_sub_overflow(end, start, &n))
    return pt__errorf(err, PT_ERANGE, "range: [%lld, %lld) has more than 2^63-1 values",
                      (long long)start, (long long)end);
  struct ArrowSchema schema;
  PT_RETURN_NOT_OK(pt_schema_init(&schema, "+s", "", 0, 1, err));
  int rc = pt_schema_init(schema.children[0], "l", "id", 0, 0, err);
  if (rc == PT_OK) rc = node_new(s, PT__NODE_RANGE, NULL, &schema, out, err);
  schema.release(&schema);
  if (rc != PT_OK) return rc;
  (*out)->start = start;
  (*out)->end = end;
  (*out)->partitions = partitions;
  (*out)->batch_rows = pt__conf_int(s->conf, "range.batch_rows");
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Files */

static int schema_equal(const struct ArrowSchema *a, const struct ArrowSchema *b) {
  if (strcmp(a->format, b->format) != 0) return 0;
  if (strcmp(a->name ? a->name : "", b->name ? b->name : "") != 0) return 0;
  if ((a->flags & ARROW_FLAG_NULLABLE) != (b->flags & ARROW_FLAG_NULLABLE)) return 0;
  if (a->n_children != b->n_children || !a->dictionary != !b->dictionary) return 0;
  for (int64_t i = 0; i < a->n_children; i++)
    if (!schema_equal(a->children[i], b->children[i])) return 0;
  return !a->dictionary || schema_equal(a->dictionary, b->dictionary);
}

static int file_schema(const char *path, struct ArrowSchema *out, pt_error *err) {
  struct ArrowArrayStream st;
  int rc = pt_ipc_read_path(path, &st, err);
  if (rc != PT_OK) return pt__error_prefix(err, rc, "read_ipc: '%s': ", path);
  int e = st.get_schema(&st, out);
  if (e != 0) {
    const char *m = st.get_last_error(&st);
    rc = pt__errorf(err, PT_EFORMAT, "read_ipc: '%s': %s", path, m ? m : "cannot read the schema");
  }
  st.release(&st);
  return rc;
}

static int has_suffix(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcmp(s + a - b, suf) == 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int push_path(char ***paths, int64_t *n, int64_t *cap, const char *dir, const char *name) {
  if (pt__grow((void **)paths, cap, *n + 1, sizeof **paths) != PT_OK) return PT_ENOMEM;
  size_t len = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
  char *joined = pt__malloc(len);
  if (!joined) return PT_ENOMEM;
  if (dir) snprintf(joined, len, "%s/%s", dir, name);
  else snprintf(joined, len, "%s", name);
  /* absolute, so that executors need not share our working directory */
  char real[PATH_MAX];
  if (realpath(joined, real)) {
    char *r = pt__strdup(real);
    if (r) {
      pt__free(joined);
      joined = r;
    }
  }
  (*paths)[(*n)++] = joined;
  return PT_OK;
}

int pt__list_files(const char *path, int parquet, char ***paths, int64_t *n, pt_error *err) {
  int csv = parquet == PT__FILES_CSV;
  const char *what = csv ? "read_csv" : parquet ? "read_parquet" : "read_ipc";
  int64_t cap = 0;
  *paths = NULL;
  *n = 0;
  struct stat sb;
  int rc = PT_OK;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    DIR *d = opendir(path);
    if (!d)
      return pt__errorf(err, PT_EIO, "%s: cannot open directory '%s': %s", what, path,
                        strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) && rc == PT_OK) {
      if (e->d_name[0] == '.' || e->d_name[0] == '_') continue;
      if (csv ? has_suffix(e->d_name, ".csv") || has_suffix(e->d_name, ".tsv")
          : parquet ? has_suffix(e->d_name, ".parquet")
                  : (has_suffix(e->d_name, ".arrow") || has_suffix(e->d_name, ".arrows") ||
                     has_suffix(e->d_name, ".ipc") || has_suffix(e->d_name, ".feather")))
        if (push_path(paths, n, &cap, path, e->d_name) != PT_OK) rc = PT_ENOMEM;
    }
    closedir(d);
    if (rc == PT_OK && *n == 0)
      rc = pt__errorf(err, PT_EINVAL, "%s: directory '%s' has no %s files", what, path,
                      csv ? ".csv or .tsv" : parquet ? ".parquet"
                                                     : ".arrow, .arrows, .ipc or .feather");
  } else if (stat(path, &sb) == 0) {
    if (push_path(paths, n, &cap, NULL, path) != PT_OK) rc = PT_ENOMEM;
  } else if (strpbrk(path, "*?[")) {
    glob_t g;
    int grc = glob(path, 0, NULL, &g);
    if (grc == GLOB_NOMATCH) {
      rc = pt__errorf(err, PT_EINVAL, "%s: no files match '%s'", what, path);
    } else if (grc != 0) {
      rc = pt__errorf(err, PT_EIO, "%s: cannot expand '%s'", what, path);
    } else {
      for (size_t i = 0; i < g.gl_pathc && rc == PT_OK; i++)
        if (push_path(paths, n, &cap, NULL, g.gl_pathv[i]) != PT_OK) rc = PT_ENOMEM;
      globfree(&g);
    }
  } else {
    rc = pt__errorf(err, PT_EINVAL, "%s: '%s' does not exist", what, path);
  }
  if (rc == PT_ENOMEM) pt__errorf(err, rc, "%s: out of memory", what);
  if (rc == PT_OK) qsort(*paths, (size_t)*n, sizeof **paths, cmp_str);
  if (rc != PT_OK) {
    for (int64_t i = 0; i < *n; i++) pt__free((*paths)[i]);
    pt__free(*paths);
    *paths = NULL;
    *n = 0;
  }
  return rc;
}

/* A FILES node over paths (taken over, also on failure). */
static int files_node(pt_session *s, char **paths, int64_t n, const struct ArrowSchema *schema,
                      pt_dataset **out, pt_error *err) {
  int rc = node_new(s, PT__NODE_FILES, NULL, schema, out, err);
  if (rc != PT_OK) {
    for (int64_t i = 0; i < n; i++) pt__free(paths[i]);
    pt__free(paths);
    return rc;
  }
  (*out)->paths = paths;
  (*out)->partitions = n;
  return PT_OK;
}

int pt_read_ipc(pt_session *s, const char *path, pt_dataset **out, pt_error *err) {
  if (!s || !path || !out)
    return pt__errorf(err, PT_EINVAL, "read_ipc: session, path and out must not be NULL");
  *out = NULL;
  char **paths;
  int64_t n;
  PT_RETURN_NOT_OK(pt__list_files(path, 0, &paths, &n, err));
  struct ArrowSchema first = {0}, other = {0};
  int rc = file_schema(paths[0], &first, err);
  for (int64_t i = 1; i < n && rc == PT_OK; i++) {
    rc = file_schema(paths[i], &other, err);
    if (rc != PT_OK) break;
    if (!schema_equal(&first, &other)) {
      char a[256], b[256];
      pt_type_name(&first, a, sizeof a);
      pt_type_name(&other, b, sizeof b);
      rc = pt__errorf(err, PT_EINVAL,
                      "read_ipc: file '%s' has schema %s, but '%s' has %s; all files must share "
                      "one schema", paths[i], b, paths[0], a);
    }
    other.release(&other);
  }
  if (rc == PT_OK) {
    rc = files_node(s, paths, n, &first, out, err); /* takes paths */
    first.release(&first);
    return rc;
  }
  if (first.release) first.release(&first);
  for (int64_t i = 0; i < n; i++) pt__free(paths[i]);
  pt__free(paths);
  return rc;
}

int pt_from_batches(pt_session *s, const struct ArrowSchema *schema, struct ArrowArray *batches,
                    int64_t n, pt_dataset **out, pt_error *err) {
  if (!s || !schema || !out || n < 0 || (n > 0 && !batches))
    return pt__errorf(err, PT_EINVAL, "from_batches: session, schema, batches and out must be "
                                      "given and n >= 0");
  *out = NULL;
  int64_t k = atomic_fetch_add(&s->next_input, 1);
  size_t len = strlen(s->dir) + 64;
  char *dir = pt__malloc(len);
  char **paths = pt__calloc((size_t)(n ? n : 1), sizeof *paths);
  int rc = PT_OK;
  if (!dir || !paths) {
    rc = pt__errorf(err, PT_ENOMEM, "from_batches: out of memory");
    goto fail;
  }
  snprintf(dir, len, "%s/input-%lld", s->dir, (long long)k);
  rc = pt__mkdirs(dir, err);
  if (rc != PT_OK) goto fail;
  for (int64_t i = 0; i < n; i++) {
    size_t plen = strlen(dir) + 32;
    paths[i] = pt__malloc(plen);
    if (!paths[i]) {
      rc = pt__errorf(err, PT_ENOMEM, "from_batches: out of memory");
      goto fail;
    }
    snprintf(paths[i], plen, "%s/part-%05lld.arrows", dir, (long long)i);
    pt_ipc_writer *w;
    rc = pt_ipc_writer_open_path(paths[i], schema, NULL, &w, err);
    if (rc != PT_OK) goto fail;
    rc = pt_ipc_writer_write(w, &batches[i], err);
    if (rc == PT_OK) rc = pt_ipc_writer_close(w, err);
    pt_ipc_writer_free(w);
    if (rc != PT_OK) {
      pt__error_prefix(err, rc, "from_batches: batch %lld: ", (long long)i);
      goto fail;
    }
  }
  rc = files_node(s, paths, n, schema, out, err);
  paths = NULL;
  if (rc != PT_OK) goto fail;
  for (int64_t i = 0; i < n; i++)
    if (batches[i].release) batches[i].release(&batches[i]);
  pt__free(dir);
  return PT_OK;
fail:
  if (paths)
    for (int64_t i = 0; i < n; i++) pt__free(paths[i]);
  pt__free(paths);
  if (dir) pt__rm_rf(dir);
  pt__free(dir);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Transformations */

static int copy_arg(pt_dataset *ds, const void *arg, size_t arg_size, pt_error *err) {
  if (!arg_size) return PT_OK;
  if (!arg) return pt__errorf(err, PT_EINVAL, "arg is NULL but arg_size is %zu", arg_size);
  ds->arg = pt__malloc(arg_size);
  if (!ds->arg) return pt__errorf(err, PT_ENOMEM, "out of memory");
  memcpy(ds->arg, arg, arg_size);
  ds->arg_size = arg_size;
  return PT_OK;
}

static int fn_node(pt_dataset *parent, pt__node_kind kind, void (*fn)(void),
                   const struct ArrowSchema *schema, const void *arg, size_t arg_size,
                   pt_dataset **out, pt_error *err) {
  const char *what = kind == PT__NODE_MAP              ? "map_batches"
                     : kind == PT__NODE_MAP_PARTITIONS ? "map_partitions"
                                                       : "filter";
  const char *name;
  int rc = pt__fn_lookup_ptr(fn, &name, err);
  if (rc != PT_OK) return pt__error_prefix(err, rc, "%s: ", what);
  pt_dataset *ds;
  PT_RETURN_NOT_OK(node_new(parent->session, kind, parent, schema, &ds, err));
  ds->fn = pt__strdup(name);
  rc = ds->fn ? PT_OK : pt__errorf(err, PT_ENOMEM, "out of memory");
  if (rc == PT_OK) rc = copy_arg(ds, arg, arg_size, err);
  if (rc != PT_OK) {
    pt_dataset_free(ds);
    return pt__error_prefix(err, rc, "%s: ", what);
  }
  *out = ds;
  return PT_OK;
}

static int map_node(pt_dataset *ds, pt__node_kind kind, void (*fn)(void),
                    const struct ArrowSchema *out_schema, const void *arg, size_t arg_size,
                    pt_dataset **out, pt_error *err) {
  const char *what = kind == PT__NODE_MAP ? "map_batches" : "map_partitions";
  if (!ds || !fn || !out)
    return pt__errorf(err, PT_EINVAL, "%s: dataset, fn and out must not be NULL", what);
  *out = NULL;
  PT_RETURN_NOT_OK(fn_node(ds, kind, fn, out_schema ? out_schema : &ds->schema, arg, arg_size,
                           out, err));
  if (out_schema) {
    /* the node's schema IPC is exactly the declared output schema */
    (*out)->out_schema_ipc = pt__malloc((size_t)(*out)->schema_ipc_size);
    if (!(*out)->out_schema_ipc) {
      pt_dataset_free(*out);
      *out = NULL;
      return pt__errorf(err, PT_ENOMEM, "%s: out of memory", what);
    }
    memcpy((*out)->out_schema_ipc, (*out)->schema_ipc, (size_t)(*out)->schema_ipc_size);
    (*out)->out_schema_ipc_size = (*out)->schema_ipc_size;
  }
  return PT_OK;
}

int pt_map_batches(pt_dataset *ds, pt_map_fn fn, const struct ArrowSchema *out_schema,
                   const void *arg, size_t arg_size, pt_dataset **out, pt_error *err) {
  return map_node(ds, PT__NODE_MAP, (void (*)(void))fn, out_schema, arg, arg_size, out, err);
}

int pt_map_partitions(pt_dataset *ds, pt_partition_fn fn, const struct ArrowSchema *out_schema,
                      const void *arg, size_t arg_size, pt_dataset **out, pt_error *err) {
  return map_node(ds, PT__NODE_MAP_PARTITIONS, (void (*)(void))fn, out_schema, arg, arg_size,
                  out, err);
}

int pt_barrier(pt_dataset *ds, pt_dataset **out, pt_error *err) {
  return pt_barrier_attempts(ds, 0, out, err);
}

int pt_barrier_attempts(pt_dataset *ds, int64_t max_attempts, pt_dataset **out,
                        pt_error *err) {
  if (!ds || !out) return pt__errorf(err, PT_EINVAL, "barrier: dataset and out must not be NULL");
  *out = NULL;
  if (max_attempts < 0)
    return pt__errorf(err, PT_EINVAL, "barrier: max_attempts must be at least 1 (or 0 for "
                      "barrier.max_attempts), not %lld", (long long)max_attempts);
  PT_RETURN_NOT_OK(node_new(ds->session, PT__NODE_BARRIER, ds, &ds->schema, out, err));
  (*out)->max_attempts = max_attempts;
  return PT_OK;
}

int pt_with_resources(pt_dataset *ds, const pt_resource_profile *p, pt_dataset **out,
                      pt_error *err) {
  if (!ds || !p || !out)
    return pt__errorf(err, PT_EINVAL,
                      "with_resources: dataset, profile and out must not be NULL");
  *out = NULL;
  pt_resource_profile *copy = pt__malloc(sizeof *copy);
  if (!copy) return pt__errorf(err, PT_ENOMEM, "with_resources: out of memory");
  *copy = *p;
  int rc = node_new(ds->session, PT__NODE_RESOURCES, ds, &ds->schema, out, err);
  if (rc != PT_OK) {
    pt__free(copy);
    return rc;
  }
  (*out)->profile = copy;
  return PT_OK;
}

int pt_filter(pt_dataset *ds, pt_filter_fn fn, const void *arg, size_t arg_size,
              pt_dataset **out, pt_error *err) {
  if (!ds || !fn || !out)
    return pt__errorf(err, PT_EINVAL, "filter: dataset, fn and out must not be NULL");
  *out = NULL;
  return fn_node(ds, PT__NODE_FILTER, (void (*)(void))fn, &ds->schema, arg, arg_size, out, err);
}

static int shuffle_node(pt_dataset *ds, int64_t n, const char *const *keys, int64_t n_keys,
                        pt_dataset **out, pt_error *err) {
  const char *what = n_keys ? "repartition_by" : "repartition";
  if (!ds || !out) return pt__errorf(err, PT_EINVAL, "%s: dataset and out must not be NULL", what);
  *out = NULL;
  if (n < 1)
    return pt__errorf(err, PT_EINVAL, "%s: the number of partitions must be at least 1, not %lld",
                      what, (long long)n);
  for (int64_t k = 0; k < n_keys; k++) {
    int found = 0;
    for (int64_t c = 0; keys[k] && c < ds->schema.n_children; c++)
      found |= strcmp(ds->schema.children[c]->name ? ds->schema.children[c]->name : "", keys[k]) == 0;
    if (!found) {
      pt_buf cols = {0};
      for (int64_t c = 0; c < ds->schema.n_children; c++)
        (void)pt__buf_printf(&cols, "%s'%s'", c ? ", " : "", ds->schema.children[c]->name);
      (void)pt__buf_putc(&cols, '\0'); /* pt_buf holds bytes, not strings */
      pt__errorf(err, PT_EINVAL, "repartition_by: key '%s' is not a column; columns: %s",
                 keys[k] ? keys[k] : "(null)", cols.data ? cols.data : "(none)");
      pt_buf_free(&cols);
      return PT_EINVAL;
    }
  }
  pt_dataset *s;
  PT_RETURN_NOT_OK(node_new(ds->session, PT__NODE_SHUFFLE, ds, &ds->schema, &s, err));
  s->partitions = n;
  if (n_keys) {
    s->keys = pt__calloc((size_t)n_keys, sizeof *s->keys);
    int ok = s->keys != NULL;
    if (ok) s->n_keys = n_keys;
    for (int64_t k = 0; ok && k < n_keys; k++) ok = (s->keys[k] = pt__strdup(keys[k])) != NULL;
    if (!ok) {
      pt_dataset_free(s);
      return pt__errorf(err, PT_ENOMEM, "%s: out of memory", what);
    }
  }
  *out = s;
  return PT_OK;
}

int pt_repartition(pt_dataset *ds, int64_t n, pt_dataset **out, pt_error *err) {
  return shuffle_node(ds, n, NULL, 0, out, err);
}

int pt_repartition_by(pt_dataset *ds, int64_t n, const char *const *keys, int64_t n_keys,
                      pt_dataset **out, pt_error *err) {
  if (n_keys < 1 || !keys)
    return pt__errorf(err, PT_EINVAL, "repartition_by: give at least one key column; use "
                                      "pt_repartition for round robin");
  return shuffle_node(ds, n, keys, n_keys, out, err);
}

int pt_dataset_schema(pt_dataset *ds, struct ArrowSchema *out, pt_error *err) {
  if (!ds || !out) return pt__errorf(err, PT_EINVAL, "dataset_schema: arguments must not be NULL");
  return pt_schema_copy(&ds->schema, out, err);
}

int64_t pt_dataset_num_partitions(const pt_dataset *ds) { return ds ? ds->partitions : 0; }
