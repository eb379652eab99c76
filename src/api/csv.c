/* csv.c — pt_read_csv: CSV files as a lazy dataset. The driver settles the
 * schema (given, or inferred from the first records of the first file) and
 * cuts every file into byte ranges of about csv.partition_bytes at record
 * starts, in one pass per file; executors then parse their ranges from
 * those starts without looking at the bytes before them (src/exec/ops.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_int.h"
#include "io/io.h"

typedef struct csv_pieces {
  int64_t n, cap;
  char **paths;
  int64_t *partition, *begin, *end, *line;
} csv_pieces;

static void pieces_free(csv_pieces *p) {
  for (int64_t i = 0; i < p->n; i++) pt__free(p->paths[i]);
  pt__free(p->paths);
  pt__free(p->partition);
  pt__free(p->begin);
  pt__free(p->end);
  pt__free(p->line);
  memset(p, 0, sizeof *p);
}

static int pieces_add(csv_pieces *p, const char *path, int64_t partition, int64_t begin,
                      int64_t end, int64_t line) {
  if (p->n == p->cap) {
    int64_t cap = p->cap ? p->cap * 2 : 16;
    char **a = pt__realloc(p->paths, (size_t)cap * sizeof *a);
    if (!a) return PT_ENOMEM;
    p->paths = a;
    int64_t **cols[] = {&p->partition, &p->begin, &p->end, &p->line};
    for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++) {
      int64_t *b = pt__realloc(*cols[k], (size_t)cap * sizeof *b);
      if (!b) return PT_ENOMEM;
      *cols[k] = b;
    }
    p->cap = cap;
  }
  p->paths[p->n] = pt__strdup(path);
  if (!p->paths[p->n]) return PT_ENOMEM;
  p->partition[p->n] = partition;
  p->begin[p->n] = begin;
  p->end[p->n] = end;
  p->line[p->n] = line;
  p->n++;
  return PT_OK;
}

/* A file mapped whole for reading (data NULL when it is empty). */
typedef struct mapped {
  const char *data;
  int64_t size;
} mapped;

static int map_file(const char *path, mapped *m, pt_error *err) {
  m->data = NULL;
  m->size = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return pt__errorf(err, PT_EIO, "read_csv: cannot open '%s': %s", path, strerror(errno));
  struct stat sb;
  int rc = PT_OK;
  if (fstat(fd, &sb) != 0) {
    rc = pt__errorf(err, PT_EIO, "read_csv: '%s': %s", path, strerror(errno));
  } else if (sb.st_size > 0) {
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
      rc = pt__errorf(err, PT_EIO, "read_csv: cannot map '%s': %s", path, strerror(errno));
    else {
      m->data = p;
      m->size = (int64_t)sb.st_size;
    }
  }
  close(fd);
  return rc;
}

static void unmap_file(mapped *m) {
  if (m->data) munmap((void *)m->data, (size_t)m->size);
  m->data = NULL;
}

/* The dataset's schema: the given one, or inferred from the records at the
 * start of the first file (enough bytes for header + infer_rows records),
 * plus the corrupt-record column when one is named. */
static int settle_schema(const mapped *m, const char *path, const pt_csv_options *o,
                         struct ArrowSchema *out, pt_error *err) {
  int64_t sample = 0;
  if (!o->schema) {
    /* From a record start the next one is found without earlier bytes, so
     * this walk is linear. Blank lines are no records: not counted. */
    for (int64_t k = 0; k < o->infer_rows + (o->header ? 1 : 0) && sample < m->size; k++) {
      int64_t lines = 0;
      sample = pt__csv_skip_blank_lines(m->data, m->size, sample, o, &lines);
      if (sample < m->size)
        sample += pt_csv_record_start(m->data + sample, m->size - sample, 1, o);
    }
  }
  pt_csv_options so = *o;
  /* The sample read only settles the schema: its malformed records (which
   * have no say in the types) must not fail it; the real read reports them. */
  if (so.mode != PT_CSV_PERMISSIVE) so.mode = PT_CSV_DROPMALFORMED;
  struct ArrowArray rows;
  int rc = pt__csv_read_lines(m->data, sample, 0, sample, 1, path, &so, out, &rows, err);
  if (rc != PT_OK) return pt__error_prefix(err, rc, "read_csv: ");
  rows.release(&rows);
  int64_t cols = out->n_children - (so.mode == PT_CSV_PERMISSIVE && so.corrupt_column ? 1 : 0);
  if (cols <= 0) {
    out->release(out);
    return pt__errorf(err, PT_EINVAL,
                      "read_csv: '%s' has no record to infer the columns from; give a schema",
                      path);
  }
  return PT_OK;
}

