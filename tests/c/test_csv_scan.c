/* test_csv_scan.c — the record-start scan's ways of making its 64-byte
 * masks (a byte at a time, SSE2, AVX2, AVX-512BW: those this CPU has) give
 * the same starts, lines, cuts and record counts on random CSV at every
 * alignment, the record count equals the rows a PERMISSIVE read gives,
 * whole and in ranges, and the FAILFAST count's structure check fails
 * where a FAILFAST read into text columns fails, with its message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arrow/arrow.h"
#include "core/core.h"
#include "io/io.h"

/* Random CSV: quoted fields holding newlines and CRLF, doubled quotes,
 * backslash escapes (escaped quotes, newlines, escapes), literal quotes,
 * text after a closing quote, blank lines, lone \r, quoted fields over many
 * 64-byte blocks, quotes at block ends; maybe no newline at the end, maybe
 * an unclosed quote. */
static int64_t random_csv(char *buf, int64_t cap, unsigned *seed) {
  static const char *const pieces[] = {
      "ab",      "12",       "\"x,y\"", "\"a\nb\"", "\"a\r\nb\"", "\"x\"\"y\"", "\"\"\"\n\"\"\"",
      "ab\"c",   "\"ab\"c",  "",        "\"\"",     "\"\n\"",     "\\\"",       "\"a\\\"\nb\"",
      "\"\\\n\"", "\"q\\\\\"", "a\rb",  "\"\"\"\"", "\"a\"\"\"", "\"\\\"\"\""};
  enum { N_PIECES = sizeof pieces / sizeof pieces[0] };
  int64_t n = 0;
  while (n < cap - 600) {
    if (rand_r(seed) % 25 == 0) { /* a blank line */
      if (rand_r(seed) % 2) buf[n++] = '\r';
      buf[n++] = '\n';
      continue;
    }
    int fields = 1 + (int)(rand_r(seed) % 4);
    for (int f = 0; f < fields; f++) {
      if (f) buf[n++] = ',';
      if (rand_r(seed) % 30 == 0) { /* a long quoted field */
        buf[n++] = '"';
        int len = 40 + (int)(rand_r(seed) % 300);
        for (int i = 0; i < len; i++) buf[n++] = "ab,\n\r\"\\"[rand_r(seed) % 7];
        buf[n++] = '"';
      } else if (rand_r(seed) % 30 == 0) { /* a long unquoted field */
        int len = 40 + (int)(rand_r(seed) % 200);
        for (int i = 0; i < len; i++) buf[n++] = "abc d"[rand_r(seed) % 5];
      } else {
        const char *p = pieces[rand_r(seed) % N_PIECES];
        size_t l = strlen(p);
        memcpy(buf + n, p, l);
        n += (int64_t)l;
      }
    }
    if (rand_r(seed) % 3 == 0) buf[n++] = '\r';
    buf[n++] = '\n';
  }
  if (rand_r(seed) % 3 == 0) n--; /* no newline at the end */
  if (rand_r(seed) % 5 == 0) buf[n++] = '"';
  return n;
}

/* The options of round r: RFC quotes, backslash escapes, no quoting,
 * quotes with no escape, a letter as the delimiter. */
static void round_options(int r, pt_csv_options *o) {
  pt_csv_options_init(o);
  switch (r % 5) {
  case 1: o->escape = '\\'; break;
  case 2: o->quote = 0; break;
  case 3: o->escape = 0; break;
  case 4: o->delimiter = 'a'; break;
  default: break;
  }
}

/* What one level of the scan finds in text[0, n): the start and line of
 * every target 1..n-1 (the serial scan resumed at each start), the cuts'
 * starts and lines at a few thread counts, and the records from some of
 * the starts. */
typedef struct found {
  int64_t *start, *line, *cut, *cut_line, *records;
} found;

