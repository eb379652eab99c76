/* test_csv.c — pt_csv_read and pt_csv_record_start: inference, explicit
 * schemas, quoting (fields spanning lines, doubled quotes, escapes), null
 * markers, the three modes with exact FAILFAST messages, and byte-range
 * partitions that together read every record exactly once. Values are checked
 * through the JSON lines rendering. */
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

/* Reads text[begin, end) and returns its JSON lines (caller frees) and the
 * schema's type names joined by ",". */
static char *read_json(const char *text, int64_t begin, int64_t end, const pt_csv_options *o,
                       char *types, size_t types_size) {
  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err = {0};
  int rc = pt_csv_read(text, (int64_t)strlen(text), begin, end, "t.csv", o, &s, &a, &err);
  if (rc != PT_OK) fprintf(stderr, "%s\n", err.message);
  assert_int_equal(rc, PT_OK);
  assert_int_equal(pt_array_validate(&s, &a, &err), PT_OK);
  if (types) {
    types[0] = 0;
    for (int64_t i = 0; i < s.n_children; i++) {
      char name[64];
      pt_type_name(s.children[i], name, sizeof name);
      if (i) strncat(types, ",", types_size - strlen(types) - 1);
      strncat(types, s.children[i]->name, types_size - strlen(types) - 1);
      strncat(types, ":", types_size - strlen(types) - 1);
      strncat(types, name, types_size - strlen(types) - 1);
    }
  }
  pt_buf buf = {0};
  assert_int_equal(pt_json_write_batch(&s, &a, &buf, &err), PT_OK);
  char *out = calloc(1, (size_t)buf.len + 1);
  if (buf.len) memcpy(out, buf.data, (size_t)buf.len);
  pt_buf_free(&buf);
  a.release(&a);
  s.release(&s);
  return out;
}

static void expect(const char *text, const pt_csv_options *o, const char *want_types,
                   const char *want) {
  char types[512];
  char *got = read_json(text, 0, (int64_t)strlen(text), o, types, sizeof types);
  if (want_types) assert_string_equal(types, want_types);
  if (want) assert_string_equal(got, want);
  free(got);
}

static void test_inference(void **state) {
  (void)state;
  pt_csv_options o;
  pt_csv_options_init(&o);
  o.header = 1;
  expect("i,f,b,d,ts,s\n"
         "1,1.5,true,2024-02-29,2024-01-02 03:04:05,x\n"
         "-9223372036854775808,2,FALSE,1969-12-31,2024-01-02T03:04:05.123456Z,\n"
         ",,,,,\"\"\n",
         &o, "i:int64,f:float64,b:bool,d:date32,ts:timestamp[us],s:utf8",
         "{\"i\": 1, \"f\": 1.5, \"b\": true, \"d\": \"2024-02-29\", \"ts\": "
         "\"2024-01-02T03:04:05.000000\", \"s\": \"x\"}\n"
         "{\"i\": -9223372036854775808, \"f\": 2.0, \"b\": false, \"d\": \"1969-12-31\", \"ts\": "
         "\"2024-01-02T03:04:05.123456\", \"s\": null}\n"
         "{\"i\": null, \"f\": null, \"b\": null, \"d\": null, \"ts\": null, \"s\": \"\"}\n");
  /* Widening: int+double is double, date+timestamp is timestamp, anything
   * else mixed is a string; an integer past int64 is a double. */
  expect("a,b,c,d\n1,2024-01-01,1,9223372036854775808\n2.5,2024-01-01 00:00,x,1\n", &o,
         "a:float64,b:timestamp[us],c:utf8,d:float64", NULL);
  /* Without a header: _c0, _c1 ... */
  o.header = 0;
  expect("1,a\n2,b", &o, "_c0:int64,_c1:utf8",
         "{\"_c0\": 1, \"_c1\": \"a\"}\n{\"_c0\": 2, \"_c1\": \"b\"}\n");
}

