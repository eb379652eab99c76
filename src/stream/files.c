/* files.c — the stream source over a directory that files arrive in (Arrow
 * IPC, Parquet or CSV). Every
 * file it sees goes once into a log in the checkpoint ("<mtime_ns>\t<name>"
 * lines, in the order of modification time then name of each scan), and
 * offsets are positions in that log ({"files":N}): a batch is log lines
 * [start, end), so a rerun reads the same files and a late file with an old
 * modification time still comes once, in a later batch.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stream/stream_int.h"

typedef struct file_entry {
  int64_t mtime_ns;
  char *name;          /* owned; a file directly in the directory */
} file_entry;

typedef struct files_src {
  char *dir;           /* owned, the watched directory */
  int format;          /* PT_STREAM_IPC / PT_STREAM_PARQUET / PT_STREAM_CSV */
  /* CSV: the reader's options, with their strings and schema owned here
   * (csv.schema points to csv_schema, csv.null_values to csv_nulls) */
  pt_csv_options csv;
  struct ArrowSchema csv_schema;
  char **csv_nulls;
  char *csv_corrupt;
  int64_t max_files;   /* per batch; 0 = no limit */
  char *state_dir;     /* owned: the source's checkpoint folder (after open) */
  char *log_path;      /* owned: state_dir/files.log */
  file_entry *files;   /* owned: the log, in order */
  int64_t n, cap;
  char **sorted;       /* borrowed names of files, sorted, for lookups */
  int64_t n_sorted;
} files_src;

static int has_suffix(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcmp(s + a - b, suf) == 0;
}