static void scan_all(const char *text, int64_t n, const pt_csv_options *o, const int64_t *tg,
                     found *f) {
  int64_t pos = 0, nl = 0;
  for (int64_t k = 0; k + 1 < n; k++) {
    if (pos < tg[k]) pos += pt__csv_record_start_lines(text + pos, n - pos, tg[k] - pos, o, &nl);
    f->start[k] = pos;
    f->line[k] = nl + 1;
  }
  for (int threads = 1, c = 0; threads <= 4; threads++, c++) {
    pt_error err = {0};
    int64_t span = 1 + (threads - 1) * 97;
    assert_int_equal(pt__csv_cuts(text, n, tg, n - 1, o, threads, span, f->cut + c * n,
                                  f->cut_line + c * n, &err),
                     PT_OK);
  }
  /* From some of the starts (each costs a scan to the end), for one
   * column (blank lines are records) and for two (they are not). */
  for (int64_t k = 0; k + 1 < n; k++) {
    int64_t s = f->start[k];
    int64_t ncols = 1 + k / 53 % 2;
    f->records[k] = k % 53 == 0 ? pt__csv_count_records(text + s, n - s, ncols, 0, o) : 0;
  }
}

/* Every level this build and CPU have agrees with the byte-at-a-time scan,
 * with the text at each of the 64 alignments of a block. */
static void test_levels_agree(void **state) {
  (void)state;
  enum { CAP = 2560, ROUNDS = 10, LEVELS = PT__CSV_SCAN_AVX512 + 1 };
  char *area = aligned_alloc(64, CAP + 128);
  char *text = malloc(CAP);
  int64_t *tg = malloc(CAP * sizeof *tg);
  found want, got;
  found *fs[] = {&want, &got};
  for (int w = 0; w < 2; w++) {
    fs[w]->start = malloc(CAP * sizeof(int64_t));
    fs[w]->line = malloc(CAP * sizeof(int64_t));
    fs[w]->cut = malloc(4 * CAP * sizeof(int64_t));
    fs[w]->cut_line = malloc(4 * CAP * sizeof(int64_t));
    fs[w]->records = malloc(CAP * sizeof(int64_t));
  }
  int have[LEVELS], n_have = 0;
  for (int l = 0; l < LEVELS; l++) {
    have[l] = pt__csv_scan_level(l) == l;
    n_have += have[l];
  }
  /* The byte scan and the portable masks everywhere, SSE2 on x86-64. */
  assert_true(have[PT__CSV_SCAN_BYTES] && have[PT__CSV_SCAN_PLAIN]);
  print_message("scan levels here: %d of %d\n", n_have, LEVELS);
  unsigned seed = 11;
  for (int r = 0; r < ROUNDS; r++) {
    pt_csv_options o;
    round_options(r, &o);
    int64_t n = random_csv(text, CAP, &seed);
    for (int64_t k = 0; k + 1 < n; k++) tg[k] = k + 1;
    for (int a = 0; a < 64; a++) {
      char *t = area + a;
      memcpy(t, text, (size_t)n);
      pt__csv_scan_level(PT__CSV_SCAN_BYTES);
      scan_all(t, n, &o, tg, &want);
      for (int l = PT__CSV_SCAN_PLAIN; l < LEVELS; l++) {
        if (!have[l]) continue;
        assert_int_equal(pt__csv_scan_level(l), l);
        scan_all(t, n, &o, tg, &got);
        for (int64_t k = 0; k + 1 < n; k++) {
          if (got.start[k] != want.start[k] || got.line[k] != want.line[k] ||
              got.records[k] != want.records[k])
            fail_msg("round %d align %d level %d target %lld: start %lld line %lld records "
                     "%lld, want %lld %lld %lld",
                     r, a, l, (long long)tg[k], (long long)got.start[k], (long long)got.line[k],
                     (long long)got.records[k], (long long)want.start[k],
                     (long long)want.line[k], (long long)want.records[k]);
          for (int c = 0; c < 4; c++)
            if (got.cut[c * n + k] != want.start[k] || got.cut_line[c * n + k] != want.line[k] ||
                want.cut[c * n + k] != want.start[k])
              fail_msg("round %d align %d level %d threads %d target %lld: cut %lld line %lld, "
                       "want %lld line %lld",
                       r, a, l, c + 1, (long long)tg[k], (long long)got.cut[c * n + k],
                       (long long)got.cut_line[c * n + k], (long long)want.start[k],
                       (long long)want.line[k]);
        }
      }
    }
  }
  pt__csv_scan_level(-1);
  for (int w = 0; w < 2; w++) {
    free(fs[w]->start);
    free(fs[w]->line);
    free(fs[w]->cut);
    free(fs[w]->cut_line);
    free(fs[w]->records);
  }
  free(area);
  free(text);
  free(tg);
}

