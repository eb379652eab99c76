/* delta.c — Delta Lake tables as datasets and as outputs. Reading replays
 * the log (src/delta) in the driver and plans the version's data files'
 * row groups as pt_read_parquet's, with the partition values as columns,
 * but dealt so that every task slot gets a partition of a small table.
 * Writing runs the job with the Parquet sink (one committed attempt per
 * partition; for replace_where a second job rewrites the files it partly
 * matches), moves the files into the table and then creates the next
 * commit file of _delta_log with link(2), which fails when another writer
 * got that version first: the commit happens once or not at all.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api_int.h"
#include "arrow/kernels.h"
#include "delta/delta.h"
#include "parquet/parquet.h"

#define ORPHAN_WAIT_MS 5000
#define HIVE_NULL "__HIVE_DEFAULT_PARTITION__"

void pt_delta_read_options_init(pt_delta_read_options *opts) {
  memset(opts, 0, sizeof *opts);
  opts->version = -1;
  opts->timestamp_ms = INT64_MIN;
}

void pt_delta_write_options_init(pt_delta_write_options *opts) {
  memset(opts, 0, sizeof *opts);
  opts->mode = PT_DELTA_ERROR;
}

static int64_t find_field(const struct ArrowSchema *s, const char *name) {
  for (int64_t i = 0; i < s->n_children; i++)
    if (s->children[i]->name && strcmp(s->children[i]->name, name) == 0) return i;
  return -1;
}

/* Same formats all the way down (names of nested fields aside: writers
 * call list elements "element" or "item"). */
static bool same_type(const struct ArrowSchema *a, const struct ArrowSchema *b) {
  if (strcmp(a->format, b->format) != 0 || a->n_children != b->n_children) return false;
  for (int64_t i = 0; i < a->n_children; i++)
    if (!same_type(a->children[i], b->children[i])) return false;
  return true;
}

/* ------------------------------------------------------------------------ */
/* Reading */

/* The path of a data file on disk: the log's path unescaped, relative to
 * the table unless absolute (file: URIs only). */
static int data_path(const char *root, const char *logged, char *out, size_t cap, pt_error *err) {
  char *p = pt__delta_unescape_path(logged);
  if (!p) return pt__errorf(err, PT_ENOMEM, "out of memory");
  const char *q = p;
  if (strncmp(q, "file://", 7) == 0) q += 7;
  else if (strncmp(q, "file:", 5) == 0) q += 5;
  int rc = PT_OK;
  if (strstr(q, "://"))
    rc = pt__errorf(err, PT_ENOTSUP, "data file '%s' is not on a local file system", logged);
  else if (snprintf(out, cap, "%s%s%s", q[0] == '/' ? "" : root, q[0] == '/' ? "" : "/", q) >=
           (int)cap)
    rc = pt__errorf(err, PT_EINVAL, "data file path too long: '%s'", logged);
  pt__free(p);
  return rc;
}

int pt_delta_scan_info(const pt_dataset *ds, pt_delta_scan *out, pt_error *err) {
  if (!ds || !out || ds->delta_version < 0)
    return pt__errorf(err, PT_EINVAL, "delta_scan_info: the dataset was not made by pt_read_delta");
  out->version = ds->delta_version;
  out->files = ds->delta_files;
  out->files_skipped = ds->delta_skipped;
  return PT_OK;
}

static int push_str(char ***a, int64_t *n, int64_t *cap, char *v) {
  if (pt__grow((void **)a, cap, *n + 1, sizeof **a) != PT_OK) return PT_ENOMEM;
  (*a)[(*n)++] = v;
  return PT_OK;
}

/* The dataset of snap's files as pt_read_delta plans it (snap stays the
 * caller's), from the table at root; o has been checked. With only (one
 * flag per file of snap) just the files it marks, each one partition of
 * its own (its number among them), and file_rows[i] (the caller's) the
 * rows of the i-th, from its footer. */