/* Copies the options the executors need into the node. */
static int keep_options(pt_dataset *ds, const pt_csv_options *o, pt_error *err) {
  ds->csv = *o;
  ds->csv.schema = NULL;
  ds->csv.null_values = NULL;
  ds->csv.n_null_values = 0;
  ds->csv.corrupt_column = NULL;
  if (o->null_values) {
    int64_t n = o->n_null_values > 0 ? o->n_null_values : 0;
    ds->csv_null_values = pt__calloc((size_t)(n ? n : 1), sizeof *ds->csv_null_values);
    if (!ds->csv_null_values) return pt__errorf(err, PT_ENOMEM, "read_csv: out of memory");
    for (int64_t i = 0; i < n; i++) {
      ds->csv_null_values[i] = pt__strdup(o->null_values[i] ? o->null_values[i] : "");
      if (!ds->csv_null_values[i]) return pt__errorf(err, PT_ENOMEM, "read_csv: out of memory");
      ds->csv.n_null_values = i + 1;
    }
    ds->csv.null_values = (const char *const *)ds->csv_null_values;
  }
  if (o->mode == PT_CSV_PERMISSIVE && o->corrupt_column) {
    ds->csv_corrupt = pt__strdup(o->corrupt_column);
    if (!ds->csv_corrupt) return pt__errorf(err, PT_ENOMEM, "read_csv: out of memory");
    ds->csv.corrupt_column = ds->csv_corrupt;
  }
  return PT_OK;
}

/* Bytes per partition: the files' total over the partitions that
 * pt__split_parts sizes by the session's task slots and csv.partition_bytes
 * (equal ranges, so that no slot parses a short last one alone). */
static int64_t split_bytes(pt_session *s, char **paths, int64_t n) {
  int64_t cap = pt__conf_int(s->conf, "csv.partition_bytes"), total = 0;
  for (int64_t f = 0; f < n; f++) {
    struct stat sb;
    if (stat(paths[f], &sb) == 0) total += (int64_t)sb.st_size;
  }
  if (total <= 0) return cap; /* nothing to cut, or files gone: map_file tells */
  int64_t parts = pt__split_parts(s, total, cap);
  return (total + parts - 1) / parts;
}