/* ncols utf8 columns: a FAILFAST read into them fails only on structure. */
static void text_schema(struct ArrowSchema *s, int64_t ncols) {
  pt_error err = {0};
  static const char *const names[] = {"c0", "c1", "c2", "c3", "c4"};
  assert_int_equal(pt_schema_init(s, "+s", NULL, 0, ncols, &err), PT_OK);
  for (int64_t c = 0; c < ncols; c++)
    assert_int_equal(pt_schema_init(s->children[c], "u", names[c], ARROW_FLAG_NULLABLE, 0, &err),
                     PT_OK);
}

/* The rows of a PERMISSIVE read of the records that start in
 * text[begin, end). */
static int64_t parsed_rows(const char *text, int64_t n, int64_t begin, int64_t end,
                           const pt_csv_options *o) {
  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err = {0};
  int rc = pt_csv_read(text, n, begin, end, "t.csv", o, &s, &a, &err);
  if (rc != PT_OK) fail_msg("read: %s", err.message);
  int64_t rows = a.length;
  a.release(&a);
  s.release(&s);
  return rows;
}

/* The record count, which the engine's count() of a PERMISSIVE read takes
 * instead of parsing, equals the rows a read gives: the whole text, with
 * and without a header, and the ranges between record starts. */
static void test_count_matches_rows(void **state) {
  (void)state;
  enum { CAP = 3000, ROUNDS = 40 };
  char *text = malloc(CAP);
  unsigned seed = 5;
  for (int r = 0; r < ROUNDS; r++) {
    pt_csv_options o;
    round_options(r, &o);
    o.mode = PT_CSV_PERMISSIVE;
    o.header = r % 2;
    if (r % 4 == 3) o.corrupt_column = "_corrupt";
    int64_t n = random_csv(text, CAP, &seed);
    /* The inferred schema (1 to 4 columns), then one text column given:
     * with one, blank lines are records. */
    struct ArrowSchema one;
    text_schema(&one, 1);
    for (int given = 0; given < 2; given++) {
      o.schema = given ? &one : NULL;
      struct ArrowSchema s;
      struct ArrowArray a;
      pt_error err = {0};
      if (pt_csv_read(text, n, 0, n, "t.csv", &o, &s, &a, &err) != PT_OK)
        fail_msg("read: %s", err.message);
      int64_t ncols = s.n_children - (o.corrupt_column != NULL);
      assert_int_equal(pt__csv_count_records(text, n, ncols, o.header, &o), a.length);
      a.release(&a);
      s.release(&s);
      /* Ranges [s1, s2) between the record starts at or after cut points,
       * as the engine's pieces are; only one that starts at or before the
       * header skips it. */
      int64_t blank = 0, head = pt__csv_header_start(text, n, &o, &blank);
      for (int64_t c1 = 0; c1 < n; c1 += 1 + rand_r(&seed) % 97) {
        int64_t c2 = c1 + 1 + rand_r(&seed) % 400;
        if (c2 > n) c2 = n;
        int64_t s1 = pt_csv_record_start(text, n, c1, &o);
        int64_t s2 = pt_csv_record_start(text, n, c2, &o);
        int head_in = o.header && s1 <= head;
        int64_t got = pt__csv_count_records(text + s1, s2 - s1, ncols, head_in, &o);
        int64_t want = parsed_rows(text, n, c1, c2, &o);
        if (got != want)
          fail_msg("round %d, %lld columns, range [%lld, %lld) = [%lld, %lld): %lld records, "
                   "%lld rows", r, (long long)ncols, (long long)c1, (long long)c2,
                   (long long)s1, (long long)s2, (long long)got, (long long)want);
      }
    }
    one.release(&one);
  }
  /* Edge cases named. */
  pt_csv_options o;
  pt_csv_options_init(&o);
  /* Blank lines (\n or \r\n alone, outside quotes) are no records; a line
   * of \r alone or of a space is one. */
  const char *const cases[] = {"", "\n", "a", "a\n", "a\nb", "a\r\nb\r\n", "\n\n\n", "\"a\nb\"",
                               "\"a\nb", "a,\"b\nc\"\nd\n", "\"\"\"\n\"\n", "a\r\rb\n",
                               "\r\n", "\r\n\n\r\na\n\n", "a\n\r\n\r\nb", "\r", "a\n\r", " \n",
                               "\"\n\n\"\n\n", "\"\r\n\r\n\"\r\n\r\n", "\n\r\r\n"};
  const int64_t want[] = {0, 0, 1, 1, 2, 2, 0, 1, 1, 2, 1, 1, 0, 1, 2, 1, 2, 1, 1, 1, 1};
  /* With one column a blank line is a record (of one empty field); with a
   * header, not before it, nor the first line of a file of blank lines
   * only (its header). */
  const int64_t want1[] = {0, 1, 1, 1, 2, 2, 3, 1, 1, 2, 1, 1, 1, 5, 4, 1, 2, 1, 2, 2, 2};
  const int64_t want1h[] = {0, 0, 0, 0, 1, 1, 2, 0, 0, 1, 0, 0, 0, 1, 3, 0, 1, 0, 1, 1, 0};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int64_t len = (int64_t)strlen(cases[k]);
    assert_int_equal(pt__csv_count_records(cases[k], len, 2, 0, &o), want[k]);
    assert_int_equal(pt__csv_count_records(cases[k], len, 1, 0, &o), want1[k]);
    assert_int_equal(pt__csv_count_records(cases[k], len, 1, 1, &o), want1h[k]);
  }
  free(text);
}