static int delta_plan(pt_session *s, const char *root, const pt__delta_snapshot *snap,
                      const pt_delta_read_options *opts, const uint8_t *only,
                      int64_t *file_rows, pt_dataset **out, pt_error *err) {
  pt_delta_read_options o = *opts;
  int rc = PT_OK;
  struct ArrowSchema table = {0}, schema = {0};
  int64_t *sel = NULL, n_sel = 0, n_data = 0; /* table columns read: data ones first */
  const char **formats = NULL;
  char **data_names = NULL, **keys = NULL, **piece_vals = NULL;
  int64_t nk = 0, n_piece_vals = 0, cap_piece_vals = 0;
  pt__parquet_rg *rgs = NULL;
  int64_t skipped = 0, partition = 0;
  int64_t target = pt__conf_int(s->conf, "parquet.partition_bytes");
  char **pp = NULL;
  int64_t *ppart = NULL, *pstart = NULL, *pcount = NULL, n_pieces = 0, cap_pieces = 0;
  /* The files kept, in log order: path and nk partition values each (all
   * owned, each owned); and their row groups: file (among those), index in
   * it, uncompressed bytes (owned). */
  char **cf_path = NULL, **cf_vals = NULL;
  int64_t n_cf = 0, cap_cf = 0, n_cf_vals = 0, cap_cf_vals = 0;
  int64_t *rg_file = NULL, *rg_index = NULL, *rg_bytes = NULL, n_rg = 0, cap_rg = 0;
  int64_t total_bytes = 0;
  rc = pt__delta_check_protocol(snap, false, err);
  if (rc == PT_OK) rc = pt__delta_schema_to_arrow(snap->schema_string, &table, err);
  /* Which table columns, in the order they come out: those asked for in
   * their order, else the table's. The files' ones (data_names) are read
   * from the files, the partition columns made from the log. */
  int64_t nt = table.release ? table.n_children : 0;
  bool *is_part = pt__calloc((size_t)(nt ? nt : 1), sizeof *is_part);
  sel = pt__calloc((size_t)(nt ? nt : 1), sizeof *sel);
  if (rc == PT_OK && (!is_part || !sel)) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  for (int64_t k = 0; k < snap->n_partition_columns && rc == PT_OK; k++) {
    int64_t c = find_field(&table, snap->partition_columns[k]);
    if (c < 0)
      rc = pt__errorf(err, PT_EFORMAT, "partition column '%s' is not in the table schema",
                      snap->partition_columns[k]);
    else is_part[c] = true;
  }
  int64_t want = o.n_columns > 0 ? o.n_columns : nt;
  for (int64_t i = 0; i < want && rc == PT_OK; i++) {
    int64_t c = i;
    if (o.n_columns > 0) {
      c = o.columns[i] ? find_field(&table, o.columns[i]) : -1;
      if (c < 0) {
        rc = pt__errorf(err, PT_EINVAL, "read_delta: no column '%s' in the table",
                        o.columns[i] ? o.columns[i] : "(null)");
        break;
      }
      for (int64_t j = 0; j < i && rc == PT_OK; j++)
        if (o.columns[j] && strcmp(o.columns[j], o.columns[i]) == 0)
          rc = pt__errorf(err, PT_EINVAL, "read_delta: column '%s' is named twice", o.columns[i]);
    }
    if (rc == PT_OK) {
      sel[n_sel++] = c;
      if (!is_part[c]) n_data++;
    }
  }
  if (rc == PT_OK && n_data == 0)
    rc = pt__errorf(err, PT_EINVAL, "read_delta: select at least one column that is not a "
                    "partition column");
  if (rc == PT_OK) rc = pt_schema_init(&schema, "+s", "", 0, n_sel, err);
  for (int64_t i = 0; i < n_sel && rc == PT_OK; i++)
    rc = pt_schema_copy(table.children[sel[i]], schema.children[i], err);
  nk = n_sel - n_data;
  /* data_names[i] is output column data_at[i]. */
  int64_t *data_at = NULL;
  if (rc == PT_OK) {
    data_names = pt__calloc((size_t)n_data, sizeof *data_names);
    data_at = pt__calloc((size_t)n_data, sizeof *data_at);
    keys = pt__calloc((size_t)(nk ? nk : 1), sizeof *keys);
    formats = pt__calloc((size_t)(nk ? nk : 1), sizeof *formats);
    if (!data_names || !data_at || !keys || !formats)
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    for (int64_t i = 0, d = 0, k = 0; i < n_sel && rc == PT_OK; i++) {
      const struct ArrowSchema *c = table.children[sel[i]];
      char *name = pt__strdup(c->name);
      if (!name) {
        rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      } else if (is_part[sel[i]]) {
        formats[k] = c->format;
        keys[k++] = name;
      } else {
        data_at[d] = i;
        data_names[d++] = name;
      }
    }
  }
  /* Formats of every partition column, for binding a filter to a file's
   * values. */
  const char **all_formats = pt__calloc((size_t)(snap->n_partition_columns ? snap->n_partition_columns : 1),
                                        sizeof *all_formats);
  if (rc == PT_OK && !all_formats) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  for (int64_t k = 0; k < snap->n_partition_columns && rc == PT_OK; k++)
    all_formats[k] = table.children[find_field(&table, snap->partition_columns[k])]->format;
  bool lacking = false; /* a file lacks a column read: the node reads whole files */
  pt_parquet_read_options file_opts;
  pt_parquet_read_options_init(&file_opts);
  file_opts.columns = (const char *const *)data_names;
  file_opts.n_columns = n_data;
  file_opts.plain_binary = 1; /* writers differ (delta-rs writes views); the table's schema decides */
  /* Whether the filter names a partition column: then it is bound to each
   * file's values, and what is left of it skips the file's row groups. */
  bool uses_keys = false;
  if (rc == PT_OK && o.filter && snap->n_partition_columns > 0) {
    char **none = pt__calloc((size_t)snap->n_partition_columns, sizeof *none);
    if (!none) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    else
      (void)pt__filter_partition_match(o.filter, snap->partition_columns, none, all_formats,
                                       snap->n_partition_columns, &uses_keys);
    pt__free(none);
  }
  char **all_vals = pt__calloc((size_t)(snap->n_partition_columns ? snap->n_partition_columns : 1),
                               sizeof *all_vals);
  if (rc == PT_OK && !all_vals) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  int64_t chosen = 0; /* files planned so far (only: their partition) */
  for (int64_t f = 0; f < snap->n_files && rc == PT_OK; f++) {
    const pt__delta_file *df = &snap->files[f];
    if (only && !only[f]) continue;
    if (o.filter && !pt__delta_file_may_match(o.filter, snap, df, &table)) {
      skipped++;
      continue;
    }
    char full[PATH_MAX];
    rc = data_path(root, df->path, full, sizeof full, err);
    if (rc != PT_OK) break;
    /* The partition values as the engine's partition columns parse them. */
    for (int64_t k = 0; k < snap->n_partition_columns; k++) {
      pt__free(all_vals[k]);
      all_vals[k] = NULL;
    }
    for (int64_t k = 0; k < snap->n_partition_columns && rc == PT_OK; k++) {
      const char *v = df->values[k];
      bool is_str = strcmp(all_formats[k], "u") == 0 || strcmp(all_formats[k], "z") == 0;
      if (v && (*v || is_str)) {
        rc = pt__delta_partition_value(all_formats[k], v, &all_vals[k], err);
        if (rc != PT_OK)
          pt__error_prefix(err, rc, "read_delta: data file '%s', column '%s': ", df->path,
                           snap->partition_columns[k]);
      }
    }
    if (rc != PT_OK) break;
    pt_parquet_filter *rest = NULL;
    bool may = true;
    if (o.filter && !uses_keys) {
      rc = pt__filter_copy(o.filter, &rest, err);
    } else if (o.filter) {
      rc = pt__filter_bind_partition(o.filter, snap->partition_columns, all_vals, all_formats,
                                     snap->n_partition_columns, &rest, &may, err);
    }
    if (rc != PT_OK) break;
    if (!may) {
      pt_parquet_filter_free(rest);
      skipped++;
      continue;
    }
    struct ArrowSchema fs;
    int64_t nrg = 0;
    file_opts.filter = rest;
    file_opts.columns = (const char *const *)data_names;
    file_opts.n_columns = n_data;
    rc = pt__parquet_plan(full, &file_opts, &fs, &rgs, &nrg, NULL, err);
    if (rc == PT_EINVAL) {
      /* A column the file lacks (added to the table after the file was
       * written; also a filter's): the whole file, its row groups all. */
      file_opts.filter = NULL;
      file_opts.columns = NULL;
      file_opts.n_columns = 0;
      rc = pt__parquet_plan(full, &file_opts, &fs, &rgs, &nrg, NULL, err);
    }
    pt_parquet_filter_free(rest);
    if (rc != PT_OK) {
      pt__error_prefix(err, rc, "read_delta: data file '%s' of version %lld: ", full,
                       (long long)snap->version);
      break;
    }
    for (int64_t i = 0; i < n_data && rc == PT_OK; i++) {
      int64_t c = find_field(&fs, data_names[i]);
      if (c < 0) {
        lacking = true;
      } else if (!same_type(fs.children[c], schema.children[data_at[i]])) {
        char want_t[256], got[256];
        pt_type_name(schema.children[data_at[i]], want_t, sizeof want_t);
        pt_type_name(fs.children[c], got, sizeof got);
        rc = pt__errorf(err, PT_EINVAL, "read_delta: data file '%s' has %s for column '%s', but "
                        "the table schema says %s", full, got, data_names[i], want_t);
      }
    }
    fs.release(&fs);
    /* The values of the partition columns read, in their order. */
    char **vals = NULL;
    if (rc == PT_OK && nk > 0) {
      vals = pt__calloc((size_t)nk, sizeof *vals);
      if (!vals) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      for (int64_t k = 0; k < nk && rc == PT_OK; k++) {
        int64_t pk = 0;
        while (pk < snap->n_partition_columns && strcmp(snap->partition_columns[pk], keys[k]) != 0) pk++;
        vals[k] = all_vals[pk];
      }
    }
    if (only) {
      file_rows[chosen] = 0;
      for (int64_t g = 0; g < nrg; g++) file_rows[chosen] += rgs[g].rows;
    }
    /* The file and its row groups are kept as found; partitions are dealt
     * after the last file, once the total bytes are known. */
    char *dup = rc == PT_OK ? pt__strdup(full) : NULL;
    if (rc == PT_OK && (!dup || push_str(&cf_path, &n_cf, &cap_cf, dup) != PT_OK)) {
      pt__free(dup);
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    }
    for (int64_t k = 0; k < nk && rc == PT_OK; k++) {
      char *v = vals[k] ? pt__strdup(vals[k]) : NULL;
      if ((vals[k] && !v) || push_str(&cf_vals, &n_cf_vals, &cap_cf_vals, v) != PT_OK) {
        pt__free(v);
        rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      }
    }
    for (int64_t g = 0; g < nrg && rc == PT_OK; g++) {
      int64_t c1 = cap_rg, c2 = cap_rg, c3 = cap_rg;
      if (pt__grow((void **)&rg_file, &c1, n_rg + 1, sizeof *rg_file) != PT_OK ||
          pt__grow((void **)&rg_index, &c2, n_rg + 1, sizeof *rg_index) != PT_OK ||
          pt__grow((void **)&rg_bytes, &c3, n_rg + 1, sizeof *rg_bytes) != PT_OK) {
        rc = pt__errorf(err, PT_ENOMEM, "out of memory");
        break;
      }
      cap_rg = c1;
      rg_file[n_rg] = chosen;
      rg_index[n_rg] = rgs[g].index;
      rg_bytes[n_rg] = rgs[g].bytes > 0 ? rgs[g].bytes : 1;
      total_bytes += rg_bytes[n_rg];
      n_rg++;
    }
    chosen++;
    pt__free(vals); /* the values are all_vals' */
    pt__free(rgs);
    rgs = NULL;
  }
  /* Row groups in file order into partitions (with only: a file each), a
   * run of one file's row groups in one partition a piece. */
  pt__deal deal;
  pt__deal_init(&deal, total_bytes, only ? 1 : pt__split_parts(s, total_bytes, target), target);
  for (int64_t r = 0; r < n_rg && rc == PT_OK; r++) {
    partition = only ? rg_file[r] : pt__deal_next(&deal, rg_bytes[r]);
    if (n_pieces > 0 && ppart[n_pieces - 1] == partition && r > 0 &&
        rg_file[r - 1] == rg_file[r] && pstart[n_pieces - 1] + pcount[n_pieces - 1] == rg_index[r]) {
      pcount[n_pieces - 1]++;
      continue;
    }
    int64_t c1 = cap_pieces, c2 = cap_pieces, c3 = cap_pieces, c4 = cap_pieces;
    char *dup = pt__strdup(cf_path[rg_file[r]]);
    if (!dup || pt__grow((void **)&pp, &c1, n_pieces + 1, sizeof *pp) != PT_OK ||
        pt__grow((void **)&ppart, &c2, n_pieces + 1, sizeof *ppart) != PT_OK ||
        pt__grow((void **)&pstart, &c3, n_pieces + 1, sizeof *pstart) != PT_OK ||
        pt__grow((void **)&pcount, &c4, n_pieces + 1, sizeof *pcount) != PT_OK) {
      pt__free(dup);
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      break;
    }
    cap_pieces = c1;
    pp[n_pieces] = dup;
    ppart[n_pieces] = partition;
    pstart[n_pieces] = rg_index[r];
    pcount[n_pieces] = 1;
    n_pieces++;
    for (int64_t k = 0; k < nk && rc == PT_OK; k++) {
      const char *cv = cf_vals[rg_file[r] * nk + k];
      char *v = cv ? pt__strdup(cv) : NULL;
      if ((cv && !v) || push_str(&piece_vals, &n_piece_vals, &cap_piece_vals, v) != PT_OK) {
        pt__free(v);
        rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      }
    }
  }
  if (rc == PT_OK) rc = pt__node_new(s, s->driver, PT__NODE_PARQUET, NULL, &schema, out, err);
  if (rc == PT_OK) {
    pt_dataset *ds = *out;
    ds->partitions = only ? (chosen > 0 ? chosen : 1) : n_pieces > 0 ? partition + 1 : 1;
    ds->n_pieces = n_pieces;
    ds->piece_paths = pp;
    ds->piece_partition = ppart;
    ds->piece_rg_start = pstart;
    ds->piece_rg_count = pcount;
    pp = NULL;
    ppart = pstart = pcount = NULL;
    n_pieces = 0;
    ds->partition_keys = keys;
    ds->n_partition_keys = nk;
    ds->piece_values = piece_vals;
    keys = piece_vals = NULL;
    n_piece_vals = 0;
    if (lacking) { /* whole files: each gives what it has, by name */
      ds->columns = NULL;
      ds->n_columns = 0;
    } else {
      ds->columns = data_names;
      ds->n_columns = n_data;
      data_names = NULL;
    }
    ds->batch_rows = o.batch_size;
    ds->read_threads = (int)pt__conf_int(s->conf, "parquet.read.threads");
    ds->delta_version = snap->version;
    ds->delta_files = snap->n_files;
    ds->delta_skipped = skipped;
  }
  for (int64_t i = 0; i < n_pieces; i++) pt__free(pp[i]);
  pt__free(pp);
  pt__free(ppart);
  pt__free(pstart);
  pt__free(pcount);
  for (int64_t i = 0; i < n_piece_vals; i++) pt__free(piece_vals[i]);
  pt__free(piece_vals);
  for (int64_t i = 0; i < n_cf; i++) pt__free(cf_path[i]);
  pt__free(cf_path);
  for (int64_t i = 0; i < n_cf_vals; i++) pt__free(cf_vals[i]);
  pt__free(cf_vals);
  pt__free(rg_file);
  pt__free(rg_index);
  pt__free(rg_bytes);
  for (int64_t k = 0; keys && k < nk; k++) pt__free(keys[k]);
  pt__free(keys);
  for (int64_t i = 0; data_names && i < n_data; i++) pt__free(data_names[i]);
  pt__free(data_names);
  pt__free(formats);
  pt__free(all_formats);
  for (int64_t k = 0; all_vals && k < snap->n_partition_columns; k++) pt__free(all_vals[k]);
  pt__free(all_vals);
  pt__free(data_at);
  pt__free(sel);
  pt__free(is_part);
  if (schema.release) schema.release(&schema);
  if (table.release) table.release(&table);
  return rc;
}