static void test_quoting(void **state) {
  (void)state;
  pt_csv_options o;
  pt_csv_options_init(&o);
  o.header = 1;
  /* A quoted field spans lines and holds delimiters and doubled quotes; \r\n
   * ends records; a quoted number stays a string. */
  expect("a,b\r\n\"x\ny\",\"say \"\"hi\"\", ok\"\r\n\"1\",2\r\n", &o, "a:utf8,b:utf8",
         "{\"a\": \"x\\u000ay\", \"b\": \"say \\\"hi\\\", ok\"}\n{\"a\": \"1\", \"b\": \"2\"}\n");
  /* A separate escape character. */
  o.escape = '\\';
  expect("a\n\"q\\\"uote\"\n", &o, "a:utf8", "{\"a\": \"q\\\"uote\"}\n");
  /* Other delimiter, null markers (unquoted only). */
  pt_csv_options_init(&o);
  o.header = 1;
  o.delimiter = ';';
  const char *nulls[] = {"NA", "null"};
  o.null_values = nulls;
  o.n_null_values = 2;
  expect("a;b\nNA;\"NA\"\n1;\n", &o, "a:int64,b:utf8",
         "{\"a\": null, \"b\": \"NA\"}\n{\"a\": 1, \"b\": \"\"}\n");
}