/* Well-formed CSV under o: records of exactly ncols fields, blank lines
 * (\n and \r\n, some in a row, some first), quoted fields holding the delimiter, newlines, CRLF
 * and the escapes o has (doubled quotes or backslashes), some over many
 * 64-byte blocks, \n or \r\n endings, maybe none at the end. */
static int64_t good_csv(char *buf, int64_t cap, int64_t ncols, const pt_csv_options *o,
                        unsigned *seed) {
  int64_t n = 0;
  char plain[] = "bcd 12\r";
  while (n < cap - 800) {
    if (rand_r(seed) % 20 == 0) {
      if (rand_r(seed) % 2 && o->quote != '\r') buf[n++] = '\r';
      buf[n++] = '\n';
      continue;
    }
    for (int64_t f = 0; f < ncols; f++) {
      if (f) buf[n++] = o->delimiter;
      int len = rand_r(seed) % 10 == 0 ? 40 + (int)(rand_r(seed) % 150) : (int)(rand_r(seed) % 6);
      if (o->quote && rand_r(seed) % 2) {
        buf[n++] = o->quote;
        for (int i = 0; i < len; i++) {
          int k = (int)(rand_r(seed) % 8);
          if (k == 0) {
            buf[n++] = o->delimiter;
          } else if (k == 1 || k == 2) {
            buf[n++] = k == 1 ? '\n' : '\r';
          } else if (k == 3 && o->escape) { /* a doubled quote, or an escaped byte */
            buf[n++] = o->escape;
            buf[n++] = o->escape == o->quote || rand_r(seed) % 2 ? o->quote : '\n';
          } else {
            buf[n++] = plain[rand_r(seed) % 6];
          }
        }
        buf[n++] = o->quote;
      } else {
        /* Unquoted: no delimiter or newline; a quote past the first byte
         * is literal. */
        for (int i = 0; i < len; i++) {
          char ch = plain[rand_r(seed) % 7];
          if (ch == '\r' || (i == 0 && ch == o->quote)) ch = 'b';
          if (i > 0 && rand_r(seed) % 9 == 0 && o->quote) ch = o->quote;
          buf[n++] = ch;
        }
      }
    }
    if (rand_r(seed) % 3 == 0) buf[n++] = '\r';
    buf[n++] = '\n';
  }
  if (rand_r(seed) % 3 == 0) n -= 1 + (n > 1 && buf[n - 2] == '\r'); /* no newline at the end */
  return n;
}