int pt_read_delta(pt_session *s, const char *path, const pt_delta_read_options *opts,
                  pt_dataset **out, pt_error *err) {
  if (!s || !path || !out)
    return pt__errorf(err, PT_EINVAL, "read_delta: session, path and out must not be NULL");
  *out = NULL;
  if (pt__conf_int(s->conf, "parquet.read.threads") > 16)
    return pt__errorf(err, PT_EINVAL, "read_delta: parquet.read.threads is %lld; give 1 to 16",
                      (long long)pt__conf_int(s->conf, "parquet.read.threads"));
  pt_delta_read_options o;
  pt_delta_read_options_init(&o);
  if (opts) o = *opts;
  if (o.version >= 0 && o.timestamp_ms != INT64_MIN)
    return pt__errorf(err, PT_EINVAL, "read_delta: give a version or a timestamp, not both");
  if (o.n_columns < 0 || (o.n_columns > 0 && !o.columns))
    return pt__errorf(err, PT_EINVAL, "read_delta: columns must list n_columns names");
  char root[PATH_MAX];
  if (!realpath(path, root))
    return pt__errorf(err, PT_EINVAL, "read_delta: '%s': %s", path, strerror(errno));
  pt__delta_snapshot snap;
  int rc = pt__delta_snapshot_load(root, o.version, o.timestamp_ms, &snap, err);
  if (rc != PT_OK) return pt__error_prefix(err, rc, "read_delta: ");
  rc = delta_plan(s, root, &snap, &o, NULL, NULL, out, err);
  pt__delta_snapshot_free(&snap);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Writing */

static void uuid4(char out[37]) {
  uint8_t b[16];
  if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid() << 40;
    for (int i = 0; i < 16; i++, x = x * 6364136223846793005ULL + 1442695040888963407ULL)
      b[i] = (uint8_t)(x >> 56);
  }
  b[6] = (uint8_t)((b[6] & 0x0F) | 0x40);
  b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
           b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A path as the log keeps it: percent-encoded but for unreserved
 * characters, '/' and '='. */
static int put_uri_path(pt_buf *b, const char *p) {
  for (; *p; p++) {
    unsigned char c = (unsigned char)*p;
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 strchr("-._~/=", c) != NULL;
    if (plain) PT_RETURN_NOT_OK(pt__buf_putc(b, (char)c));
    else PT_RETURN_NOT_OK(pt__buf_printf(b, "%%%02X", c));
  }
  return PT_OK;
}

typedef struct new_file {
  char *rel;        /* owned: on disk, relative to the table */
  char *abs;        /* owned */
  char **values;    /* owned: one per partition column, NULL = null */
} new_file;

typedef struct writing {
  const char *root;
  const char *suffix;            /* "<uuid>-c000.parquet" */
  char *const *keys;
  const char *const *formats;    /* the keys' Arrow formats */
  int64_t nk;
  new_file *files;
  int64_t n, cap;
  char **dirs;                   /* directories made, deepest last */
  int64_t n_dirs, cap_dirs;
} writing;

static int hexv(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Hive's %XX escapes undone; NULL without memory. */
static char *unescape_n(const char *s, size_t n) {
  char *o = pt__malloc(n + 1);
  if (!o) return NULL;
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
      o[j++] = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
      i += 2;
    } else {
      o[j++] = s[i];
    }
  }
  o[j] = '\0';
  return o;
}

static int make_dir(writing *w, const char *dir, pt_error *err) {
  struct stat sb;
  if (stat(dir, &sb) == 0) return PT_OK;
  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    return pt__errorf(err, PT_EIO, "cannot create '%s': %s", dir, strerror(errno));
  char *dup = pt__strdup(dir);
  if (!dup || push_str(&w->dirs, &w->n_dirs, &w->cap_dirs, dup) != PT_OK) {
    pt__free(dup);
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  return PT_OK;
}

static bool is_binary_format(const char *f) {
  return strcmp(f, "z") == 0 || strcmp(f, "Z") == 0 || strcmp(f, "vz") == 0;
}

/* rel_dir with each binary key's value spelled as delta-rs spells it: every
 * byte as the text \u00XX (a JSON string holds no bytes >= 0x80 that are
 * not UTF-8, and a Delta log must be UTF-8), the backslashes Hive-escaped in
 * the directory name (%5C). A zero byte is refused: partition values are
 * C strings from here on. On PT_OK out holds the path. */
static int spell_binary_dirs(const writing *w, const char *rel_dir, char *out, size_t cap,
                             pt_error *err) {
  pt_buf b = {0};
  const char *p = rel_dir;
  int rc = PT_OK;
  for (int64_t k = 0; k < w->nk && rc == PT_OK && *p; k++) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    const char *eq = memchr(p, '=', n);
    size_t vn = eq ? n - (size_t)(eq + 1 - p) : 0;
    bool spell = eq && w->formats && is_binary_format(w->formats[k]) &&
                 !(vn == strlen(HIVE_NULL) && memcmp(eq + 1, HIVE_NULL, vn) == 0);
    if (k > 0) rc = pt__buf_append(&b, "/", 1);
    if (rc == PT_OK && !spell) rc = pt__buf_append(&b, p, n);
    if (rc == PT_OK && spell) {
      rc = pt__buf_append(&b, p, (size_t)(eq + 1 - p));
      const char *v = eq + 1;
      for (size_t i = 0; i < vn && rc == PT_OK; i++) {
        int byte = (unsigned char)v[i];
        if (v[i] == '%' && i + 2 < vn && hexv(v[i + 1]) >= 0 && hexv(v[i + 2]) >= 0) {
          byte = hexv(v[i + 1]) * 16 + hexv(v[i + 2]);
          i += 2;
        }
        if (byte == 0) {
          rc = pt__errorf(err, PT_ENOTSUP,
                          "partition column '%s': a binary value with a zero byte cannot be "
                          "a partition value; partition by another column",
                          w->keys[k]);
          break;
        }
        char t[16];
        snprintf(t, sizeof t, "%%5Cu%04X", byte);
        rc = pt__buf_append(&b, t, strlen(t));
      }
    }
    p = slash ? slash + 1 : p + n;
  }
  if (rc == PT_OK && *p && (pt__buf_append(&b, "/", 1) || pt__buf_append(&b, p, strlen(p))))
    rc = PT_ENOMEM;
  if (rc == PT_ENOMEM) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  if (rc == PT_OK && b.len + 1 > cap)
    rc = pt__errorf(err, PT_EINVAL, "path too long under '%s'", w->root);
  if (rc == PT_OK) {
    if (b.len) memcpy(out, b.data, b.len);
    out[b.len] = '\0';
  }
  pt_buf_free(&b);
  return rc;
}

/* Moves the data file at src to rel_dir/<stem>-<suffix> in the table. */
/* Moves src to abs and records nf as one of w's new files (owned by w
 * from then on, taken back with it); with rc already an error, or when
 * the move fails, frees nf instead and returns the error. */
static int adopt(writing *w, new_file *nf, const char *src, const char *abs, int rc,
                 pt_error *err) {
  if (rc == PT_OK && pt__grow((void **)&w->files, &w->cap, w->n + 1, sizeof *w->files) != PT_OK)
    rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  if (rc == PT_OK && rename(src, abs) != 0)
    rc = pt__errorf(err, PT_EIO, "cannot move '%s' to '%s': %s", src, abs, strerror(errno));
  if (rc != PT_OK) {
    for (int64_t k = 0; nf->values && k < w->nk; k++) pt__free(nf->values[k]);
    pt__free(nf->values);
    pt__free(nf->rel);
    pt__free(nf->abs);
    return rc;
  }
  w->files[w->n++] = *nf;
  return PT_OK;
}