int pt_read_csv(pt_session *s, const char *path, const pt_csv_options *opts, pt_dataset **out,
                pt_error *err) {
  if (!s || !path || !out)
    return pt__errorf(err, PT_EINVAL, "read_csv: session, path and out must not be NULL");
  *out = NULL;
  pt_csv_options o;
  pt_csv_options_init(&o);
  if (opts) o = *opts;
  if (o.delimiter == '\n' || o.delimiter == '\r' || o.delimiter == 0 ||
      (o.quote && (o.quote == o.delimiter || o.quote == '\n')))
    return pt__errorf(err, PT_EINVAL,
                      "read_csv: the delimiter must be one byte other than a newline or the quote");
  if (o.mode < PT_CSV_FAILFAST || o.mode > PT_CSV_PERMISSIVE)
    return pt__errorf(err, PT_EINVAL, "read_csv: unknown mode %d", (int)o.mode);
  if (o.schema && (!o.schema->format || strcmp(o.schema->format, "+s") != 0))
    return pt__errorf(err, PT_EINVAL,
                      "read_csv: the schema must be a struct (one child per column)");
  if (o.infer_rows < 1) o.infer_rows = 1;
  char **paths;
  int64_t n;
  PT_RETURN_NOT_OK(pt__list_files(path, PT__FILES_CSV, &paths, &n, err));
  int64_t target = split_bytes(s, paths, n);
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  int cpus = online > 0 ? (int)online : 1; /* threads for finding the cuts */
  int64_t span = pt__conf_int(s->conf, "csv.cut_span_bytes");
  csv_pieces pc = {0};
  struct ArrowSchema schema = {0};
  int64_t partition = 0, acc = 0;
  int rc = PT_OK;
  for (int64_t f = 0; f < n && rc == PT_OK; f++) {
    mapped m;
    rc = map_file(paths[f], &m, err);
    if (rc != PT_OK) break;
    if (f == 0) rc = settle_schema(&m, paths[f], &o, &schema, err);
    /* Ranges of about target bytes, each ending where a record starts (the
     * first at or after a multiple of target). Most files tell that from
     * the bytes near each cut, and the ranges' first lines are then left to
     * the executors, counted only for a message (0: unknown). The others
     * are scanned in one pass spread over the machine's cores, which gives
     * the lines too. */
    int64_t cuts = rc == PT_OK && m.size > target ? (m.size - 1) / target : 0;
    /* targets, starts, lines; owned here, freed after the pieces are made */
    int64_t *tg = pt__calloc((size_t)(3 * cuts + 1), sizeof *tg);
    if (rc == PT_OK && !tg) rc = pt__errorf(err, PT_ENOMEM, "read_csv: out of memory");
    if (rc == PT_OK && cuts > 0) {
      for (int64_t k = 0; k < cuts; k++) tg[k] = (k + 1) * target;
      if (!pt__csv_cuts_near(m.data, m.size, tg, cuts, &o, tg + cuts)) {
        rc = pt__csv_cuts(m.data, m.size, tg, cuts, &o, cpus, span, tg + cuts, tg + 2 * cuts,
                          err);
        if (rc != PT_OK) rc = pt__error_prefix(err, rc, "read_csv: ");
      }
    }
    int64_t pos = 0, line = 1, head = 0, blank = 0;
    /* With a header, the first range runs past its start: the header is the
     * first line that is not blank, and only the range at offset 0 skips it
     * (a range of the blank lines before it alone would read it as a row). */
    if (o.header) head = pt__csv_header_start(m.data, m.size, &o, &blank);
    for (int64_t k = 0; rc == PT_OK && k <= cuts && pos < m.size; k++) {
      int64_t next = k < cuts ? tg[cuts + k] : m.size;
      if (next <= pos) continue; /* a record longer than a range */
      if (k < cuts && next <= head) continue;
      int64_t len = next - pos;
      if (acc > 0 && acc + len > target) {
        partition++;
        acc = 0;
      }
      acc += len;
      if (pieces_add(&pc, paths[f], partition, pos, next, line) != PT_OK)
        rc = pt__errorf(err, PT_ENOMEM, "read_csv: out of memory");
      if (k < cuts) line = tg[2 * cuts + k];
      pos = next;
    }
    pt__free(tg);
    unmap_file(&m);
  }
  for (int64_t i = 0; i < n; i++) pt__free(paths[i]);
  pt__free(paths);
  if (rc == PT_OK) rc = pt__node_new(s, s->driver, PT__NODE_CSV, NULL, &schema, out, err);
  if (rc == PT_OK) {
    pt_dataset *ds = *out;
    /* A dataset has at least one partition, empty when there is no byte. */
    ds->partitions = pc.n > 0 ? partition + 1 : 1;
    ds->n_pieces = pc.n;
    ds->piece_paths = pc.paths;
    ds->piece_partition = pc.partition;
    ds->piece_begin = pc.begin;
    ds->piece_end = pc.end;
    ds->piece_line = pc.line;
    memset(&pc, 0, sizeof pc);
    rc = keep_options(ds, &o, err);
    if (rc != PT_OK) {
      pt_dataset_free(ds);
      *out = NULL;
    }
  }
  pieces_free(&pc);
  if (schema.release) schema.release(&schema);
  return rc;
}