/* The FAILFAST count's check of the records that start in text[s1, s2)
 * against a FAILFAST read of them into text columns: both fail or
 * neither, with the same message, and the count is the rows. */
static void check_against_read(const char *text, int64_t n, int64_t s1, int64_t s2,
                               const pt_csv_options *o, int64_t ncols, const char *what) {
  pt_error e1 = {0}, e2 = {0};
  int64_t records = -1;
  int64_t line = 1 + pt__csv_count_newlines(text, s1), blank = 0;
  /* The header is the first line that is not blank (or the first line of
   * a file of blank lines only). */
  int head = o->header && s1 <= pt__csv_header_start(text, n, o, &blank);
  int rc1 = pt__csv_check_records(text + s1, s2 - s1, ncols, head, line, "t.csv", o, &records,
                                  &e1);
  struct ArrowSchema s;
  struct ArrowArray a;
  int rc2 = pt_csv_read(text, n, s1, s2, "t.csv", o, &s, &a, &e2);
  int64_t rows = -1;
  if (rc2 == PT_OK) {
    rows = a.length;
    a.release(&a);
    s.release(&s);
  }
  if (rc1 != rc2 || (rc1 == PT_OK && records != rows) ||
      (rc1 != PT_OK && strcmp(e1.message, e2.message) != 0))
    fail_msg("%s [%lld, %lld) of %lld: check %d (%lld records) '%s', read %d (%lld rows) '%s'",
             what, (long long)s1, (long long)s2, (long long)n, rc1, (long long)records,
             e1.message, rc2, (long long)rows, e2.message);
}

/* The FAILFAST count's structure check at every level this CPU has, and
 * at several alignments, decides as the parser does: on random CSV with
 * faults (wrong field counts, text after closing quotes, unclosed quotes,
 * for 1 to 4 columns) and on well-formed CSV, whole and in ranges. */