static int move_in(writing *w, const char *src, const char *rel_dir, const char *stem,
                   pt_error *err) {
  char rel[PATH_MAX], abs[2 * PATH_MAX + 2], spelled[PATH_MAX];
  if (*rel_dir) {
    PT_RETURN_NOT_OK(spell_binary_dirs(w, rel_dir, spelled, sizeof spelled, err));
    rel_dir = spelled;
  }
  if (snprintf(rel, sizeof rel, "%s%s%s-%s", rel_dir, *rel_dir ? "/" : "", stem, w->suffix) >=
      (int)sizeof rel)
    return pt__errorf(err, PT_EINVAL, "path too long under '%s'", w->root);
  snprintf(abs, sizeof abs, "%s/%s", w->root, rel);
  new_file nf = {0};
  nf.values = pt__calloc((size_t)(w->nk ? w->nk : 1), sizeof *nf.values);
  nf.rel = pt__strdup(rel);
  nf.abs = pt__strdup(abs);
  int rc = !nf.values || !nf.rel || !nf.abs ? pt__errorf(err, PT_ENOMEM, "out of memory") : PT_OK;
  /* The values from the key=value directories, in the keys' order. */
  const char *p = rel_dir;
  for (int64_t k = 0; k < w->nk && rc == PT_OK; k++) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    const char *eq = memchr(p, '=', n);
    if (!eq) {
      rc = pt__errorf(err, PT_EINTERNAL, "partition directory '%s' has no key=value", rel_dir);
      break;
    }
    size_t vn = n - (size_t)(eq + 1 - p);
    if (!(vn == strlen(HIVE_NULL) && memcmp(eq + 1, HIVE_NULL, vn) == 0)) {
      nf.values[k] = unescape_n(eq + 1, vn);
      if (!nf.values[k]) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      /* Timestamps as the protocol spells them, to the microsecond. */
      char *v = NULL;
      if (rc == PT_OK && w->formats && strncmp(w->formats[k], "ts", 2) == 0 &&
          (rc = pt__delta_partition_value(w->formats[k], nf.values[k], &v, err)) == PT_OK) {
        pt__free(nf.values[k]);
        nf.values[k] = v;
      }
    }
    p = slash ? slash + 1 : p + n;
  }
  /* Directories first (recorded so a failure can take them back). */
  for (char *q = rel; rc == PT_OK && (q = strchr(q, '/')) != NULL; q++) {
    *q = '\0';
    char dir[2 * PATH_MAX + 2];
    snprintf(dir, sizeof dir, "%s/%s", w->root, rel);
    *q = '/';
    rc = make_dir(w, dir, err);
  }
  return adopt(w, &nf, src, abs, rc, err);
}

/* The files of a partitioned attempt's directory tree, moved in. */
static int move_tree(writing *w, const char *base, const char *rel, int depth, pt_error *err) {
  char dir[2 * PATH_MAX + 2];
  snprintf(dir, sizeof dir, "%s%s%s", base, *rel ? "/" : "", rel);
  if (depth > 64) return pt__errorf(err, PT_EINVAL, "'%s' nests too deep", dir);
  DIR *d = opendir(dir);
  if (!d) return pt__errorf(err, PT_EIO, "cannot open '%s': %s", dir, strerror(errno));
  int rc = PT_OK;
  struct dirent *e;
  while (rc == PT_OK && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char sub[PATH_MAX], from[2 * PATH_MAX + 2];
    if (snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >= (int)sizeof sub) {
      rc = pt__errorf(err, PT_EINVAL, "path too long under '%s'", dir);
      break;
    }
    snprintf(from, sizeof from, "%s/%s", base, sub);
    struct stat sb;
    if (lstat(from, &sb) != 0) {
      rc = pt__errorf(err, PT_EIO, "cannot stat '%s': %s", from, strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
      rc = move_tree(w, base, sub, depth + 1, err);
    } else {
      char stem[NAME_MAX + 1];
      snprintf(stem, sizeof stem, "%s", e->d_name);
      char *dot = strstr(stem, ".parquet");
      if (dot) *dot = '\0';
      rc = move_in(w, from, rel, stem, err);
    }
  }
  closedir(d);
  return rc;
}

static void take_back(writing *w) {
  for (int64_t i = 0; i < w->n; i++) unlink(w->files[i].abs);
  for (int64_t i = w->n_dirs; i-- > 0;) rmdir(w->dirs[i]); /* fails, as it should, when not empty */
}

static void writing_free(writing *w) {
  for (int64_t i = 0; i < w->n; i++) {
    for (int64_t k = 0; k < w->nk; k++) pt__free(w->files[i].values[k]);
    pt__free(w->files[i].values);
    pt__free(w->files[i].rel);
    pt__free(w->files[i].abs);
  }
  pt__free(w->files);
  for (int64_t i = 0; i < w->n_dirs; i++) pt__free(w->dirs[i]);
  pt__free(w->dirs);
}

static int put_values(pt_buf *b, char *const *keys, char *const *vals, int64_t nk) {
  PT_RETURN_NOT_OK(pt__buf_putc(b, '{'));
  for (int64_t k = 0; k < nk; k++) {
    if (k > 0) PT_RETURN_NOT_OK(pt__buf_putc(b, ','));
    PT_RETURN_NOT_OK(pt__json_put_string(b, keys[k], -1));
    PT_RETURN_NOT_OK(pt__buf_putc(b, ':'));
    if (vals[k]) PT_RETURN_NOT_OK(pt__json_put_string(b, vals[k], -1));
    else PT_RETURN_NOT_OK(pt__buf_printf(b, "null"));
  }
  return pt__buf_putc(b, '}');
}

static bool has_ntz(const struct ArrowSchema *s) {
  if (strcmp(s->format, "tsu:") == 0) return true;
  for (int64_t i = 0; i < s->n_children; i++)
    if (has_ntz(s->children[i])) return true;
  return false;
}

/* The table's schemaString with ds's columns that the table lacks added
 * at the end (nullable: the rows written before have none), into out.
 * The table's own fields are kept as the log spells them. */
static int merged_schema(const pt__delta_snapshot *snap, const struct ArrowSchema *ds,
                         const struct ArrowSchema *table, pt_buf *out, pt_error *err) {
  struct ArrowSchema add = {0};
  pt_buf fields = {0};
  int64_t n = 0;
  for (int64_t i = 0; i < ds->n_children; i++) n += find_field(table, ds->children[i]->name) < 0;
  int rc = pt_schema_init(&add, "+s", "", 0, n, err);
  for (int64_t i = 0, j = 0; i < ds->n_children && rc == PT_OK; i++) {
    if (find_field(table, ds->children[i]->name) >= 0) continue;
    rc = pt_schema_copy(ds->children[i], add.children[j], err);
    if (rc == PT_OK) add.children[j++]->flags |= ARROW_FLAG_NULLABLE;
  }
  bool ntz = rc == PT_OK && has_ntz(&add);
  for (int64_t k = 0; ntz && k < snap->n_reader_features; k++)
    ntz = strcmp(snap->reader_features[k], "timestampNtz") != 0;
  if (ntz)
    rc = pt__errorf(err, PT_ENOTSUP, "write_delta: a timestamp_ntz column cannot be added to a "
                    "table without the timestampNtz feature; cast it to a timestamp with a zone");
  if (rc == PT_OK) rc = pt__delta_schema_from_arrow(&add, &fields, err);
  if (rc != PT_OK) pt__error_prefix(err, rc, "write_delta: merging schemas: ");
  /* {"type":"struct","fields":[NEW]} into the table's fields array, whose
   * ']' closes the schema (Delta writers put "fields" last). */
  const char *old = snap->schema_string, *close = strrchr(old, ']');
  const char *mine = fields.data ? memchr(fields.data, '[', fields.len) : NULL, *mine_end = NULL;
  for (size_t i = fields.len; mine && !mine_end && i-- > 0;)
    if (fields.data[i] == ']') mine_end = fields.data + i;
  bool only_brace = close != NULL;
  int depth = 0;
  for (const char *p = close ? close + 1 : old; only_brace && *p; p++) {
    if (*p == '}') depth++;
    else if (!strchr(" \t\r\n", *p)) only_brace = false;
  }
  const char *open = close;
  while (open && open > old && open[-1] != '[' && strchr(" \t\r\n", open[-1])) open--;
  bool empty = open && open > old && open[-1] == '[';
  if (rc == PT_OK && (!only_brace || depth != 1 || !mine || !mine_end))
    rc = pt__errorf(err, PT_ENOTSUP, "write_delta: merging schemas: the table's schemaString "
                    "does not end with its fields; protium cannot add columns to it");
  if (rc == PT_OK &&
      (pt__buf_printf(out, "%.*s%s%.*s%s", (int)(close - old), old, empty ? "" : ",",
                      (int)(mine_end - mine - 1), mine + 1, close) != PT_OK))
    rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  pt_buf_free(&fields);
  if (add.release) add.release(&add);
  return rc;
}

/* replace_where bound to one file's partition values (as the engine's
 * partition columns parse them; NULL null): *how is WHERE_NONE when they
 * rule every row out, WHERE_ALL when they match every row, else
 * WHERE_ROWS and *rest (the caller's) is what the rows must decide. */
enum { WHERE_NONE, WHERE_ALL, WHERE_ROWS };
static int where_bind(const pt_parquet_filter *w, char *const *keys, char *const *vals,
                      const char *const *formats, int64_t nk, int *how,
                      pt_parquet_filter **rest, pt_error *err) {
  bool may = true;
  *rest = NULL;
  PT_RETURN_NOT_OK(pt__filter_bind_partition(w, keys, vals, formats, nk, rest, &may, err));
  if (!may) {
    pt_parquet_filter_free(*rest);
    *rest = NULL;
  }
  *how = !may ? WHERE_NONE : *rest ? WHERE_ROWS : WHERE_ALL;
  return PT_OK;
}

/* Moves the files of a committed attempt's output at src (a file, or the
 * directory tree of a partitioned write) beside the table's file df (at
 * the root when its path is absolute), each as a new file of w with df's
 * partition values. */
static int move_beside(writing *w, const char *src, const pt__delta_file *df, int depth,
                       pt_error *err) {
  struct stat sb;
  if (depth > 64) return pt__errorf(err, PT_EINVAL, "'%s' nests too deep", src);
  if (lstat(src, &sb) != 0)
    return pt__errorf(err, PT_EIO, "cannot stat '%s': %s", src, strerror(errno));
  if (S_ISDIR(sb.st_mode)) {
    DIR *d = opendir(src);
    if (!d) return pt__errorf(err, PT_EIO, "cannot open '%s': %s", src, strerror(errno));
    int rc = PT_OK;
    struct dirent *e;
    while (rc == PT_OK && (e = readdir(d))) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char sub[2 * PATH_MAX];
      if (snprintf(sub, sizeof sub, "%s/%s", src, e->d_name) >= (int)sizeof sub)
        rc = pt__errorf(err, PT_EINVAL, "path too long under '%s'", src);
      else rc = move_beside(w, sub, df, depth + 1, err);
    }
    closedir(d);
    return rc;
  }
  char *logged = pt__delta_unescape_path(df->path); /* owned here */
  if (!logged) return pt__errorf(err, PT_ENOMEM, "out of memory");
  const char *slash = strrchr(logged, '/');
  bool relative = !strstr(logged, ":") && logged[0] != '/';
  int dn = relative && slash ? (int)(slash - logged) : 0;
  char rel[PATH_MAX], abs[2 * PATH_MAX + 2], rid[37];
  uuid4(rid);
  int n = snprintf(rel, sizeof rel, "%.*s%spart-00000-%s-c000.parquet", dn, logged, dn ? "/" : "", rid);
  pt__free(logged);
  if (n >= (int)sizeof rel) return pt__errorf(err, PT_EINVAL, "path too long beside '%s'", df->path);
  snprintf(abs, sizeof abs, "%s/%s", w->root, rel);
  new_file nf = {0};
  nf.values = pt__calloc((size_t)(w->nk ? w->nk : 1), sizeof *nf.values);
  nf.rel = pt__strdup(rel);
  nf.abs = pt__strdup(abs);
  bool ok = nf.values && nf.rel && nf.abs;
  for (int64_t k = 0; ok && k < w->nk; k++)
    ok = !df->values[k] || (nf.values[k] = pt__strdup(df->values[k])) != NULL;
  int rc = ok ? PT_OK : pt__errorf(err, PT_ENOMEM, "out of memory");
  return adopt(w, &nf, src, abs, rc, err);
}

