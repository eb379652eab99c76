/* parquet.c — pt_read_parquet: Parquet files as a lazy dataset. The driver
 * reads every footer once, keeps the row groups a filter does not rule out,
 * and deals them into partitions of about equal size, as many as split.c
 * sizes by the session's task slots and parquet.partition_bytes: small
 * files share a partition, a big file is split between row groups. Executors
 * read their partition's row groups with the Parquet reader (src/parquet).
 * A directory laid out Hive-style (key=value/.../part.parquet) gives one
 * more column per key, typed as Spark infers partition columns.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* ------------------------------------------------------------------------ */
/* Hive-style directories */

#define HIVE_NULL "__HIVE_DEFAULT_PARTITION__"

static int push_str(char ***a, int64_t *n, int64_t *cap, char *v) {
  if (pt__grow((void **)a, cap, *n + 1, sizeof **a) != PT_OK) return PT_ENOMEM;
  (*a)[(*n)++] = v;
  return PT_OK;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.parquet file below dir, depth first in name order (names starting
 * with '.' or '_' skipped). */
static int walk_dir(const char *dir, int depth, char ***files, int64_t *n, int64_t *cap,
                    pt_error *err) {
  if (depth > 32) return pt__errorf(err, PT_EINVAL, "read_parquet: directories nest deeper than 32");
  DIR *d = opendir(dir);
  if (!d)
    return pt__errorf(err, PT_EIO, "read_parquet: cannot open directory '%s': %s", dir,
                      strerror(errno));
  char **names = NULL;
  int64_t nn = 0, ncap = 0;
  int rc = PT_OK;
  struct dirent *e;
  while (rc == PT_OK && (e = readdir(d))) {
    if (e->d_name[0] == '.' || e->d_name[0] == '_') continue;
    char *dup = pt__strdup(e->d_name);
    if (!dup || push_str(&names, &nn, &ncap, dup) != PT_OK) {
      pt__free(dup);
      rc = pt__errorf(err, PT_ENOMEM, "read_parquet: out of memory");
    }
  }
  closedir(d);
  if (rc == PT_OK && nn > 0) qsort(names, (size_t)nn, sizeof *names, cmp_name);
  for (int64_t i = 0; i < nn && rc == PT_OK; i++) {
    char full[PATH_MAX];
    snprintf(full, sizeof full, "%s/%s", dir, names[i]);
    struct stat sb;
    if (stat(full, &sb) != 0) continue;
    size_t l = strlen(names[i]);
    if (S_ISDIR(sb.st_mode)) {
      rc = walk_dir(full, depth + 1, files, n, cap, err);
    } else if (l >= 8 && strcmp(names[i] + l - 8, ".parquet") == 0) {
      char *dup = pt__strdup(full);
      if (!dup || push_str(files, n, cap, dup) != PT_OK) {
        pt__free(dup);
        rc = pt__errorf(err, PT_ENOMEM, "read_parquet: out of memory");
      }
    }
  }
  for (int64_t i = 0; i < nn; i++) pt__free(names[i]);
  pt__free(names);
  return rc;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* s[0, n) with Hive's %XX escapes decoded; pt__malloc'd. */
static char *unescape(const char *s, size_t n) {
  char *out = pt__malloc(n + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = '\0';
  return out;
}

/* The key=value directories between root and file: n keys and values
 * (values NULL for Hive's null marker). On PT_OK the caller owns both
 * arrays and their strings. */
static int hive_parse(const char *root, const char *file, char ***keys, char ***vals, int64_t *n,
                      pt_error *err) {
  *keys = *vals = NULL;
  *n = 0;
  int64_t cap_k = 0, cap_v = 0, nk = 0;
  const char *p = file + strlen(root);
  while (*p == '/') p++;
  for (const char *slash; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
    const char *eq = memchr(p, '=', (size_t)(slash - p));
    if (!eq) continue;
    char *key = unescape(p, (size_t)(eq - p));
    char *val = unescape(eq + 1, (size_t)(slash - eq - 1));
    if (!key || !val || push_str(keys, &nk, &cap_k, key) != PT_OK) {
      pt__free(key);
      pt__free(val);
      goto oom;
    }
    if (push_str(vals, n, &cap_v, val) != PT_OK) {
      pt__free(val);
      goto oom;
    }
  }
  for (int64_t i = 0; i < *n; i++)
    if (strcmp((*vals)[i], HIVE_NULL) == 0) {
      pt__free((*vals)[i]);
      (*vals)[i] = NULL;
    }
  return PT_OK;
oom:
  for (int64_t i = 0; i < nk; i++) pt__free((*keys)[i]);
  for (int64_t i = 0; i < *n; i++) pt__free((*vals)[i]);
  pt__free(*keys);
  pt__free(*vals);
  *keys = *vals = NULL;
  *n = 0;
  return pt__errorf(err, PT_ENOMEM, "read_parquet: out of memory");
}

/* The type of key j: the partition schema's field of that name, else
 * Spark's inference over every file's value (fmt: 64 bytes). Each value
 * must read as that type. */
static int key_format(const pt_parquet_read_options *opts, char *const *keys, char *const *vals,
                      int64_t nk, int64_t n_files, int64_t j, char *fmt, pt_error *err) {
  const struct ArrowSchema *ps = opts ? opts->partition_schema : NULL;
  const struct ArrowSchema *field = NULL;
  for (int64_t c = 0; ps && c < ps->n_children; c++)
    if (ps->children[c]->name && strcmp(ps->children[c]->name, keys[j]) == 0) field = ps->children[c];
  if (field) {
    if (!pt__hive_read_supported(field->format) || strlen(field->format) >= 64) {
      char t[128];
      pt_type_name(field, t, sizeof t);
      return pt__errorf(err, PT_EINVAL,
                        "read_parquet: partition key '%s' cannot be read as %s; give it a "
                        "boolean, integer, float, decimal, string, binary, date or timestamp type",
                        keys[j], t);
    }
    strcpy(fmt, field->format);
  } else if (pt__hive_infer_format(vals + j, nk, n_files, fmt, 64) != PT_OK) {
    return pt__errorf(err, PT_EINTERNAL, "read_parquet: partition key '%s': type too long", keys[j]);
  }
  /* Every value must read as the type (a mistyped partition schema). */
  struct ArrowSchema f;
  PT_RETURN_NOT_OK(pt_schema_init(&f, fmt, keys[j], ARROW_FLAG_NULLABLE, 0, err));
  int rc = PT_OK;
  for (int64_t i = 0; i < n_files && rc == PT_OK; i++) {
    const char *v = vals[i * nk + j];
    if (v == NULL || (i > 0 && vals[(i - 1) * nk + j] && strcmp(v, vals[(i - 1) * nk + j]) == 0))
      continue;
    pt_builder *b;
    rc = pt_builder_new(&f, &b, err);
    if (rc != PT_OK) break;
    if (pt__hive_append_text(b, &f, v, 1) != PT_OK) {
      char t[128];
      pt_type_name(&f, t, sizeof t);
      rc = pt__errorf(err, PT_EINVAL,
                      "read_parquet: partition key '%s' has the value '%s', which is not a %s; "
                      "fix the partition schema", keys[j], v, t);
    }
    pt_builder_free(b);
  }
  f.release(&f);
  return rc;
}

/* Pieces of the partition values of each file (n_keys per file). */
static int add_piece_values(char ***all, int64_t *n_all, int64_t *cap, char *const *vals,
                            int64_t nk, pt_error *err) {
  for (int64_t k = 0; k < nk; k++) {
    char *v = vals[k] ? pt__strdup(vals[k]) : NULL;
    if ((vals[k] && !v) || push_str(all, n_all, cap, v) != PT_OK) {
      pt__free(v);
      return pt__errorf(err, PT_ENOMEM, "read_parquet: out of memory");
    }
  }
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* The filter, for the tasks */

static void filter_msg_free(Protium__ParquetFilter *m) {
  if (!m) return;
  filter_msg_free(m->a);
  filter_msg_free(m->b);
  pt__free(m->bytes);
  pt__free(m);
}

/* f as a message tree whose strings and arrays are borrowed from f. On
 * PT_OK the caller owns *out (filter_msg_free). */
static int filter_msg(const pt_parquet_filter *f, Protium__ParquetFilter **out) {
  Protium__ParquetFilter *m = pt__calloc(1, sizeof *m);
  *out = m;
  if (!m) return PT_ENOMEM;
  protium__parquet_filter__init(m);
  pt__filter_parts p;
  pt__filter_parts_of(f, &p);
  m->op = p.op;
  if (p.a) {
    if (filter_msg(p.a, &m->a) != PT_OK || filter_msg(p.b, &m->b) != PT_OK) return PT_ENOMEM;
    return PT_OK;
  }
  m->column = (char *)p.column;
  m->literal = p.literal == PT__FILTER_UINT     ? PROTIUM__PARQUET_LITERAL__PARQUET_LITERAL_UINT
               : p.literal == PT__FILTER_DOUBLE ? PROTIUM__PARQUET_LITERAL__PARQUET_LITERAL_DOUBLE
               : p.literal == PT__FILTER_BYTES  ? PROTIUM__PARQUET_LITERAL__PARQUET_LITERAL_BYTES
               : p.literal == PT__FILTER_TIMESTAMP ? PROTIUM__PARQUET_LITERAL__PARQUET_LITERAL_TIMESTAMP
               : p.literal == PT__FILTER_DECIMAL ? PROTIUM__PARQUET_LITERAL__PARQUET_LITERAL_DECIMAL
                                                : PROTIUM__PARQUET_LITERAL__PARQUET_LITERAL_INT;
  m->unit = p.unit;
  size_t n = (size_t)p.n;
  if (p.literal == PT__FILTER_DOUBLE) {
    m->n_doubles = n;
    m->doubles = (double *)p.doubles;
  } else if (p.literal == PT__FILTER_BYTES || p.literal == PT__FILTER_DECIMAL) {
    m->bytes = pt__calloc(n ? n : 1, sizeof *m->bytes);
    if (!m->bytes) return PT_ENOMEM;
    m->n_bytes = n;
    for (size_t i = 0; i < n; i++) {
      m->bytes[i].data = (uint8_t *)p.bytes[i];
      m->bytes[i].len = (size_t)p.lens[i];
    }
  } else {
    m->n_ints = n;
    m->ints = (int64_t *)p.ints;
  }
  return PT_OK;
}

int pt__dataset_store_filter(pt_dataset *ds, const pt_parquet_filter *f, pt_error *err) {
  Protium__ParquetFilter *m;
  int rc = filter_msg(f, &m);
  if (rc == PT_OK) {
    ds->parquet_filter_size = protium__parquet_filter__get_packed_size(m);
    ds->parquet_filter = pt__malloc(ds->parquet_filter_size ? ds->parquet_filter_size : 1);
    if (ds->parquet_filter) protium__parquet_filter__pack(m, ds->parquet_filter);
    else rc = PT_ENOMEM;
  }
  filter_msg_free(m);
  return rc == PT_OK ? PT_OK : pt__errorf(err, PT_ENOMEM, "out of memory");
}

/* Whether paths a and b name files of one directory. */
static bool same_dir(const char *a, const char *b) {
  const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
  size_t la = sa ? (size_t)(sa - a) : 0, lb = sb ? (size_t)(sb - b) : 0;
  return la == lb && memcmp(a, b, la) == 0;
}

int pt_parquet_scan_info(const pt_dataset *ds, pt_parquet_scan *out, pt_error *err) {
  if (!ds || !out) return pt__errorf(err, PT_EINVAL, "parquet_scan_info: ds and out must not be NULL");
  if (ds->kind != PT__NODE_PARQUET || ds->parquet_files < 0)
    return pt__errorf(err, PT_EINVAL, "parquet_scan_info: the dataset was not made by pt_read_parquet");
  out->files = ds->parquet_files;
  out->files_pruned = ds->parquet_files_pruned;
  out->directories_pruned = ds->parquet_dirs_pruned;
  out->row_groups = ds->parquet_row_groups;
  out->row_groups_skipped = ds->parquet_rg_skipped;
  return PT_OK;
}

int pt_read_parquet(pt_session *s, const char *path, const pt_parquet_read_options *opts,
                    pt_dataset **out, pt_error *err) {
  if (!s || !path || !out)
    return pt__errorf(err, PT_EINVAL, "read_parquet: session, path and out must not be NULL");
  *out = NULL;
  /* The read's own threads option above 1 wins over the session's key;
   * checked here so that a bad value fails before any task runs. */
  int64_t threads = opts && opts->threads > 1 ? opts->threads
                                              : pt__conf_int(s->conf, "parquet.read.threads");
  if ((opts && opts->threads < 0) || threads < 1 || threads > 16)
    return pt__errorf(err, PT_EINVAL,
                      "read_parquet: %lld decoding threads asked for (threads or "
                      "parquet.read.threads); give 1 to 16",
                      (long long)(opts && opts->threads < 0 ? opts->threads : threads));
  char **paths = NULL;
  int64_t n = 0, cap_paths = 0;
  struct stat sb;
  bool is_dir = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
  char root[PATH_MAX] = "";
  int rc;
  if (is_dir) {
    /* Directories are walked down, for Hive-style key=value layouts. */
    if (!realpath(path, root)) return pt__errorf(err, PT_EIO, "read_parquet: '%s': %s", path, strerror(errno));
    rc = walk_dir(root, 0, &paths, &n, &cap_paths, err);
    if (rc == PT_OK && n == 0)
      rc = pt__errorf(err, PT_EINVAL, "read_parquet: directory '%s' has no .parquet files", path);
    if (rc != PT_OK) {
      for (int64_t i = 0; i < n; i++) pt__free(paths[i]);
      pt__free(paths);
      return rc;
    }
  } else {
    PT_RETURN_NOT_OK(pt__list_files(path, 1, &paths, &n, err));
  }
  int64_t target = pt__conf_int(s->conf, "parquet.partition_bytes");
  struct ArrowSchema first = {0};
  char first_type[1024] = "";
  pieces pc = {0};
  int64_t partition = 0;
  /* The row groups kept, in file order (owned): they are dealt into
   * partitions once the last footer has given the total. */
  struct kept_rg { int64_t file, index, bytes; } *kept = NULL;
  int64_t n_kept = 0, cap_kept = 0, kept_bytes = 0;
  int64_t files_pruned = 0, dirs_pruned = 0, rg_total = 0, rg_skipped = 0;
  const char *last_pruned = NULL; /* borrowed from paths: its directory was counted */
  char **keys = NULL, **piece_vals = NULL, **file_vals = NULL;
  int64_t nk = 0, n_piece_vals = 0, cap_piece_vals = 0, n_file_vals = 0, cap_file_vals = 0;
  rc = PT_OK;
  /* Partition keys and values of every file first: they type the columns. */
  for (int64_t f = 0; f < n && is_dir && rc == PT_OK; f++) {
    char **fk, **fv;
    int64_t fn;
    rc = hive_parse(root, paths[f], &fk, &fv, &fn, err);
    if (rc != PT_OK) break;
    if (f == 0) {
      keys = fk;
      nk = fn;
      fk = NULL;
    } else {
      bool same = fn == nk;
      for (int64_t k = 0; same && k < fn; k++) same = strcmp(fk[k], keys[k]) == 0;
      if (!same)
        rc = pt__errorf(err, PT_EINVAL,
                        "read_parquet: '%s' is not under the same key=value directories as '%s'; "
                        "all files of a partitioned directory need the same keys, in order",
                        paths[f], paths[0]);
      for (int64_t k = 0; k < fn; k++) pt__free(fk[k]);
      pt__free(fk);
    }
    for (int64_t k = 0; k < fn; k++)
      if (rc == PT_OK && push_str(&file_vals, &n_file_vals, &cap_file_vals, fv[k]) != PT_OK)
        rc = pt__errorf(err, PT_ENOMEM, "read_parquet: out of memory");
      else if (rc != PT_OK) pt__free(fv[k]);
    pt__free(fv);
  }
  /* A filter's comparisons on partition keys are decided by each file's
   * directories: they prune whole files here, and what is left of the
   * filter goes to the file's statistics (its footer knows no keys). */
  const char **formats = NULL;
  char (*fmt_buf)[64] = NULL;
  pt_parquet_read_options file_opts;
  pt_parquet_read_options_init(&file_opts);
  if (opts) file_opts = *opts;
  if (rc == PT_OK && nk > 0) {
    formats = pt__calloc((size_t)nk, sizeof *formats);
    fmt_buf = pt__calloc((size_t)nk, sizeof *fmt_buf);
    if (!formats || !fmt_buf) rc = pt__errorf(err, PT_ENOMEM, "read_parquet: out of memory");
    for (int64_t j = 0; j < nk && rc == PT_OK; j++) {
      rc = key_format(opts, keys, file_vals, nk, n, j, fmt_buf[j], err);
      formats[j] = fmt_buf[j];
    }
  }
  for (int64_t f = 0; f < n && rc == PT_OK; f++) {
    /* A pruned file's footer is still read: every file must share the
     * schema, and the first gives it. Its row groups are not kept. */
    bool pruned = false;
    pt_parquet_filter *bound = NULL;
    file_opts.filter = opts ? opts->filter : NULL;
    if (nk > 0 && opts && opts->filter) {
      bool may = true;
      rc = pt__filter_bind_partition(opts->filter, keys, file_vals + f * nk, formats, nk, &bound,
                                     &may, err);
      if (rc != PT_OK) break;
      pruned = !may;
      file_opts.filter = bound;
    }
    struct ArrowSchema schema;
    pt__parquet_rg *rgs;
    int64_t nrg, considered;
    rc = pt__parquet_plan(paths[f], &file_opts, &schema, &rgs, &nrg, &considered, err);
    pt_parquet_filter_free(bound);
    if (rc == PT_OK && pruned) {
      /* Files sit depth first by name: a directory's files are together. */
      files_pruned++;
      if (!last_pruned || !same_dir(last_pruned, paths[f])) dirs_pruned++;
      last_pruned = paths[f];
    } else if (rc == PT_OK) {
      rg_total += considered;
      rg_skipped += considered - nrg;
    }
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
    for (int64_t g = 0; g < nrg && rc == PT_OK && !pruned; g++) {
      if (pt__grow((void **)&kept, &cap_kept, n_kept + 1, sizeof *kept) != PT_OK) {
        rc = pt__errorf(err, PT_ENOMEM, "read_parquet: out of memory");
        break;
      }
      int64_t bytes = rgs[g].bytes > 0 ? rgs[g].bytes : 1;
      kept[n_kept++] = (struct kept_rg){f, rgs[g].index, bytes};
      kept_bytes += bytes;
    }
    pt__free(rgs);
  }
  /* Whole row groups, in file order, into partitions of about equal size:
   * as many as the session's slots when the files are small (so that they
   * are read by every slot at once), and under the cap. */
  pt__deal deal;
  pt__deal_init(&deal, kept_bytes, pt__split_parts(s, kept_bytes, target), target);
  for (int64_t r = 0; r < n_kept && rc == PT_OK; r++) {
    partition = pt__deal_next(&deal, kept[r].bytes);
    int64_t before = pc.n;
    if (pieces_add(&pc, paths[kept[r].file], partition, kept[r].index) != PT_OK)
      rc = pt__errorf(err, PT_ENOMEM, "read_parquet: out of memory");
    else if (pc.n > before && nk > 0)
      rc = add_piece_values(&piece_vals, &n_piece_vals, &cap_piece_vals,
                            file_vals + kept[r].file * nk, nk, err);
  }
  pt__free(kept);
  /* A partition schema types keys: a name that is none is a mistake. */
  const struct ArrowSchema *ps = opts ? opts->partition_schema : NULL;
  for (int64_t c = 0; rc == PT_OK && ps && c < ps->n_children; c++) {
    int64_t j = 0;
    while (j < nk && !(ps->children[c]->name && strcmp(ps->children[c]->name, keys[j]) == 0)) j++;
    if (j == nk)
      rc = pt__errorf(err, PT_EINVAL,
                      "read_parquet: the partition schema names '%s', which is not a key=value "
                      "directory key under '%s'", ps->children[c]->name ? ps->children[c]->name : "",
                      path);
  }
  /* The schema: the files' columns, then one per partition key. */
  struct ArrowSchema full = {0};
  if (rc == PT_OK && nk > 0) {
    for (int64_t k = 0; k < first.n_children && rc == PT_OK; k++)
      for (int64_t j = 0; j < nk; j++)
        if (first.children[k]->name && strcmp(first.children[k]->name, keys[j]) == 0)
          rc = pt__errorf(err, PT_EINVAL,
                          "read_parquet: partition key '%s' is also a column of the files",
                          keys[j]);
    if (rc == PT_OK) rc = pt_schema_init(&full, "+s", "", 0, first.n_children + nk, err);
    for (int64_t k = 0; k < first.n_children && rc == PT_OK; k++)
      rc = pt_schema_copy(first.children[k], full.children[k], err);
    for (int64_t j = 0; j < nk && rc == PT_OK; j++)
      rc = pt_schema_init(full.children[first.n_children + j], formats[j], keys[j],
                          ARROW_FLAG_NULLABLE, 0, err);
    /* The first file's schema metadata, as without keys (and as
     * pyarrow.dataset does): files that differ are not merged. */
    if (rc == PT_OK) rc = pt__hive_copy_metadata(&first, &full, err);
  }
  for (int64_t i = 0; i < n; i++) pt__free(paths[i]);
  pt__free(paths);
  for (int64_t i = 0; i < n_file_vals; i++) pt__free(file_vals[i]);
  pt__free(file_vals);
  pt__free(formats);
  pt__free(fmt_buf);
  if (rc == PT_OK)
    rc = pt__node_new(s, s->driver, PT__NODE_PARQUET, NULL, nk > 0 ? &full : &first, out, err);
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
    ds->partition_keys = keys;
    ds->n_partition_keys = nk;
    ds->piece_values = piece_vals;
    keys = piece_vals = NULL;
    n_piece_vals = 0;
    /* The read's own batch size, else the session's batch rows (0: the
     * reader's 65536). */
    ds->batch_rows = opts && opts->batch_size > 0
                         ? opts->batch_size
                         : pt__conf_int(s->conf, "arrow.max_records_per_batch");
    ds->read_threads = (int)threads;
    ds->parquet_files = n;
    ds->parquet_files_pruned = files_pruned;
    ds->parquet_dirs_pruned = dirs_pruned;
    ds->parquet_row_groups = rg_total;
    ds->parquet_rg_skipped = rg_skipped;
    if (opts && opts->columns && opts->n_columns > 0) {
      ds->columns = pt__calloc((size_t)opts->n_columns, sizeof *ds->columns);
      if (!ds->columns) rc = pt__errorf(err, PT_ENOMEM, "read_parquet: out of memory");
      for (int64_t i = 0; i < opts->n_columns && rc == PT_OK; i++) {
        ds->columns[i] = pt__strdup(opts->columns[i]);
        if (!ds->columns[i]) rc = pt__errorf(err, PT_ENOMEM, "read_parquet: out of memory");
        else ds->n_columns = i + 1;
      }
    }
    if (rc == PT_OK && opts && opts->filter && (rc = pt__dataset_store_filter(ds, opts->filter, err)) != PT_OK)
      pt__error_prefix(err, rc, "read_parquet: ");
    if (rc == PT_OK && opts && opts->dictionary && opts->n_dictionary > 0) {
      ds->dictionary = pt__calloc((size_t)opts->n_dictionary, sizeof *ds->dictionary);
      if (!ds->dictionary) rc = pt__errorf(err, PT_ENOMEM, "read_parquet: out of memory");
      for (int64_t i = 0; i < opts->n_dictionary && rc == PT_OK; i++) {
        ds->dictionary[i] = pt__strdup(opts->dictionary[i]);
        if (!ds->dictionary[i]) rc = pt__errorf(err, PT_ENOMEM, "read_parquet: out of memory");
        else ds->n_dictionary = i + 1;
      }
    }
    if (rc != PT_OK) {
      pt_dataset_free(*out);
      *out = NULL;
    }
  }
  for (int64_t k = 0; k < nk && keys; k++) pt__free(keys[k]);
  pt__free(keys);
  for (int64_t i = 0; i < n_piece_vals; i++) pt__free(piece_vals[i]);
  pt__free(piece_vals);
  pieces_free(&pc);
  if (first.release) first.release(&first);
  if (full.release) full.release(&full);
  return rc;
}