static int wanted(const files_src *f, const char *name) {
  if (name[0] == '.' || name[0] == '_') return 0; /* still being written */
  if (f->format == PT_STREAM_PARQUET) return has_suffix(name, ".parquet");
  if (f->format == PT_STREAM_CSV) return has_suffix(name, ".csv") || has_suffix(name, ".tsv");
  return has_suffix(name, ".arrow") || has_suffix(name, ".arrows") || has_suffix(name, ".ipc") ||
         has_suffix(name, ".feather");
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int known(const files_src *f, const char *name) {
  return f->n_sorted > 0 &&
         bsearch(&name, f->sorted, (size_t)f->n_sorted, sizeof *f->sorted, cmp_name) != NULL;
}

/* Adds an entry (taking name) to the in-memory log and the sorted index. */
static int add_entry(files_src *f, int64_t mtime_ns, char *name) {
  if (pt__grow((void **)&f->files, &f->cap, f->n + 1, sizeof *f->files) != PT_OK) return PT_ENOMEM;
  char **s = pt__realloc(f->sorted, (size_t)(f->n_sorted + 1) * sizeof *s);
  if (!s) return PT_ENOMEM;
  f->sorted = s;
  f->files[f->n++] = (file_entry){mtime_ns, name};
  int64_t i = f->n_sorted;
  while (i > 0 && strcmp(s[i - 1], name) > 0) {
    s[i] = s[i - 1];
    i--;
  }
  s[i] = name;
  f->n_sorted++;
  return PT_OK;
}

static int parse_files(const char *offsets, int64_t *n) {
  *n = 0;
  if (!offsets) return PT_OK;
  const char *p = strstr(offsets, "\"files\":");
  if (!p) return PT_EFORMAT;
  char *end;
  long long v = strtoll(p + 8, &end, 10);
  if (end == p + 8 || v < 0) return PT_EFORMAT;
  *n = v;
  return PT_OK;
}

static char *format_files(int64_t n) {
  char text[64];
  snprintf(text, sizeof text, "{\"files\":%" PRId64 "}", n);
  return strdup(text); /* the engine frees offsets with free() */
}

/* Reads the log back; an incomplete last line (a crash while appending) is
 * cut off: no offset can name it, since offsets are written after the log. */
static int load_log(files_src *f, pt_error *err) {
  if (access(f->log_path, F_OK) != 0) return PT_OK;
  char *text;
  size_t len;
  PT_RETURN_NOT_OK(pt__stream_read_file(f->log_path, &text, &len, err));
  size_t good = 0;
  int rc = PT_OK;
  for (char *line = text; rc == PT_OK && *line;) {
    char *nl = strchr(line, '\n');
    if (!nl) break;
    *nl = 0;
    char *tab = strchr(line, '\t');
    if (!tab) {
      rc = pt__errorf(err, PT_EFORMAT, "stream: files source log '%s' is damaged at byte %zu",
                      f->log_path, (size_t)(line - text));
      break;
    }
    char *name = pt__strdup(tab + 1);
    if (!name || add_entry(f, strtoll(line, NULL, 10), name) != PT_OK) {
      pt__free(name);
      rc = pt__errorf(err, PT_ENOMEM, "stream: out of memory");
    }
    good = (size_t)(nl + 1 - text);
    line = nl + 1;
  }
  pt__free(text);
  if (rc == PT_OK && good < len && truncate(f->log_path, (off_t)good) != 0)
    rc = pt__errorf(err, PT_EIO, "stream: cannot cut the unfinished line of '%s': %s",
                    f->log_path, strerror(errno));
  return rc;
}

static int files_open(void *state, pt_session *s, const char *dir, pt_error *err) {
  files_src *f = state;
  size_t n = strlen(dir) + 32;
  f->state_dir = pt__strdup(dir);
  f->log_path = pt__malloc(n);
  if (!f->state_dir || !f->log_path) return pt__errorf(err, PT_ENOMEM, "stream: out of memory");
  snprintf(f->log_path, n, "%s/files.log", dir);
  return load_log(f, err);
}

static int cmp_new(const void *a, const void *b) {
  const file_entry *x = a, *y = b;
  if (x->mtime_ns != y->mtime_ns) return x->mtime_ns < y->mtime_ns ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int files_latest(void *state, char **latest, pt_error *err) {
  files_src *f = state;
  *latest = NULL;
  DIR *d = opendir(f->dir);
  if (!d) /* gone for now (an unmounted share): retried */
    return pt__errorf(err, PT_EIO, "stream: cannot open directory '%s': %s", f->dir,
                      strerror(errno));
  file_entry *fresh = NULL;
  int64_t n = 0, cap = 0;
  int rc = PT_OK;
  struct dirent *e;
  while (rc == PT_OK && (e = readdir(d))) {
    if (!wanted(f, e->d_name) || known(f, e->d_name)) continue;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", f->dir, e->d_name);
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
    char *name = pt__strdup(e->d_name);
    if (!name || pt__grow((void **)&fresh, &cap, n + 1, sizeof *fresh) != PT_OK) {
      pt__free(name);
      rc = pt__errorf(err, PT_ENOMEM, "stream: out of memory");
      break;
    }
    fresh[n++] = (file_entry){(int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec, name};
  }
  closedir(d);
  if (rc == PT_OK && n > 0) {
    qsort(fresh, (size_t)n, sizeof *fresh, cmp_new);
    pt_buf b = {0};
    for (int64_t i = 0; i < n && rc == PT_OK; i++)
      if (pt__buf_printf(&b, "%" PRId64 "\t%s\n", fresh[i].mtime_ns, fresh[i].name) != PT_OK)
        rc = pt__errorf(err, PT_ENOMEM, "stream: out of memory");
    int fd = rc == PT_OK ? open(f->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
    if (rc == PT_OK && fd < 0)
      rc = pt__errorf(err, PT_EIO, "stream: cannot open '%s': %s", f->log_path, strerror(errno));
    if (rc == PT_OK && (write(fd, b.data, b.len) != (ssize_t)b.len || fsync(fd) != 0))
      rc = pt__errorf(err, PT_EIO, "stream: cannot append to '%s': %s", f->log_path,
                      strerror(errno));
    if (fd >= 0) close(fd);
    pt_buf_free(&b);
    for (int64_t i = 0; i < n && rc == PT_OK; i++) {
      if (add_entry(f, fresh[i].mtime_ns, fresh[i].name) != PT_OK)
        rc = pt__errorf(err, PT_ENOMEM, "stream: out of memory");
      else
        fresh[i].name = NULL;
    }
  }
  for (int64_t i = 0; i < n; i++) pt__free(fresh[i].name);
  pt__free(fresh);
  if (rc == PT_OK && !(*latest = format_files(f->n)))
    rc = pt__errorf(err, PT_ENOMEM, "stream: out of memory");
  return rc;
}

static int files_initial(void *state, char **start, pt_error *err) {
  if (!(*start = format_files(0))) return pt__errorf(err, PT_ENOMEM, "stream: out of memory");
  return PT_OK;
}

static int files_next(void *state, const char *start, const char *latest, char **end,
                      pt_error *err) {
  files_src *f = state;
  int64_t s, l;
  if (parse_files(start, &s) != PT_OK || parse_files(latest, &l) != PT_OK)
    return pt__errorf(err, PT_EFORMAT,
                      "stream: files source: offsets '%.200s' are not {\"files\":N}; the "
                      "checkpoint belongs to another kind of source", start ? start : latest);
  int64_t e = l;
  if (f->max_files > 0 && e - s > f->max_files) e = s + f->max_files;
  if (e < s) e = s;
  if (!(*end = format_files(e))) return pt__errorf(err, PT_ENOMEM, "stream: out of memory");
  return PT_OK;
}

static int files_plan(void *state, pt_session *s, const char *start, const char *end,
                      pt_stream_batch *batch, pt_dataset **out, pt_error *err) {
  files_src *f = state;
  int64_t a, b;
  if (parse_files(start, &a) != PT_OK || parse_files(end, &b) != PT_OK || b < a)
    return pt__errorf(err, PT_EFORMAT, "stream: files source: bad offsets '%.200s' to '%.200s'",
                      start ? start : "", end);
  if (b > f->n)
    return pt__errorf(err, PT_EFORMAT,
                      "stream: files source: offset %" PRId64 " is past the %" PRId64
                      " files of its log '%s'; the checkpoint is damaged",
                      b, f->n, f->log_path);
  /* The batch's files as links in a folder of their own, named in log order,
   * so that the engine's readers (which take a directory) see just them. */
  char links[PATH_MAX];
  snprintf(links, sizeof links, "%s/batch-%" PRId64, f->state_dir, batch->batch_id);
  if (pt__rm_rf(links) != PT_OK)
    return pt__errorf(err, PT_EIO, "stream: cannot clear '%s'", links);
  PT_RETURN_NOT_OK(pt__mkdirs(links, err));
  int64_t oldest = -1;
  for (int64_t i = a; i < b; i++) {
    char target[PATH_MAX], link[PATH_MAX];
    if (snprintf(target, sizeof target, "%s/%s", f->dir, f->files[i].name) >=
            (int)sizeof target ||
        snprintf(link, sizeof link, "%s/%08" PRId64 "-%s", links, i - a, f->files[i].name) >=
            (int)sizeof link)
      return pt__errorf(err, PT_EINVAL, "stream: path of '%s' too long", f->files[i].name);
    if (symlink(target, link) != 0)
      return pt__errorf(err, PT_EIO, "stream: cannot link '%s': %s", link, strerror(errno));
    if (oldest < 0 || f->files[i].mtime_ns < oldest) oldest = f->files[i].mtime_ns;
  }
  batch->records = b - a;
  batch->event_time_us = oldest < 0 ? -1 : oldest / 1000;
  /* The CSV schema is the user's, never inferred: a batch's files must not
   * change the stream's columns. */
  int rc = f->format == PT_STREAM_PARQUET ? pt_read_parquet(s, links, NULL, out, err)
           : f->format == PT_STREAM_CSV   ? pt_read_csv(s, links, &f->csv, out, err)
                                          : pt_read_ipc(s, links, out, err);
  if (rc != PT_OK) return pt__error_prefix(err, rc, "stream: files source, batch %" PRId64 ": ",
                                           batch->batch_id);
  return PT_OK;
}

/* The links of committed batches go. */
static int files_commit(void *state, const char *end, pt_error *err) {
  files_src *f = state;
  DIR *d = opendir(f->state_dir);
  if (!d) return PT_OK;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "batch-", 6) != 0) continue;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", f->state_dir, e->d_name);
    pt__rm_rf(path);
  }
  closedir(d);
  return PT_OK;
}

static void files_free(void *state) {
  files_src *f = state;
  if (!f) return;
  for (int64_t i = 0; i < f->n; i++) pt__free(f->files[i].name);
  pt__free(f->files);
  pt__free(f->sorted);
  pt__free(f->dir);
  pt__free(f->state_dir);
  pt__free(f->log_path);
  if (f->csv_schema.release) f->csv_schema.release(&f->csv_schema);
  for (int64_t i = 0; f->csv_nulls && i < f->csv.n_null_values; i++) pt__free(f->csv_nulls[i]);
  pt__free(f->csv_nulls);
  pt__free(f->csv_corrupt);
  pt__free(f);
}

/* The CSV options copied into f (strings and schema owned by f). */
static int copy_csv(files_src *f, const pt_csv_options *o, pt_error *err) {
  f->csv = *o;
  f->csv.schema = NULL;
  f->csv.null_values = NULL;
  f->csv.corrupt_column = NULL;
  f->csv.n_null_values = 0;
  PT_RETURN_NOT_OK(pt_schema_copy(o->schema, &f->csv_schema, err));
  f->csv.schema = &f->csv_schema;
  if (o->n_null_values > 0) {
    f->csv_nulls = pt__calloc((size_t)o->n_null_values, sizeof *f->csv_nulls);
    if (!f->csv_nulls) return pt__errorf(err, PT_ENOMEM, "stream: out of memory");
    for (int64_t i = 0; i < o->n_null_values; i++) {
      f->csv_nulls[i] = pt__strdup(o->null_values[i] ? o->null_values[i] : "");
      if (!f->csv_nulls[i]) return pt__errorf(err, PT_ENOMEM, "stream: out of memory");
      f->csv.n_null_values = i + 1; /* what files_free frees */
    }
    f->csv.null_values = (const char *const *)f->csv_nulls;
  }
  if (o->corrupt_column) {
    if (!(f->csv_corrupt = pt__strdup(o->corrupt_column)))
      return pt__errorf(err, PT_ENOMEM, "stream: out of memory");
    f->csv.corrupt_column = f->csv_corrupt;
  }
  return PT_OK;
}

static int files_source(const char *dir, int format, const pt_csv_options *csv,
                        int64_t max_files_per_trigger, pt_stream_source *out, pt_error *err);

int pt_stream_files_source(const char *dir, int format, int64_t max_files_per_trigger,
                           pt_stream_source *out, pt_error *err) {
  if (out) memset(out, 0, sizeof *out);
  if (format == PT_STREAM_CSV)
    return pt__errorf(err, PT_EINVAL, "stream files source: CSV files need their options and "
                                      "schema; use pt_stream_csv_source");
  return files_source(dir, format, NULL, max_files_per_trigger, out, err);
}

int pt_stream_csv_source(const char *dir, const pt_csv_options *opts,
                         int64_t max_files_per_trigger, pt_stream_source *out, pt_error *err) {
  if (out) memset(out, 0, sizeof *out);
  if (!opts || !opts->schema)
    return pt__errorf(err, PT_EINVAL,
                      "stream csv source: a schema is required (pt_csv_options.schema): "
                      "inferred per micro-batch, the columns could change from one to the next");
  if (!opts->schema->format || strcmp(opts->schema->format, "+s") != 0)
    return pt__errorf(err, PT_EINVAL,
                      "stream csv source: the schema must be a struct (one child per column)");
  return files_source(dir, PT_STREAM_CSV, opts, max_files_per_trigger, out, err);
}

static int files_source(const char *dir, int format, const pt_csv_options *csv,
                        int64_t max_files_per_trigger, pt_stream_source *out, pt_error *err) {
  if (!out) return pt__errorf(err, PT_EINVAL, "stream files source: out must not be NULL");
  if (!dir || !*dir) return pt__errorf(err, PT_EINVAL, "stream files source: a directory is required");
  if (format != PT_STREAM_IPC && format != PT_STREAM_PARQUET && format != PT_STREAM_CSV)
    return pt__errorf(err, PT_EINVAL,
                      "stream files source: format %d is not PT_STREAM_IPC, PT_STREAM_PARQUET "
                      "or PT_STREAM_CSV", format);
  if (max_files_per_trigger < 0)
    return pt__errorf(err, PT_EINVAL,
                      "stream files source: max_files_per_trigger must be >= 0 (0: no limit)");
  struct stat sb;
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return pt__errorf(err, PT_EINVAL, "stream files source: '%s' is not a directory; create "
                                      "it before starting the query", dir);
  files_src *f = pt__calloc(1, sizeof *f);
  char real[PATH_MAX];
  if (!f || !(f->dir = pt__strdup(realpath(dir, real) ? real : dir))) {
    pt__free(f);
    return pt__errorf(err, PT_ENOMEM, "stream: out of memory");
  }
  f->format = format;
  f->max_files = max_files_per_trigger;
  if (csv) {
    int rc = copy_csv(f, csv, err);
    if (rc != PT_OK) {
      files_free(f);
      return rc;
    }
  }
  *out = (pt_stream_source){.name = "files",
                            .state = f,
                            .open = files_open,
                            .initial_offsets = files_initial,
                            .latest_offsets = files_latest,
                            .next_offsets = files_next,
                            .plan_batch = files_plan,
                            .commit = files_commit,
                            .free = files_free};
  return PT_OK;
}