/* Rewrites the active files that replace_where may partly match
 * (partly[f]) in the executors, as a job of its own before the commit: one
 * task per file reads it as read_delta does (a column the file lacks is
 * null), keeps its rows where the predicate is FALSE or NULL (the EXCLUDE
 * operator) and writes them with the write's Parquet settings (like's)
 * through the engine's sink, which commits one attempt per task as for
 * the write's own files. Then, here: a file none of whose rows matched
 * stays (its copy is dropped); any other is removed (removed[f]) and its
 * copy, when rows are left, moved beside it as one of w's new files. The
 * table's version is untouched until the caller commits; on failure the
 * files moved so far are w's to take back. */
static int rewrite_partly(pt_dataset *ds, const char *root, const char *temp_root,
                          const pt__delta_snapshot *snap, const pt_parquet_filter *where,
                          const uint8_t *partly, const pt__action *like, writing *w,
                          bool *removed, pt_error *err) {
  int64_t n = 0;
  for (int64_t f = 0; f < snap->n_files; f++) n += partly[f] != 0;
  if (n == 0) return PT_OK;
  int64_t *rows = pt__calloc((size_t)n, sizeof *rows);   /* owned here: each file's, from its footer */
  int64_t *which = pt__calloc((size_t)n, sizeof *which); /* owned here: partition i rewrites
                                                            snap->files[which[i]] */
  pt_dataset *src = NULL, *x = NULL;                     /* owned here: a reference each */
  int rc = rows && which ? PT_OK : pt__errorf(err, PT_ENOMEM, "out of memory");
  for (int64_t f = 0, i = 0; rc == PT_OK && f < snap->n_files; f++)
    if (partly[f]) which[i++] = f;
  pt_delta_read_options ro;
  pt_delta_read_options_init(&ro);
  ro.version = snap->version;
  if (rc == PT_OK) rc = delta_plan(ds->session, root, snap, &ro, partly, rows, &src, err);
  if (rc == PT_OK) rc = pt__node_new(ds->session, ds->driver, PT__NODE_EXCLUDE, src, &src->schema, &x, err);
  if (rc == PT_OK) rc = pt__dataset_store_filter(x, where, err);
  pt__action a = *like;
  a.job_id = pt__driver_new_job_id(ds->driver);
  char temp[PATH_MAX + 64];
  snprintf(temp, sizeof temp, "%s/%lld", temp_root, (long long)a.job_id);
  a.ipc_temp_dir = temp;
  pt__job_result res = {0};
  bool ran = false;
  if (rc == PT_OK) rc = pt__mkdirs(temp, err);
  if (rc == PT_OK) {
    rc = pt__driver_run(ds->driver, x, &a, &res, err);
    pt__session_record_job(x, &res);
    ran = true;
  }
  if (rc == PT_OK && res.n_partitions != n)
    rc = pt__errorf(err, PT_EINTERNAL, "the rewrite of %lld files gave %lld outputs",
                    (long long)n, (long long)res.n_partitions);
  for (int64_t i = 0; rc == PT_OK && i < n; i++) {
    const pt__delta_file *df = &snap->files[which[i]];
    if (res.rows[i] == rows[i]) continue; /* no row matched: the file stays */
    removed[which[i]] = true;
    if (res.rows[i] > 0) rc = move_beside(w, res.paths[i], df, 0, err);
    if (rc != PT_OK) pt__error_prefix(err, rc, "rewriting '%s': ", df->path);
  }
  if (ran) {
    pt__job_result_reset(&res);
    (void)pt__driver_quiesce(ds->driver, a.job_id, ORPHAN_WAIT_MS);
    pt__rm_rf(temp);
  }
  pt__node_unref(x);
  pt__node_unref(src);
  pt__free(rows);
  pt__free(which);
  return rc;
}

/* A literal of replace_where as SQL text, typed by its column's format
 * (NULL: the column is not in schema): dates and timestamps as quoted
 * text, strings quoted, binary as X'..'. */
static int put_literal(pt_buf *b, const char *fmt, const pt__filter_parts *p, int64_t k) {
  if (p->literal == PT__FILTER_BYTES) {
    bool bin = fmt && is_binary_format(fmt);
    PT_RETURN_NOT_OK(pt__buf_printf(b, bin ? "X'" : "'"));
    for (int64_t i = 0; i < p->lens[k]; i++) {
      uint8_t c = p->bytes[k][i];
      if (bin) PT_RETURN_NOT_OK(pt__buf_printf(b, "%02X", c));
      else PT_RETURN_NOT_OK(pt__buf_append(b, c == '\'' ? "''" : (const char *)&c, c == '\'' ? 2 : 1));
    }
    return pt__buf_putc(b, '\'');
  }
  if (p->literal == PT__FILTER_DECIMAL) return pt__buf_append(b, p->bytes[k], (size_t)p->lens[k]);
  if (p->literal == PT__FILTER_DOUBLE) return pt__buf_printf(b, "%.17g", p->doubles[k]);
  if (p->literal == PT__FILTER_UINT) return pt__buf_printf(b, "%llu", (unsigned long long)p->ints[k]);
  int64_t v = p->ints[k];
  if (fmt && strcmp(fmt, "b") == 0) return pt__buf_printf(b, v ? "true" : "false");
  if (fmt && (strcmp(fmt, "tdD") == 0 || strncmp(fmt, "ts", 2) == 0)) {
    int64_t per = fmt[1] == 'd' ? 1 : fmt[2] == 's' ? 1 : fmt[2] == 'm' ? 1000
                : fmt[2] == 'u' ? 1000000 : 1000000000;
    int64_t secs = fmt[1] == 'd' ? v * 86400 : v / per - (v % per < 0);
    int64_t frac = fmt[1] == 'd' ? 0 : v - secs * per;
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return pt__buf_printf(b, "%lld", (long long)v);
    char text[64];
    strftime(text, sizeof text, fmt[1] == 'd' ? "%Y-%m-%d" : "%Y-%m-%d %H:%M:%S", &tm);
    if (fmt[1] == 'd' || frac == 0) return pt__buf_printf(b, "'%s'", text);
    int digits = per == 1000 ? 3 : per == 1000000 ? 6 : 9;
    return pt__buf_printf(b, "'%s.%0*lld'", text, digits, (long long)frac);
  }
  return pt__buf_printf(b, "%lld", (long long)v);
}

/* replace_where as SQL text, for the commitInfo's operationParameters
 * (delta-spark keeps the replaceWhere text there): OR in parentheses
 * below the top. */
static int put_predicate(pt_buf *b, const pt_parquet_filter *f, const struct ArrowSchema *schema,
                         bool top) {
  pt__filter_parts p;
  pt__filter_parts_of(f, &p);
  if (p.op == PT_PARQUET_AND || p.op == PT_PARQUET_OR) {
    bool paren = p.op == PT_PARQUET_OR && !top;
    if (paren) PT_RETURN_NOT_OK(pt__buf_putc(b, '('));
    PT_RETURN_NOT_OK(put_predicate(b, p.a, schema, p.op == PT_PARQUET_OR && top));
    PT_RETURN_NOT_OK(pt__buf_printf(b, p.op == PT_PARQUET_AND ? " AND " : " OR "));
    PT_RETURN_NOT_OK(put_predicate(b, p.b, schema, p.op == PT_PARQUET_OR && top));
    return paren ? pt__buf_putc(b, ')') : PT_OK;
  }
  bool plain = p.column[0] != '\0' && !(p.column[0] >= '0' && p.column[0] <= '9');
  for (const char *c = p.column; plain && *c; c++)
    plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_';
  if (plain) PT_RETURN_NOT_OK(pt__buf_printf(b, "%s", p.column));
  else {
    PT_RETURN_NOT_OK(pt__buf_putc(b, '`'));
    for (const char *c = p.column; *c; c++)
      PT_RETURN_NOT_OK(pt__buf_append(b, *c == '`' ? "``" : c, *c == '`' ? 2 : 1));
    PT_RETURN_NOT_OK(pt__buf_putc(b, '`'));
  }
  if (p.op == PT_PARQUET_IS_NULL) return pt__buf_printf(b, " IS NULL");
  if (p.op == PT_PARQUET_IS_NOT_NULL) return pt__buf_printf(b, " IS NOT NULL");
  int64_t c = find_field(schema, p.column);
  const char *fmt = c >= 0 ? schema->children[c]->format : NULL;
  bool not_in = p.op == PT_PARQUET_NOT_IN || (p.op == PT_PARQUET_NE && p.n != 1);
  if (not_in || p.op == PT_PARQUET_IN || (p.op == PT_PARQUET_EQ && p.n != 1)) {
    PT_RETURN_NOT_OK(pt__buf_printf(b, not_in ? " NOT IN (" : " IN ("));
    for (int64_t k = 0; k < p.n; k++) {
      if (k > 0) PT_RETURN_NOT_OK(pt__buf_printf(b, ", "));
      PT_RETURN_NOT_OK(put_literal(b, fmt, &p, k));
    }
    return pt__buf_putc(b, ')');
  }
  const char *op = p.op == PT_PARQUET_EQ ? "=" : p.op == PT_PARQUET_NE ? "!="
                 : p.op == PT_PARQUET_LT ? "<" : p.op == PT_PARQUET_LE ? "<="
                 : p.op == PT_PARQUET_GT ? ">" : ">=";
  PT_RETURN_NOT_OK(pt__buf_printf(b, " %s ", op));
  return put_literal(b, fmt, &p, 0);
}

