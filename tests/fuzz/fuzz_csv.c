/* fuzz_csv.c — libFuzzer target for the CSV reader: the first two bytes pick
 * the options (header, mode, delimiter, escape) and a split point; the rest is
 * read whole and as two byte ranges. A batch that does not validate, or two
 * ranges whose rows do not add up to the whole read, is a bug: abort. So is
 * the engine's chunked read (pt__csv_read_from, small chunks) disagreeing
 * with the whole read on rows or on the line it ends at, or the cut scan
 * miscounting the newlines before a cut, or the shared cut scan
 * (pt__csv_cuts, many threads and spans) disagreeing with the serial one,
 * or, in PERMISSIVE mode, the scan's record count differing from the rows
 * (blank lines are records only with one column),
 * or the fast record splitter reading other rows or errors than the
 * general one, or the FAILFAST count's structure check
 * (pt__csv_check_records) deciding otherwise than a FAILFAST read into
 * binary columns (where only structure can fail): same outcome, same
 * message, count equal to rows; nor may it fail where a FAILFAST read with
 * the inferred types succeeds. Seeds: tests/fuzz/corpus/csv. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "protium.h"

/* Rows read from text[begin, end), or -1 when the read failed. */
static int64_t rows(const char *text, int64_t len, int64_t begin, int64_t end,
                    const pt_csv_options *o) {
  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err;
  if (pt_csv_read(text, len, begin, end, "fuzz.csv", o, &s, &a, &err) != PT_OK) {
    if (s.release || a.release) abort(); /* a failed read leaves nothing */
    return -1;
  }
  if (pt_array_validate(&s, &a, &err) != PT_OK) {
    fprintf(stderr, "invalid batch: %s\n", err.message);
    abort();
  }
  int64_t n = a.length;
  a.release(&a);
  s.release(&s);
  return n;
}

/* The records of text read chunk by chunk from record starts, as the
 * engine's source does; -1 when a read failed. *line: where it ended. */
static int64_t chunked_rows(const char *text, int64_t len, int64_t chunk, const pt_csv_options *o,
                            int64_t *line) {
  int64_t pos = 0, n = 0;
  *line = 1;
  pt_csv_options co = *o;
  while (pos < len) {
    struct ArrowSchema s;
    struct ArrowArray a;
    pt_error err;
    int64_t next, next_line;
    int64_t end = len - pos < chunk ? len - pos : chunk;
    if (pt__csv_read_from(text + pos, len - pos, 0, end, *line, "fuzz.csv", &co, &s, &a, &next,
                          &next_line, &err) != PT_OK)
      return -1;
    if (next <= 0 || next > len - pos) abort(); /* no progress, or past the end */
    n += a.length;
    a.release(&a);
    s.release(&s);
    pos += next;
    *line = next_line;
    co.header = 0; /* only the file's first record is the header */
  }
  return n;
}

/* The whole read as JSON lines, or its error message, with the fast
 * record splitter on or off (caller frees). */