static struct ArrowSchema *two_int_schema(struct ArrowSchema *s) {
  pt_error err;
  assert_int_equal(pt_schema_init(s, "+s", NULL, 0, 2, &err), PT_OK);
  assert_int_equal(pt_schema_init(s->children[0], "i", "x", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  assert_int_equal(pt_schema_init(s->children[1], "u", "y", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  return s;
}

static void test_modes(void **state) {
  (void)state;
  const char *text = "x,y\n1,a\nzz,b\n3\n\"4\"5,c\n6,d\n\"7,e\n";
  struct ArrowSchema schema;
  pt_csv_options o;
  pt_csv_options_init(&o);
  o.header = 1;
  o.schema = two_int_schema(&schema);

  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err = {0};
  assert_int_equal(pt_csv_read(text, (int64_t)strlen(text), 0, (int64_t)strlen(text), "t.csv", &o,
                               &s, &a, &err),
                   PT_EFORMAT);
  assert_string_equal(err.message, "csv: t.csv: line 3: malformed record: column 0 (x): cannot "
                                   "read 'zz' as int32; fix the file or read with mode DROPMALFORMED "
                                   "or PERMISSIVE");
  assert_null(s.release);
  assert_null(a.release);
  /* The wrong field count, reported at its own line (blank lines are no
   * records, but lines). */
  const char *short_rec = "x,y\n1,a\n\n2\n";
  int64_t sl = (int64_t)strlen(short_rec);
  assert_int_equal(pt_csv_read(short_rec, sl, 0, sl, "s.csv", &o, &s, &a, &err), PT_EFORMAT);
  assert_string_equal(err.message, "csv: s.csv: line 4: malformed record: 1 fields, the schema "
                                   "has 2; fix the file or read with mode DROPMALFORMED or "
                                   "PERMISSIVE");

  o.mode = PT_CSV_DROPMALFORMED;
  expect(text, &o, "x:int32,y:utf8", "{\"x\": 1, \"y\": \"a\"}\n{\"x\": 6, \"y\": \"d\"}\n");

  o.mode = PT_CSV_PERMISSIVE;
  o.corrupt_column = "_corrupt_record";
  expect(text, &o, "x:int32,y:utf8,_corrupt_record:utf8",
         "{\"x\": 1, \"y\": \"a\", \"_corrupt_record\": null}\n"
         "{\"x\": null, \"y\": \"b\", \"_corrupt_record\": \"zz,b\"}\n"
         "{\"x\": 3, \"y\": null, \"_corrupt_record\": \"3\"}\n"
         "{\"x\": null, \"y\": \"c\", \"_corrupt_record\": \"\\\"4\\\"5,c\"}\n"
         "{\"x\": 6, \"y\": \"d\", \"_corrupt_record\": null}\n"
         "{\"x\": null, \"y\": null, \"_corrupt_record\": \"\\\"7,e\\u000a\"}\n");
  /* Out of range for int32 is a malformed field too. */
  o.mode = PT_CSV_FAILFAST;
  o.corrupt_column = NULL;
  const char *big = "x,y\n3000000000,a\n";
  assert_int_equal(pt_csv_read(big, (int64_t)strlen(big), 0, (int64_t)strlen(big), "b.csv", &o,
                               &s, &a, &err),
                   PT_EFORMAT);
  schema.release(&schema);
}

/* Every split point gives two ranges that together hold every record once,
 * quoted newlines included: a range starts at the first record that starts at
 * or after its begin offset. */
static void test_ranges(void **state) {
  (void)state;
  const char *text = "k,v\n1,\"a\nb\"\n2,\"\n\n\"\n3,\"x\"\"\n4\"\n4,z\n";
  pt_csv_options o;
  pt_csv_options_init(&o);
  o.header = 1;
  int64_t n = (int64_t)strlen(text);
  char *whole = read_json(text, 0, n, &o, NULL, 0);
  assert_string_equal(whole, "{\"k\": 1, \"v\": \"a\\u000ab\"}\n"
                             "{\"k\": 2, \"v\": \"\\u000a\\u000a\"}\n"
                             "{\"k\": 3, \"v\": \"x\\\"\\u000a4\"}\n"
                             "{\"k\": 4, \"v\": \"z\"}\n");
  for (int64_t cut = 0; cut <= n; cut++) {
    char *left = read_json(text, 0, cut, &o, NULL, 0);
    char *right = read_json(text, cut, n, &o, NULL, 0);
    size_t ll = strlen(left);
    char *both = malloc(ll + strlen(right) + 1);
    memcpy(both, left, ll);
    strcpy(both + ll, right);
    assert_string_equal(both, whole);
    free(both);
    free(left);
    free(right);
  }
  free(whole);
  assert_int_equal(pt_csv_record_start(text, n, 5, &o), 12);
  assert_int_equal(pt_csv_record_start(text, n, 4, &o), 4);
  assert_int_equal(pt_csv_record_start(text, n, n, &o), n);
}

/* Random CSV text for the cut tests: quoted fields holding newlines, CRLF,
 * doubled quotes, escapes, literal quotes and text after a closing quote,
 * long quoted fields over many 64-byte blocks, maybe an unclosed quote at
 * the end. */
static int64_t random_csv(char *buf, int64_t cap, unsigned *seed, char esc) {
  static const char *const pieces[] = {
      "ab",       "12",           "\"x,y\"",      "\"a\nb\"",     "\"a\r\nb\"", "\"x\"\"y\"",
      "\"\"\"\n\"\"\"", "ab\"c", "\"ab\"c",      "",             "\"\"",       "\"\n\"",
      "\\\"",     "\"a\\\"\nb\"",  "\"\\\n\"",     "\"q\\\\\""};
  int64_t n = 0;
  while (n < cap - 400) {
    int fields = 1 + (int)(rand_r(seed) % 4);
    for (int f = 0; f < fields; f++) {
      if (f) buf[n++] = ',';
      int k = (int)(rand_r(seed) % (esc == '\\' ? 16 : 12));
      if (rand_r(seed) % 40 == 0) { /* a long quoted field */
        buf[n++] = '"';
        int len = 64 + (int)(rand_r(seed) % 200);
        for (int i = 0; i < len; i++) buf[n++] = "ab,\n\r"[rand_r(seed) % 5];
        buf[n++] = '"';
      } else {
        size_t l = strlen(pieces[k]);
        memcpy(buf + n, pieces[k], l);
        n += (int64_t)l;
      }
    }
    if (rand_r(seed) % 3 == 0) buf[n++] = '\r';
    buf[n++] = '\n';
  }
  if (rand_r(seed) % 4 == 0) buf[n++] = '"';
  return n;
}

/* pt__csv_cuts, on any number of threads and spans, finds for every target
 * the record start and line the serial scan finds from the text's start. */
static void test_cuts_match_serial_scan(void **state) {
  (void)state;
  enum { CAP = 24000 };
  char *buf = malloc(CAP);
  int64_t *tg = malloc(CAP * sizeof *tg), *st = malloc(CAP * sizeof *st),
          *ln = malloc(CAP * sizeof *ln), *want_st = malloc(CAP * sizeof *want_st),
          *want_ln = malloc(CAP * sizeof *want_ln);
  unsigned seed = 7;
  for (int round = 0; round < 24; round++) {
    pt_csv_options o;
    pt_csv_options_init(&o);
    if (round % 3 == 1) o.escape = '\\';
    if (round % 3 == 2) o.quote = 0;
    int64_t n = random_csv(buf, CAP, &seed, o.escape);
    int64_t nt = 0;
    int step = 1 + round % 5 * 13;
    for (int64_t t = 1; t < n; t += step) tg[nt++] = t;
    /* The serial scan, resumed from each start it finds. */
    int64_t pos = 0, nl = 0;
    for (int64_t k = 0; k < nt; k++) {
      if (pos < tg[k]) pos += pt__csv_record_start_lines(buf + pos, n - pos, tg[k] - pos, &o, &nl);
      want_st[k] = pos;
      want_ln[k] = nl + 1;
    }
    for (int threads = 1; threads <= 16; threads += 3) {
      int64_t span = 1 + (round % 4) * 500;
      pt_error err = {0};
      assert_int_equal(pt__csv_cuts(buf, n, tg, nt, &o, threads, span, st, ln, &err), PT_OK);
      for (int64_t k = 0; k < nt; k++)
        if (st[k] != want_st[k] || ln[k] != want_ln[k])
          fail_msg("round %d threads %d target %lld: start %lld line %lld, want %lld line %lld",
                   round, threads, (long long)tg[k], (long long)st[k], (long long)ln[k],
                   (long long)want_st[k], (long long)want_ln[k]);
    }
  }
  free(buf);
  free(tg);
  free(st);
  free(ln);
  free(want_st);
  free(want_ln);
}

/* pt__csv_cuts_near, where it answers, finds the starts the serial scan
 * finds; in text long enough that the scans of both quote states must meet
 * (targets past its window from the start) it answers for quoted text, and
 * leaves text with no quote to the whole scan. */
static void test_cuts_near_match_serial_scan(void **state) {
  (void)state;
  enum { CAP = 600000 };
  char *buf = malloc(CAP);
  int64_t *tg = malloc((CAP / 997 + 2) * sizeof *tg), *st = malloc((CAP / 997 + 2) * sizeof *st),
          *want = malloc((CAP / 997 + 2) * sizeof *want);
  unsigned seed = 11;
  int answered = 0;
  for (int round = 0; round < 9; round++) {
    pt_csv_options o;
    pt_csv_options_init(&o);
    if (round % 3 == 1) o.escape = '\\';
    if (round % 3 == 2) o.quote = 0;
    int64_t n = random_csv(buf, CAP, &seed, o.escape);
    int64_t nt = 0;
    for (int64_t t = 1 + round * 101; t < n; t += 997 + round * 7919) tg[nt++] = t;
    int64_t pos = 0, nl = 0;
    for (int64_t k = 0; k < nt; k++) {
      if (pos < tg[k]) pos += pt__csv_record_start_lines(buf + pos, n - pos, tg[k] - pos, &o, &nl);
      want[k] = pos;
    }
    if (!pt__csv_cuts_near(buf, n, tg, nt, &o, st)) continue;
    answered++;
    for (int64_t k = 0; k < nt; k++)
      if (st[k] != want[k])
        fail_msg("round %d target %lld: start %lld, want %lld", round, (long long)tg[k],
                 (long long)st[k], (long long)want[k]);
  }
  assert_true(answered >= 3);
  /* Numbers only: the guess that a target lies inside quotes never ends. */
  int64_t n = 0;
  while (n < CAP - 32) n += snprintf(buf + n, 32, "%lld,%lld\n", (long long)n, (long long)n * 7);
  int64_t t = n / 2;
  assert_int_equal(pt__csv_cuts_near(buf, n, &t, 1, NULL, st), 0);
  free(buf);
  free(tg);
  free(st);
  free(want);
}

static void test_errors(void **state) {
  (void)state;
  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err = {0};
  pt_csv_options o;
  pt_csv_options_init(&o);
  o.delimiter = '\n';
  assert_int_equal(pt_csv_read("a", 1, 0, 1, "t.csv", &o, &s, &a, &err), PT_EINVAL);
  assert_string_equal(err.message,
                      "csv: the delimiter must be one byte other than a newline or the quote");
  assert_int_equal(pt_csv_read("a", 1, 2, 1, "t.csv", NULL, &s, &a, &err), PT_EINVAL);
  /* Empty input: no columns, no rows. */
  assert_int_equal(pt_csv_read("", 0, 0, 0, "e.csv", NULL, &s, &a, &err), PT_OK);
  assert_int_equal(s.n_children, 0);
  assert_int_equal(a.length, 0);
  a.release(&a);
  s.release(&s);
  /* Invalid UTF-8 in a string column is malformed. */
  assert_int_equal(pt_csv_read("a\n\xff\n", 4, 0, 4, "u.csv", NULL, &s, &a, &err), PT_EFORMAT);
}

/* Written CSV reads back as the same values and types; the text is exact. */
static void test_write_round_trip(void **state) {
  (void)state;
  const char *text = "i,f,b,d,ts,s\n"
                     "1,0.10000000000000001,true,2024-02-29,2024-01-02T03:04:05.123456,\"a,\"\"b\"\"\n\"\n"
                     ",,,,,\"\"\n"
                     "-7,-1.0000000000000001e+300,false,0001-01-01,1969-12-31T23:59:59.999999,\"12\"\n";
  pt_csv_options o;
  pt_csv_options_init(&o);
  o.header = 1;
  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err = {0};
  assert_int_equal(pt_csv_read(text, (int64_t)strlen(text), 0, (int64_t)strlen(text), "w.csv", &o,
                               &s, &a, &err),
                   PT_OK);
  pt_buf buf = {0};
  assert_int_equal(pt_csv_write_batch(&s, &a, 1, ',', &buf, &err), PT_OK);
  char *written = calloc(1, buf.len + 1);
  memcpy(written, buf.data, buf.len);
  assert_string_equal(written, text);
  char types[512], types2[512];
  char *j1 = read_json(text, 0, (int64_t)strlen(text), &o, types, sizeof types);
  char *j2 = read_json(written, 0, (int64_t)strlen(written), &o, types2, sizeof types2);
  assert_string_equal(types, types2);
  assert_string_equal(j1, j2);
  free(j1);
  free(j2);
  free(written);
  /* Unsupported columns are refused and leave the buffer as it was. */
  struct ArrowSchema ls;
  assert_int_equal(pt_schema_init(&ls, "+s", NULL, 0, 1, &err), PT_OK);
  assert_int_equal(pt_schema_init(ls.children[0], "z", "bin", ARROW_FLAG_NULLABLE, 0, &err),
                   PT_OK);
  size_t before = buf.len;
  struct ArrowArray empty;
  pt_builder *b;
  assert_int_equal(pt_builder_new(&ls, &b, &err), PT_OK);
  assert_int_equal(pt_builder_finish(b, &empty, &err), PT_OK);
  pt_builder_free(b);
  assert_int_equal(pt_csv_write_batch(&ls, &empty, 1, ',', &buf, &err), PT_ENOTSUP);
  assert_string_equal(err.message, "csv: write: column 0 (bin) is binary, which CSV does not "
                                   "carry; cast it to a string first");
  assert_int_equal(buf.len, before);
  empty.release(&empty);
  ls.release(&ls);
  pt_buf_free(&buf);
  a.release(&a);
  s.release(&s);
}

/* Blank lines (\n or \r\n alone, outside quotes) are no records, as in
 * pyarrow.csv and Spark: before the header, between records, several in a
 * row, at the end; in every mode (none is malformed), with either record
 * splitter, whole and cut at every byte; inside quotes they are data. With
 * one column, as in DuckDB, a blank line after the header is a record of
 * one empty field (null), and a file of blank lines only is one column. */
static void test_blank_lines(void **state) {
  (void)state;
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"a,b\n1,2\n\n", "{\"a\": 1, \"b\": 2}\n"},
      {"\n\r\n\na,b\n1,2\n\n\n3,4\r\n\r\n\r\n", "{\"a\": 1, \"b\": 2}\n{\"a\": 3, \"b\": 4}\n"},
      {"a,b\r\n\r\n\"\n\n\",2\r\n\n\"\r\n\r\n\",4",
       "{\"a\": \"\\u000a\\u000a\", \"b\": 2}\n"
       "{\"a\": \"\\u000d\\u000a\\u000d\\u000a\", \"b\": 4}\n"},
      {"\na,b\n\n1,\n\n,2\n\n", "{\"a\": 1, \"b\": null}\n{\"a\": null, \"b\": 2}\n"},
      {"v\nx\n\n\"\"\n\ny\n",
       "{\"v\": \"x\"}\n{\"v\": null}\n{\"v\": \"\"}\n{\"v\": null}\n{\"v\": \"y\"}\n"},
      {"\n\r\nv\n1\n\r\n\n2\n\n",
       "{\"v\": 1}\n{\"v\": null}\n{\"v\": null}\n{\"v\": 2}\n{\"v\": null}\n"},
      {"\n\r\n\n", "{\"\": null}\n{\"\": null}\n"},
  };
  pt_csv_options o;
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    const char *text = cases[k].text;
    int64_t n = (int64_t)strlen(text);
    for (int fast = 0; fast < 2; fast++) {
      pt__csv_fast_records = fast;
      for (int mode = PT_CSV_FAILFAST; mode <= PT_CSV_PERMISSIVE; mode++) {
        pt_csv_options_init(&o);
        o.header = 1;
        o.mode = (pt_csv_mode)mode;
        expect(text, &o, NULL, cases[k].want);
        for (int64_t cut = 0; cut <= n; cut++) {
          char *p1 = read_json(text, 0, cut, &o, NULL, 0);
          char *p2 = read_json(text, cut, n, &o, NULL, 0);
          char both[512];
          snprintf(both, sizeof both, "%s%s", p1, p2);
          assert_string_equal(both, cases[k].want);
          free(p1);
          free(p2);
        }
      }
    }
    pt__csv_fast_records = 1;
  }
  /* Without a header the first line that is not blank gives the columns;
   * blank lines take no place among the infer_rows records looked at. With
   * one column they are its nulls, the first ones too. */
  pt_csv_options_init(&o);
  o.infer_rows = 2;
  expect("\n\r\n\n1,a\n\n\n\n2,b\n", &o, "_c0:int64,_c1:utf8",
         "{\"_c0\": 1, \"_c1\": \"a\"}\n{\"_c0\": 2, \"_c1\": \"b\"}\n");
  expect("\n\r\n1\n\n\n\nx\n", &o, "_c0:utf8",
         "{\"_c0\": null}\n{\"_c0\": null}\n{\"_c0\": \"1\"}\n{\"_c0\": null}\n"
         "{\"_c0\": null}\n{\"_c0\": null}\n{\"_c0\": \"x\"}\n");
  expect("\n\r\n", &o, "_c0:utf8", "{\"_c0\": null}\n{\"_c0\": null}\n");
  expect("", &o, "", "");
  /* A line of spaces is not blank: a value (here a record of one field). */
  o.header = 1;
  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err = {0};
  const char *spaces = "a,b\n\n1,2\n \n";
  int64_t sn = (int64_t)strlen(spaces);
  assert_int_equal(pt_csv_read(spaces, sn, 0, sn, "t.csv", &o, &s, &a, &err), PT_EFORMAT);
  assert_string_equal(err.message, "csv: t.csv: line 4: malformed record: 1 fields, the schema "
                                   "has 2; fix the file or read with mode DROPMALFORMED or "
                                   "PERMISSIVE");
  expect("a\n\n \n", &o, "a:utf8", "{\"a\": null}\n{\"a\": \" \"}\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_inference), cmocka_unit_test(test_quoting),
      cmocka_unit_test(test_modes),     cmocka_unit_test(test_ranges),
      cmocka_unit_test(test_errors),    cmocka_unit_test(test_write_round_trip),
      cmocka_unit_test(test_cuts_match_serial_scan),
      cmocka_unit_test(test_cuts_near_match_serial_scan), cmocka_unit_test(test_blank_lines),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