/* Creates log/<version>.json holding text, atomically and only if absent:
 * written to a temporary name, synced, then linked. *conflict when the
 * version exists. */
static int commit_file(const char *log, int64_t version, const pt_buf *text, bool *conflict,
                       pt_error *err) {
  char tmp[PATH_MAX + 96], final[PATH_MAX + 64], id[37];
  uuid4(id);
  snprintf(tmp, sizeof tmp, "%s/.%020lld.json.%s.tmp", log, (long long)version, id);
  snprintf(final, sizeof final, "%s/%020lld.json", log, (long long)version);
  *conflict = false;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return pt__errorf(err, PT_EIO, "cannot create '%s': %s", tmp, strerror(errno));
  size_t done = 0;
  while (done < text->len) {
    ssize_t n = write(fd, text->data + done, text->len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += (size_t)n;
  }
  int rc = PT_OK;
  if (done != text->len || fsync(fd) != 0)
    rc = pt__errorf(err, PT_EIO, "cannot write '%s': %s", tmp, strerror(errno));
  close(fd);
  if (rc == PT_OK && link(tmp, final) != 0) {
    if (errno == EEXIST) *conflict = true;
    else rc = pt__errorf(err, PT_EIO, "cannot create '%s': %s", final, strerror(errno));
  }
  unlink(tmp);
  if (rc == PT_OK && !*conflict) {
    int dfd = open(log, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)fsync(dfd);
      close(dfd);
    }
  }
  return rc;
}