static void test_check_matches_failfast(void **state) {
  (void)state;
  enum { CAP = 3008, ROUNDS = 60, LEVELS = PT__CSV_SCAN_AVX512 + 1 }; /* CAP + 128: 64s */
  char *area = aligned_alloc(64, CAP + 128);
  char *text = malloc(CAP);
  unsigned seed = 23;
  int64_t passed = 0, failed = 0;
  for (int r = 0; r < ROUNDS; r++) {
    pt_csv_options o;
    round_options(r, &o);
    o.header = (r / 5) % 2;
    int64_t ncols = 1 + (r / 10) % 4;
    struct ArrowSchema schema;
    text_schema(&schema, ncols);
    o.schema = &schema;
    int64_t n = r % 3 == 0 ? random_csv(text, CAP, &seed) : good_csv(text, CAP, ncols, &o, &seed);
    for (int al = 0; al < 64; al += 7) {
      char *t = area + al;
      memcpy(t, text, (size_t)n);
      for (int l = 0; l < LEVELS; l++) {
        if (pt__csv_scan_level(l) != l) continue;
        char what[64];
        snprintf(what, sizeof what, "round %d align %d level %d", r, al, l);
        check_against_read(t, n, 0, n, &o, ncols, what);
        for (int64_t c1 = 0; c1 < n; c1 += 1 + rand_r(&seed) % 701) {
          int64_t c2 = c1 + 1 + rand_r(&seed) % 900;
          if (c2 > n) c2 = n;
          int64_t s1 = pt_csv_record_start(t, n, c1, &o), s2 = pt_csv_record_start(t, n, c2, &o);
          check_against_read(t, n, s1, s2, &o, ncols, what);
        }
      }
    }
    int64_t records;
    pt_error err = {0};
    if (pt__csv_check_records(text, n, ncols, o.header, 1, "t.csv", &o, &records, &err) == PT_OK)
      passed++;
    else
      failed++;
    schema.release(&schema);
  }
  /* Both outcomes were tried. */
  print_message("structure: %lld texts pass, %lld fail\n", (long long)passed, (long long)failed);
  assert_true(passed >= ROUNDS / 2 && failed > 0);
  pt__csv_scan_level(-1);

  /* Named cases: the message of each fault, with its line. */
  pt_csv_options o;
  pt_csv_options_init(&o);
  static const struct {
    const char *text;
    int64_t ncols;
    int rc;
    const char *msg;
  } cases[] = {
      {"a,b\r\nc,d\r\n", 2, PT_OK, NULL},
      {"a,\"b\nc\"\n\"x\"\"y\",z", 2, PT_OK, NULL},
      {"a,b\nc\nd,e\n", 2, PT_EFORMAT, "line 2: malformed record: 1 fields, the schema has 2"},
      {"a,b\n\"p\nq\",r,s\n", 2, PT_EFORMAT,
       "line 2: malformed record: 3 fields, the schema has 2"},
      {"a,b\n\nc,d\n", 2, PT_OK, NULL},
      {"\n\r\na,b\n\r\n\nc,d\r\n\n", 2, PT_OK, NULL},
      {"\na,b\n\r\n\nc\n", 2, PT_EFORMAT,
       "line 5: malformed record: 1 fields, the schema has 2"},
      {"a,b\n \nc,d\n", 2, PT_EFORMAT, "line 2: malformed record: 1 fields, the schema has 2"},
      {"a,b\n\r\r\nc,d\n", 2, PT_EFORMAT,
       "line 2: malformed record: 1 fields, the schema has 2"},
      {"a,b\nc,\"d\ne\n", 2, PT_EFORMAT,
       "line 2: malformed record: unterminated quote or text after a closing quote"},
      {"a,\"b\"c\n", 2, PT_EFORMAT,
       "line 1: malformed record: unterminated quote or text after a closing quote"},
      {"a,\"b\"\r", 2, PT_EFORMAT,
       "line 1: malformed record: unterminated quote or text after a closing quote"},
      {"a,\"b\"\r\n", 2, PT_OK, NULL},
      /* One column: a blank line is a record of one empty field. */
      {"a\n\nb\n\r\n\n", 1, PT_OK, NULL},
      {"a\n\nb,c\n", 1, PT_EFORMAT, "line 3: malformed record: 2 fields, the schema has 1"},
      {"\n\r\n\"b\"c\n", 1, PT_EFORMAT,
       "line 3: malformed record: unterminated quote or text after a closing quote"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    pt_error err = {0};
    int64_t records = 0;
    int rc = pt__csv_check_records(cases[k].text, (int64_t)strlen(cases[k].text), cases[k].ncols,
                                   0, 1, "t.csv", &o, &records, &err);
    assert_int_equal(rc, cases[k].rc);
    if (cases[k].msg) {
      char want[200];
      snprintf(want, sizeof want,
               "csv: t.csv: %s; fix the file or read with mode DROPMALFORMED or PERMISSIVE",
               cases[k].msg);
      assert_string_equal(err.message, want);
    }
  }
  /* The rows counted, with one column: blank lines too, but not those
   * before the header, nor the header of a file of blank lines only. */
  static const struct {
    const char *text;
    int header;
    int64_t rows;
  } ones[] = {{"a\n\nb\n\r\n\n", 0, 5}, {"\n\nv\n\nx\n\r\n", 1, 3},
              {"\n\nv\n\nx\n\r\n", 0, 6}, {"\n\r\n\n", 1, 2}, {"\n\r\n\n", 0, 3}};
  for (size_t k = 0; k < sizeof ones / sizeof ones[0]; k++) {
    pt_error err = {0};
    int64_t records = -1, len = (int64_t)strlen(ones[k].text);
    assert_int_equal(pt__csv_check_records(ones[k].text, len, 1, ones[k].header, 1, "t.csv", &o,
                                           &records, &err),
                     PT_OK);
    assert_int_equal(records, ones[k].rows);
    assert_int_equal(pt__csv_count_records(ones[k].text, len, 1, ones[k].header, &o),
                     ones[k].rows);
  }
  free(area);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_levels_agree),
      cmocka_unit_test(test_count_matches_rows),
      cmocka_unit_test(test_check_matches_failfast),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