static char *read_text(const char *text, int64_t len, const pt_csv_options *o, int fast) {
  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err = {0};
  pt__csv_fast_records = fast;
  int rc = pt_csv_read(text, len, 0, len, "fuzz.csv", o, &s, &a, &err);
  pt__csv_fast_records = 1;
  if (rc != PT_OK) return strdup(err.message);
  pt_buf buf = {0};
  if (pt_json_write_batch(&s, &a, &buf, &err) != PT_OK) abort();
  char *out = calloc(1, buf.len + 1);
  if (!out) abort();
  if (buf.len) memcpy(out, buf.data, buf.len);
  pt_buf_free(&buf);
  a.release(&a);
  s.release(&s);
  return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  pt_csv_options o;
  pt_csv_options_init(&o);
  o.header = data[0] & 1;
  o.mode = (pt_csv_mode)((data[0] >> 1) % 3);
  o.delimiter = (data[0] & 8) ? ';' : ',';
  o.escape = (data[0] & 16) ? '\\' : '"';
  if (o.mode == PT_CSV_PERMISSIVE && (data[0] & 32)) o.corrupt_column = "_corrupt";
  o.infer_rows = (data[0] & 64) ? 2 : 1000;
  int64_t len = (int64_t)size - 2;
  /* A private copy, so reads past the end hit ASan's redzone. */
  char *text = malloc((size_t)len + 1);
  if (!text) return 0;
  memcpy(text, data + 2, (size_t)len);
  int64_t cut = len ? data[1] % (len + 1) : 0;
  int64_t whole = rows(text, len, 0, len, &o);
  int64_t left = rows(text, len, 0, cut, &o);
  int64_t right = rows(text, len, cut, len, &o);
  int64_t newlines = 0;
  for (int64_t i = 0; i < len; i++) newlines += text[i] == '\n';
  if (pt__csv_count_newlines(text, len) != newlines) abort();
  int64_t before = 0, start = pt__csv_record_start_lines(text, len, cut, &o, &before);
  if (start != pt_csv_record_start(text, len, cut, &o) ||
      before != pt__csv_count_newlines(text, start))
    abort();
  /* The shared cut scan finds, on any number of threads and spans, the
   * starts and lines the serial scan finds. */
  if (len > 1) {
    int64_t step = 1 + data[1] % 7, nt = 0;
    int64_t *tg = malloc((size_t)len * 3 * sizeof *tg);
    if (!tg) abort();
    for (int64_t t = 1; t < len; t += step) tg[nt++] = t;
    pt_error err;
    for (int threads = 1; threads <= 5; threads += 2) {
      if (pt__csv_cuts(text, len, tg, nt, &o, threads, 1 + data[0] % 3, tg + len, tg + 2 * len,
                       &err) != PT_OK)
        abort();
      for (int64_t k = 0; k < nt; k++) {
        int64_t nl = 0;
        if (tg[len + k] != pt__csv_record_start_lines(text, len, tg[k], &o, &nl) ||
            tg[2 * len + k] != nl + 1)
          abort();
      }
    }
    free(tg);
  }
  /* A PERMISSIVE read has a row per record: the scan's record count for
   * the inferred number of columns (blank lines are records where it is
   * one), the header not counted, is the whole read's rows. */
  if (o.mode == PT_CSV_PERMISSIVE && whole >= 0) {
    struct ArrowSchema s;
    struct ArrowArray a;
    pt_error err;
    if (pt_csv_read(text, len, 0, len, "fuzz.csv", &o, &s, &a, &err) != PT_OK) abort();
    int64_t ncols = s.n_children - (o.corrupt_column != NULL);
    if (pt__csv_count_records(text, len, ncols, o.header, &o) != whole) abort();
    a.release(&a);
    s.release(&s);
  }
  /* The FAILFAST count: structure only, so a read into 1 to 4 binary
   * columns (which take any bytes) is its reference. */
  {
    int64_t ncols = 1 + (data[1] >> 6);
    struct ArrowSchema bin;
    pt_error err, rerr;
    if (pt_schema_init(&bin, "+s", NULL, 0, ncols, &err) != PT_OK) abort();
    for (int64_t c = 0; c < ncols; c++)
      if (pt_schema_init(bin.children[c], "z", "b", ARROW_FLAG_NULLABLE, 0, &err) != PT_OK)
        abort();
    pt_csv_options fo = o;
    fo.mode = PT_CSV_FAILFAST;
    fo.corrupt_column = NULL;
    fo.schema = &bin;
    int64_t n = -1;
    int rc = pt__csv_check_records(text, len, ncols, fo.header, 1, "fuzz.csv", &fo, &n, &err);
    struct ArrowSchema s;
    struct ArrowArray a;
    int rrc = pt_csv_read(text, len, 0, len, "fuzz.csv", &fo, &s, &a, &rerr);
    if (rc != rrc) abort();
    if (rc == PT_OK) {
      if (n != a.length) abort();
      a.release(&a);
      s.release(&s);
    } else if (strcmp(err.message, rerr.message) != 0) {
      abort();
    }
    bin.release(&bin);
  }
  if (o.mode == PT_CSV_FAILFAST && whole >= 0 && len > 0) {
    struct ArrowSchema s;
    struct ArrowArray a;
    pt_error err;
    if (pt_csv_read(text, len, 0, len, "fuzz.csv", &o, &s, &a, &err) != PT_OK) abort();
    int64_t n = -1;
    if (pt__csv_check_records(text, len, s.n_children, o.header, 1, "fuzz.csv", &o, &n, &err) !=
            PT_OK ||
        n != whole)
      abort();
    a.release(&a);
    s.release(&s);
  }
  /* The schema comes from the whole text's first records: give it to the
   * chunks, as the engine does. */
  if (whole >= 0 && len > 0) {
    struct ArrowSchema s;
    struct ArrowArray a;
    pt_error err;
    if (pt_csv_read(text, len, 0, len, "fuzz.csv", &o, &s, &a, &err) == PT_OK) {
      a.release(&a);
      pt_csv_options so = o;
      struct ArrowSchema given = s;
      if (o.corrupt_column) { /* the chunks add the corrupt column again */
        so.schema = NULL;
      } else {
        so.schema = &given;
      }
      if (so.schema) {
        int64_t line;
        int64_t chunked = chunked_rows(text, len, 1 + data[1] % 64, &so, &line);
        if (chunked != whole || line != newlines + 1) abort();
      }
      s.release(&s);
    }
  }
  char *fast = read_text(text, len, &o, 1), *general = read_text(text, len, &o, 0);
  if (strcmp(fast, general) != 0) abort();
  free(fast);
  free(general);
  /* Modes that never fail on bad records must split losslessly. */
  if (o.mode != PT_CSV_FAILFAST && whole >= 0 && (left < 0 || right < 0 || left + right != whole))
    abort();
  free(text);
  return 0;
}