int pt_write_delta(pt_dataset *ds, const char *path, const pt_delta_write_options *opts,
                   pt_error *err) {
  if (!ds || !path || !*path)
    return pt__errorf(err, PT_EINVAL, "write_delta: dataset and path must be given");
  pt_delta_write_options o;
  pt_delta_write_options_init(&o);
  if (opts) o = *opts;
  if (o.mode != PT_DELTA_ERROR && o.mode != PT_DELTA_APPEND && o.mode != PT_DELTA_OVERWRITE)
    return pt__errorf(err, PT_EINVAL, "write_delta: unknown mode %d; use PT_DELTA_ERROR, "
                      "PT_DELTA_APPEND or PT_DELTA_OVERWRITE", (int)o.mode);
  if (o.n_partition_by < 0 || (o.n_partition_by > 0 && !o.partition_by))
    return pt__errorf(err, PT_EINVAL, "write_delta: partition_by must list n_partition_by names");
  struct stat sb;
  bool made_root = stat(path, &sb) != 0;
  if (!made_root && !S_ISDIR(sb.st_mode))
    return pt__errorf(err, PT_EINVAL, "write_delta: '%s' exists and is not a directory", path);
  int64_t latest;
  PT_RETURN_NOT_OK(pt__delta_latest_version(path, &latest, err));
  if (latest >= 0 && o.mode == PT_DELTA_ERROR)
    return pt__errorf(err, PT_EINVAL, "write_delta: the table '%s' exists (version %lld); write "
                      "with mode append or overwrite", path, (long long)latest);
  const struct ArrowSchema *dsch = &ds->schema;
  pt__delta_snapshot snap = {0};
  pt_buf schema_json = {0}, commit = {0};
  struct ArrowSchema table = {0};
  char **keys = NULL;
  int64_t nk = 0;
  int rc = PT_OK;
  if (latest >= 0) {
    rc = pt__delta_snapshot_load(path, latest, INT64_MIN, &snap, err);
    if (rc == PT_OK) rc = pt__delta_check_protocol(&snap, true, err);
    if (rc == PT_OK && o.mode == PT_DELTA_OVERWRITE && snap.append_only)
      rc = pt__errorf(err, PT_ENOTSUP, "the table is append-only (delta.appendOnly); it cannot "
                      "be overwritten");
    if (rc == PT_OK) rc = pt__delta_schema_to_arrow(snap.schema_string, &table, err);
    if (rc != PT_OK) pt__error_prefix(err, rc, "write_delta: ");
    /* The dataset's columns against the table's, by name: the same types
     * always; other sets of columns only when merging schemas. */
    pt_buf extra = {0}, lacking = {0};
    for (int64_t i = 0; i < table.n_children && rc == PT_OK; i++) {
      const struct ArrowSchema *tc = table.children[i];
      int64_t c = find_field(dsch, tc->name);
      char want[256], got[256];
      pt_type_name(tc, want, sizeof want);
      bool key = false;
      for (int64_t k = 0; k < snap.n_partition_columns; k++)
        key = key || strcmp(snap.partition_columns[k], tc->name) == 0;
      if (c < 0 && (key || !(tc->flags & ARROW_FLAG_NULLABLE))) {
        rc = pt__errorf(err, PT_EINVAL, "write_delta: the dataset has no column '%s' (%s) of "
                        "the table, which is %s", tc->name, want,
                        key ? "a partition column" : "not nullable");
      } else if (c < 0) {
        if (pt__buf_printf(&lacking, "%s'%s'", lacking.len ? ", " : "", tc->name) != PT_OK)
          rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      } else if (!same_type(dsch->children[c], tc)) {
        pt_type_name(dsch->children[c], got, sizeof got);
        rc = pt__errorf(err, PT_EINVAL, "write_delta: column '%s' is %s in the dataset but %s in "
                        "the table; cast it first", tc->name, got, want);
      }
    }
    int64_t n_new = 0;
    for (int64_t i = 0; i < dsch->n_children && rc == PT_OK; i++)
      if (find_field(&table, dsch->children[i]->name) < 0) {
        n_new++;
        if (pt__buf_printf(&extra, "%s'%s'", extra.len ? ", " : "", dsch->children[i]->name) != PT_OK)
          rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      }
    if (rc == PT_OK && !o.merge_schema && (extra.len || lacking.len))
      rc = pt__errorf(err, PT_EINVAL, "write_delta: the dataset's columns differ from the "
                      "table's (not in the table: %.*s; not in the dataset: %.*s); write with "
                      "merge_schema to add columns to the table",
                      extra.len ? (int)extra.len : 4, extra.len ? extra.data : "none",
                      lacking.len ? (int)lacking.len : 4, lacking.len ? lacking.data : "none");
    pt_buf_free(&extra);
    pt_buf_free(&lacking);
    if (rc == PT_OK && n_new > 0) rc = merged_schema(&snap, dsch, &table, &schema_json, err);
    bool same_keys = o.n_partition_by == 0 || o.n_partition_by == snap.n_partition_columns;
    for (int64_t k = 0; same_keys && k < o.n_partition_by; k++)
      same_keys = o.partition_by[k] && strcmp(o.partition_by[k], snap.partition_columns[k]) == 0;
    if (rc == PT_OK && !same_keys)
      rc = pt__errorf(err, PT_EINVAL, "write_delta: partition_by differs from the table's "
                      "partition columns; leave it out to use the table's");
    keys = snap.partition_columns;
    nk = snap.n_partition_columns;
  } else {
    rc = pt__delta_schema_from_arrow(dsch, &schema_json, err);
    if (rc != PT_OK) pt__error_prefix(err, rc, "write_delta: ");
    keys = (char **)o.partition_by;
    nk = o.n_partition_by;
    for (int64_t k = 0; k < nk && rc == PT_OK; k++) {
      int64_t c = keys[k] ? find_field(dsch, keys[k]) : -1;
      if (c < 0)
        rc = pt__errorf(err, PT_EINVAL, "write_delta: partition_by column '%s' is not a column "
                        "of the dataset", keys[k] ? keys[k] : "(null)");
      else if (!pt__hive_key_supported(dsch->children[c]->format))
        rc = pt__errorf(err, PT_EINVAL, "write_delta: cannot partition by column '%s'; partition "
                        "by boolean, integer, float, string, date32 or timestamp columns", keys[k]);
      for (int64_t j = 0; j < k && rc == PT_OK; j++)
        if (strcmp(keys[j], keys[k]) == 0)
          rc = pt__errorf(err, PT_EINVAL, "write_delta: partition_by names '%s' twice", keys[k]);
    }
    if (rc == PT_OK && nk > 0 && nk >= dsch->n_children)
      rc = pt__errorf(err, PT_EINVAL, "write_delta: partition_by names every column; the files "
                      "need at least one column that is not a partition column");
  }
  /* replace_where: which active files go (those it matches), decided
   * before the job; the new rows are checked against it after. */
  const char **key_formats = pt__calloc((size_t)(nk ? nk : 1), sizeof *key_formats);
  bool *removed = pt__calloc((size_t)(snap.n_files ? snap.n_files : 1), sizeof *removed);
  if (rc == PT_OK && (!key_formats || !removed)) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  for (int64_t k = 0; k < nk && rc == PT_OK; k++) {
    const struct ArrowSchema *sch = latest >= 0 ? &table : dsch;
    key_formats[k] = sch->children[find_field(sch, keys[k])]->format;
  }
  for (int64_t f = 0; f < snap.n_files; f++) removed[f] = o.mode == PT_DELTA_OVERWRITE;
  if (rc == PT_OK && o.replace_where && o.mode != PT_DELTA_OVERWRITE)
    rc = pt__errorf(err, PT_EINVAL, "write_delta: replace_where needs mode overwrite");
  const char *unknown = rc == PT_OK && o.replace_where
                        ? pt__filter_unknown_column(o.replace_where, latest >= 0 ? &table : dsch) : NULL;
  if (unknown)
    rc = pt__errorf(err, PT_EINVAL, "write_delta: replace_where names '%s', which is not a "
                    "column of the table", unknown);
  /* Its literals against the columns' types, on no rows: a mismatch is
   * refused before the job runs. */
  if (rc == PT_OK && o.replace_where) {
    pt_builder *eb = NULL;
    struct ArrowArray empty = {0};
    uint8_t none[1];
    rc = pt_builder_new(latest >= 0 ? &table : dsch, &eb, err);
    if (rc == PT_OK) rc = pt_builder_finish(eb, &empty, err);
    if (rc == PT_OK) rc = pt__filter_eval_rows(o.replace_where, latest >= 0 ? &table : dsch, &empty, none, err);
    if (rc != PT_OK) pt__error_prefix(err, rc, "write_delta: ");
    if (empty.release) empty.release(&empty);
    pt_builder_free(eb);
  }
  /* Each active file is kept when its partition values or stats rule out
   * every row, removed when its partition values match every row, and
   * otherwise read after the job: partly[f]. */
  uint8_t *partly = pt__calloc((size_t)(snap.n_files ? snap.n_files : 1), 1); /* owned here */
  char **fvals = pt__calloc((size_t)(nk ? nk : 1), sizeof *fvals); /* owned here, and its strings */
  if (rc == PT_OK && (!fvals || !partly)) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  for (int64_t f = 0; rc == PT_OK && o.replace_where && f < snap.n_files; f++) {
    if (!pt__delta_file_may_match(o.replace_where, &snap, &snap.files[f], &table)) {
      removed[f] = false;
      continue;
    }
    if (pt__delta_file_must_match(o.replace_where, &snap, &snap.files[f], &table)) {
      removed[f] = true; /* removed unread */
      continue;
    }
    for (int64_t k = 0; k < nk && rc == PT_OK; k++) {
      const char *v = snap.files[f].values[k];
      bool is_str = strcmp(key_formats[k], "u") == 0 || strcmp(key_formats[k], "z") == 0;
      fvals[k] = NULL;
      if (v && (*v || is_str)) rc = pt__delta_partition_value(key_formats[k], v, &fvals[k], err);
    }
    int how = WHERE_NONE;
    pt_parquet_filter *rest = NULL;
    if (rc == PT_OK) rc = where_bind(o.replace_where, keys, fvals, key_formats, nk, &how, &rest, err);
    pt_parquet_filter_free(rest);
    removed[f] = how == WHERE_ALL;
    partly[f] = how == WHERE_ROWS;
    if (rc != PT_OK) pt__error_prefix(err, rc, "write_delta: replace_where: file '%s': ", snap.files[f].path);
    for (int64_t k = 0; k < nk; k++) {
      pt__free(fvals[k]);
      fvals[k] = NULL;
    }
  }
  pt_parquet_write_options po;
  pt_parquet_write_options_init(&po);
  if (o.parquet) po = *o.parquet;
  char root[PATH_MAX], log[PATH_MAX + 16], temp[PATH_MAX + 64], temp_root[PATH_MAX + 32];
  if (rc == PT_OK) rc = pt__mkdirs(path, err);
  if (rc == PT_OK && !realpath(path, root))
    rc = pt__errorf(err, PT_EIO, "write_delta: '%s': %s", path, strerror(errno));
  pt__action a = {0};
  pt__job_result res = {0};
  bool ran = false;
  if (rc == PT_OK) {
    a.job_id = pt__driver_new_job_id(ds->driver);
    a.sink = PT__SINK_IPC;
    a.parquet = 1;
    a.parquet_codec = po.codec;
    a.parquet_compression_level = po.compression_level;
    a.parquet_row_group_rows = po.row_group_rows;
    a.parquet_page_version = po.data_page_version;
    a.parquet_page_bytes = po.page_bytes;
    a.parquet_dictionary_page_bytes = po.dictionary_page_bytes;
    a.parquet_no_dictionary = !po.use_dictionary;
    a.parquet_no_statistics = 0; /* the stats of the add actions come from the footers */
    a.parquet_partition_by = keys;
    a.parquet_n_partition_by = nk;
    snprintf(log, sizeof log, "%s/_delta_log", root);
    snprintf(temp_root, sizeof temp_root, "%s/_temporary", root);
    snprintf(temp, sizeof temp, "%s/%lld", temp_root, (long long)a.job_id);
    a.ipc_temp_dir = temp;
    rc = pt__mkdirs(temp, err);
    /* Every row written must match replace_where, as Delta checks it: in
     * the write's own tasks, before their sink (a REQUIRE node over ds). */
    pt_dataset *checked = NULL; /* owned here: one reference */
    if (rc == PT_OK && o.replace_where) {
      rc = pt__node_new(ds->session, ds->driver, PT__NODE_REQUIRE, ds, &ds->schema, &checked, err);
      if (rc == PT_OK) rc = pt__dataset_store_filter(checked, o.replace_where, err);
    }
    if (rc == PT_OK) {
      rc = pt__driver_run(ds->driver, checked ? checked : ds, &a, &res, err);
      pt__session_record_job(ds, &res);
      ran = true;
      if (rc != PT_OK) pt__error_prefix(err, rc, "write_delta: ");
    }
    pt__node_unref(checked);
  }
  /* Move the committed attempts' files into the table. */
  char id[37], suffix[64];
  uuid4(id);
  snprintf(suffix, sizeof suffix, "%s-c000.parquet", id);
  writing w = {.root = root, .suffix = suffix, .keys = keys, .formats = key_formats, .nk = nk};
  for (int64_t p = 0; rc == PT_OK && p < res.n_partitions; p++) {
    char stem[32];
    snprintf(stem, sizeof stem, "part-%05lld", (long long)p);
    if (nk > 0) rc = move_tree(&w, res.paths[p], "", 0, err);
    else if (res.rows[p] > 0) rc = move_in(&w, res.paths[p], "", stem, err);
    if (rc != PT_OK) pt__error_prefix(err, rc, "write_delta: ");
  }
  /* The active files replace_where may partly match: rewritten by the
   * executors, all in the same commit. */
  int64_t n_written = w.n; /* w's files from n_written on: rewritten ones */
  if (rc == PT_OK && o.replace_where) {
    rc = rewrite_partly(ds, root, temp_root, &snap, o.replace_where, partly, &a, &w, removed, err);
    if (rc != PT_OK) pt__error_prefix(err, rc, "write_delta: replace_where: ");
  }
  /* The commit: commitInfo, protocol and metaData for a new table (or a
   * metaData of the merged schema), removes for an overwrite, then the
   * adds with their stats. */
  int64_t now = now_ms();
  /* operationMetrics: the adds' files, rows and bytes, the removes' files
   * and bytes, the rows the rewritten files kept (copied), and the rows
   * removed (from the removes' stats, when each has numRecords). */
  int64_t m_rows = 0, m_bytes = 0, m_removed = 0, m_removed_bytes = 0, m_copied = 0;
  int64_t m_removed_rows = 0;
  bool m_rows_known = true;
  const char *mode_name = o.mode == PT_DELTA_APPEND ? "Append"
                        : o.mode == PT_DELTA_OVERWRITE ? "Overwrite" : "ErrorIfExists";
  if (rc == PT_OK) {
    pt_buf pb = {0};
    int r2 = pt__buf_putc(&pb, '[');
    for (int64_t k = 0; k < nk && r2 == PT_OK; k++) {
      if (k > 0) r2 = pt__buf_putc(&pb, ',');
      if (r2 == PT_OK) r2 = pt__json_put_string(&pb, keys[k], -1);
    }
    if (r2 == PT_OK) r2 = pt__buf_putc(&pb, ']');
    if (r2 == PT_OK && latest < 0) {
      bool ntz = has_ntz(dsch);
      char tid[37];
      uuid4(tid);
      r2 = pt__buf_printf(&commit, ntz ? "{\"protocol\":{\"minReaderVersion\":3,\"minWriterVersion\":7,"
                                         "\"readerFeatures\":[\"timestampNtz\"],\"writerFeatures\":"
                                         "[\"timestampNtz\"]}}\n"
                                       : "{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":2}}\n");
      if (r2 == PT_OK)
        r2 = pt__buf_printf(&commit, "{\"metaData\":{\"id\":\"%s\",\"name\":null,\"description\":null,"
                            "\"format\":{\"provider\":\"parquet\",\"options\":{}},\"schemaString\":", tid);
      if (r2 == PT_OK) r2 = pt__json_put_string(&commit, schema_json.data, (int64_t)schema_json.len);
      if (r2 == PT_OK) r2 = pt__buf_printf(&commit, ",\"partitionColumns\":%.*s,\"configuration\":{},"
                                           "\"createdTime\":%lld}}\n", (int)pb.len, pb.data, (long long)now);
    }
    if (r2 == PT_OK && latest >= 0 && schema_json.len > 0) {
      r2 = pt__buf_printf(&commit, "{\"metaData\":{\"id\":");
      if (r2 == PT_OK) r2 = pt__json_put_string(&commit, snap.table_id ? snap.table_id : "", -1);
      if (r2 == PT_OK) r2 = pt__buf_printf(&commit, ",\"name\":null,\"description\":null,\"format\":"
                                           "{\"provider\":\"parquet\",\"options\":{}},\"schemaString\":");
      if (r2 == PT_OK) r2 = pt__json_put_string(&commit, schema_json.data, (int64_t)schema_json.len);
      if (r2 == PT_OK) r2 = pt__buf_printf(&commit, ",\"partitionColumns\":%.*s,\"configuration\":{",
                                           (int)pb.len, pb.data);
      for (int64_t k = 0; r2 == PT_OK && k < snap.n_config; k++) {
        if (k > 0) r2 = pt__buf_putc(&commit, ',');
        if (r2 == PT_OK) r2 = pt__json_put_string(&commit, snap.config_keys[k], -1);
        if (r2 == PT_OK) r2 = pt__buf_putc(&commit, ':');
        if (r2 == PT_OK)
          r2 = snap.config_values[k] ? pt__json_put_string(&commit, snap.config_values[k], -1)
                                     : pt__buf_printf(&commit, "null");
      }
      if (r2 == PT_OK) r2 = pt__buf_printf(&commit, "},\"createdTime\":%lld}}\n",
                                           (long long)(snap.created_time >= 0 ? snap.created_time : now));
    }
    for (int64_t f = 0; r2 == PT_OK && f < snap.n_files; f++) {
      const pt__delta_file *df = &snap.files[f];
      if (!removed[f]) continue;
      m_removed++;
      m_removed_bytes += df->size > 0 ? df->size : 0;
      const char *nr = df->stats ? strstr(df->stats, "\"numRecords\":") : NULL;
      if (nr) m_removed_rows += strtoll(nr + 13, NULL, 10);
      else m_rows_known = false;
      r2 = pt__buf_printf(&commit, "{\"remove\":{\"path\":");
      if (r2 == PT_OK) r2 = pt__json_put_string(&commit, df->path, -1);
      if (r2 == PT_OK) r2 = pt__buf_printf(&commit, ",\"deletionTimestamp\":%lld,\"dataChange\":true,"
                                           "\"extendedFileMetadata\":true,\"partitionValues\":", (long long)now);
      if (r2 == PT_OK) r2 = put_values(&commit, snap.partition_columns, df->values, nk);
      if (r2 == PT_OK) r2 = pt__buf_printf(&commit, ",\"size\":%lld}}\n", (long long)(df->size > 0 ? df->size : 0));
    }
    if (r2 != PT_OK) rc = pt__errorf(err, PT_ENOMEM, "write_delta: out of memory");
    for (int64_t f = 0; rc == PT_OK && f < w.n; f++) {
      pt_buf stats = {0};
      int64_t rows;
      struct stat fsb;
      rc = pt__delta_file_stats(w.files[f].abs, dsch, &stats, &rows, err);
      if (rc != PT_OK) pt__error_prefix(err, rc, "write_delta: '%s': ", w.files[f].abs);
      else if (stat(w.files[f].abs, &fsb) != 0)
        rc = pt__errorf(err, PT_EIO, "write_delta: '%s': %s", w.files[f].abs, strerror(errno));
      r2 = rc == PT_OK ? pt__buf_printf(&commit, "{\"add\":{\"path\":\"") : PT_OK;
      if (rc == PT_OK && r2 == PT_OK) r2 = put_uri_path(&commit, w.files[f].rel);
      if (rc == PT_OK && r2 == PT_OK) r2 = pt__buf_printf(&commit, "\",\"partitionValues\":");
      if (rc == PT_OK && r2 == PT_OK) r2 = put_values(&commit, keys, w.files[f].values, nk);
      if (rc == PT_OK && r2 == PT_OK)
        r2 = pt__buf_printf(&commit, ",\"size\":%lld,\"modificationTime\":%lld,\"dataChange\":true,"
                            "\"stats\":", (long long)fsb.st_size,
                            (long long)fsb.st_mtim.tv_sec * 1000 + fsb.st_mtim.tv_nsec / 1000000);
      if (rc == PT_OK && r2 == PT_OK) r2 = pt__json_put_string(&commit, stats.data, (int64_t)stats.len);
      if (rc == PT_OK && r2 == PT_OK) r2 = pt__buf_printf(&commit, "}}\n");
      if (rc == PT_OK && r2 != PT_OK) rc = pt__errorf(err, PT_ENOMEM, "write_delta: out of memory");
      pt_buf_free(&stats);
      if (rc == PT_OK) {
        m_bytes += fsb.st_size;
        m_rows += rows;
        if (f >= n_written) m_copied += rows;
      }
    }
    /* commitInfo first, as delta-spark writes it for a WRITE: the
     * parameters (the replace_where text as "predicate"), the version read
     * and operationMetrics, every value a string. */
    pt_buf info = {0};
    r2 = pt__buf_printf(&info, "{\"commitInfo\":{\"timestamp\":%lld,\"operation\":\"WRITE\","
                        "\"operationParameters\":{\"mode\":\"%s\",\"partitionBy\":",
                        (long long)now, mode_name);
    if (r2 == PT_OK) r2 = pt__json_put_string(&info, pb.data, (int64_t)pb.len);
    if (r2 == PT_OK && o.replace_where) {
      pt_buf pred = {0};
      r2 = put_predicate(&pred, o.replace_where, latest >= 0 ? &table : dsch, true);
      if (r2 == PT_OK) r2 = pt__buf_printf(&info, ",\"predicate\":");
      if (r2 == PT_OK) r2 = pt__json_put_string(&info, pred.data ? pred.data : "", (int64_t)pred.len);
      pt_buf_free(&pred);
    }
    if (r2 == PT_OK && latest >= 0) r2 = pt__buf_printf(&info, "},\"readVersion\":%lld", (long long)latest);
    else if (r2 == PT_OK) r2 = pt__buf_printf(&info, "}");
    if (r2 == PT_OK)
      r2 = pt__buf_printf(&info, ",\"isBlindAppend\":%s,\"operationMetrics\":{\"numFiles\":\"%lld\","
                          "\"numOutputRows\":\"%lld\",\"numOutputBytes\":\"%lld\"",
                          o.mode == PT_DELTA_OVERWRITE ? "false" : "true", (long long)w.n,
                          (long long)m_rows, (long long)m_bytes);
    if (r2 == PT_OK && o.mode == PT_DELTA_OVERWRITE)
      r2 = pt__buf_printf(&info, ",\"numRemovedFiles\":\"%lld\",\"numRemovedBytes\":\"%lld\"",
                          (long long)m_removed, (long long)m_removed_bytes);
    if (r2 == PT_OK && o.replace_where) {
      r2 = pt__buf_printf(&info, ",\"numCopiedRows\":\"%lld\",\"numAddedChangeFiles\":\"0\"",
                          (long long)m_copied);
      if (r2 == PT_OK && m_rows_known)
        r2 = pt__buf_printf(&info, ",\"numDeletedRows\":\"%lld\"", (long long)(m_removed_rows - m_copied));
    }
    if (r2 == PT_OK) r2 = pt__buf_printf(&info, "},\"engineInfo\":\"protium/%s\"}}\n", PT_VERSION_STRING);
    if (r2 == PT_OK) r2 = pt__buf_append(&info, commit.data ? commit.data : "", commit.len);
    if (rc == PT_OK && r2 != PT_OK) rc = pt__errorf(err, PT_ENOMEM, "write_delta: out of memory");
    pt_buf_free(&commit);
    commit = info; /* owned by commit from here */
    pt_buf_free(&pb);
  }
  bool conflict = false;
  if (rc == PT_OK) rc = pt__mkdirs(log, err);
  if (rc == PT_OK) {
    rc = commit_file(log, latest + 1, &commit, &conflict, err);
    if (rc != PT_OK) pt__error_prefix(err, rc, "write_delta: ");
    else if (conflict)
      rc = pt__errorf(err, PT_ESTATE, "write_delta: another writer committed version %lld of '%s' "
                      "first; nothing was committed and the new files were removed; read the "
                      "table again and retry", (long long)(latest + 1), path);
  }
  if (rc != PT_OK) take_back(&w);
  /* Every delta.checkpointInterval commits, a checkpoint of the new
   * version. The commit stands without it (readers replay the JSON), so a
   * checkpoint that cannot be written is left to the next interval. */
  if (rc == PT_OK && latest + 1 > 0) {
    int64_t interval = latest >= 0 ? pt__delta_checkpoint_interval(&snap) : 10;
    pt__delta_snapshot cs = {0};
    pt_error cerr;
    if ((latest + 1) % interval == 0 &&
        pt__delta_snapshot_load(root, latest + 1, INT64_MIN, &cs, &cerr) == PT_OK) {
      (void)pt__delta_checkpoint_write(root, &cs, &cerr);
      pt__delta_snapshot_free(&cs);
    }
  }
  writing_free(&w);
  if (ran) {
    pt__job_result_reset(&res);
    (void)pt__driver_quiesce(ds->driver, a.job_id, ORPHAN_WAIT_MS);
    pt__rm_rf(temp);
    rmdir(temp_root); /* another job of this table may still use it */
  }
  if (rc != PT_OK && made_root) {
    rmdir(log);
    rmdir(path);
  }
  pt__free(key_formats);
  pt__free(removed);
  pt__free(partly);
  pt__free(fvals);
  pt_buf_free(&commit);
  pt_buf_free(&schema_json);
  if (table.release) table.release(&table);
  pt__delta_snapshot_free(&snap);
  return rc;
}
