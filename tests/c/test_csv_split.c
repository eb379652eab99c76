/* test_csv_split.c — the CSV reader's fast record splitter (64 bytes of
 * delimiters, quotes and newlines at a time) against the general one on
 * random text built from the pieces that make splitting hard: quoted
 * fields with delimiters, doubled quotes, newlines and text after the
 * closing quote, \r alone and before \n, quotes inside unquoted fields.
 * Both must give the same rows, errors, next record start and line, in
 * every mode, from every alignment, the text ending where its heap block
 * ends (a read past it is an AddressSanitizer error). */
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

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}

/* What one read gives: rc, message, rows as JSON lines, where it stopped. */
typedef struct outcome {
  int rc;
  char message[1024];
  char *json; /* owned; NULL when rc != PT_OK */
  int64_t next, next_line;
} outcome;

static outcome read_once(const char *d, int64_t len, int64_t end, const pt_csv_options *o,
                         int fast) {
  outcome r = {0};
  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err = {0};
  pt__csv_fast_records = fast;
  r.rc = pt__csv_read_from(d, len, 0, end, 1, "t.csv", o, &s, &a, &r.next, &r.next_line, &err);
  pt__csv_fast_records = 1;
  snprintf(r.message, sizeof r.message, "%s", err.message);
  if (r.rc != PT_OK) return r;
  assert_int_equal(pt_array_validate(&s, &a, &err), PT_OK);
  pt_buf buf = {0};
  assert_int_equal(pt_json_write_batch(&s, &a, &buf, &err), PT_OK);
  r.json = calloc(1, buf.len + 1);
  assert_non_null(r.json);
  if (buf.len) memcpy(r.json, buf.data, buf.len);
  pt_buf_free(&buf);
  a.release(&a);
  s.release(&s);
  return r;
}

static void test_fast_matches_general(void **state) {
  (void)state;
  static const char *const pieces[] = {
      "abc", "12", "-1.5", "2024-01-02", "x", ",", ",", ",", "\n", "\n", "\r\n", "\r",
      "\"q,x\"", "\"\"", "\"a\"\"b\"", "\"", "x\"y", "\"a\nb\"", "\"t\"z", "\"ok\"",
      "\"long quoted text that spans more than one block of sixty-four bytes, with a , in\"",
      "a field well over sixty-four bytes long without any quote or delimiter in it at all",
      "\"\r\"", "\\", "\\\"", "\t", ";"};
  const int npieces = (int)(sizeof pieces / sizeof pieces[0]);
  char text[2048];
  int64_t rows_total = 0;
  for (int k = 0; k < 20000; k++) {
    int64_t len = 0;
    int n = (int)(rnd() % 40);
    for (int i = 0; i < n; i++) {
      const char *p = pieces[rnd() % (uint64_t)npieces];
      size_t pl = strlen(p);
      if (len + (int64_t)pl >= (int64_t)sizeof text) break;
      memcpy(text + len, p, pl);
      len += (int64_t)pl;
    }
    pt_csv_options o;
    pt_csv_options_init(&o);
    o.header = (int)(rnd() % 2);
    o.mode = (pt_csv_mode)(rnd() % 3);
    if (o.mode == PT_CSV_PERMISSIVE && rnd() % 2) o.corrupt_column = "_corrupt";
    switch (rnd() % 6) {
    case 0: o.delimiter = ';'; break;
    case 1: o.delimiter = '\t'; break;
    case 2: o.quote = 0; break;
    case 3: o.escape = '\\'; break;
    default: break;
    }
    int align = (int)(rnd() % 8);
    char *block = malloc((size_t)(align + len) + 1); /* owned here; +1: len may be 0 */
    assert_non_null(block);
    char *d = block + align;
    memcpy(d, text, (size_t)len);
    /* Move the text to end where the block ends. */
    char *at_end = block + 1 + align;
    memmove(at_end, d, (size_t)len);
    int64_t end = rnd() % 4 == 0 ? (int64_t)(rnd() % (uint64_t)(len + 1)) : len;
    outcome fast = read_once(at_end, len, end, &o, 1), general = read_once(at_end, len, end, &o, 0);
    if (fast.rc != general.rc || strcmp(fast.message, general.message) != 0 ||
        (fast.json && strcmp(fast.json, general.json) != 0) ||
        (fast.rc == PT_OK && (fast.next != general.next || fast.next_line != general.next_line))) {
      fprintf(stderr, "case %d: text '%.*s'\nfast: %d %s\n%s\ngeneral: %d %s\n%s\n", k, (int)len,
              at_end, fast.rc, fast.message, fast.json ? fast.json : "", general.rc,
              general.message, general.json ? general.json : "");
      fail();
    }
    if (fast.json)
      for (const char *c = fast.json; *c; c++) rows_total += *c == '\n';
    free(fast.json);
    free(general.json);
    free(block);
  }
  assert_true(rows_total > 20000); /* the cases held rows, not only errors */
}

/* Records short of fields after a first record of 40 string fields (more
 * than the record's first field array holds): the missing fields read as
 * null in PERMISSIVE mode, with no read of a field that is not there. */
static void test_short_records_many_columns(void **state) {
  (void)state;
  char text[8192];
  int64_t len = 0;
  for (int k = 1; k <= 40; k++) {
    for (int f = 0; f < (k == 1 ? 40 : k); f++)
      len += snprintf(text + len, sizeof text - (size_t)len, "%ss%d", f ? "," : "", f);
    text[len++] = '\n';
  }
  char *block = malloc((size_t)len); /* owned here */
  assert_non_null(block);
  memcpy(block, text, (size_t)len);
  pt_csv_options o;
  pt_csv_options_init(&o);
  o.mode = PT_CSV_PERMISSIVE;
  /* The schema of the whole text, given to a read of the short records
   * alone, as the engine's later chunks get it. */
  struct ArrowSchema schema;
  struct ArrowArray a;
  pt_error err = {0};
  assert_int_equal(pt_csv_read(block, len, 0, len, "t.csv", &o, &schema, &a, &err), PT_OK);
  a.release(&a);
  assert_int_equal(schema.n_children, 40);
  o.schema = &schema;
  const char *rest = memchr(block, '\n', (size_t)len) + 1;
  int64_t n = len - (rest - block);
  outcome fast = read_once(rest, n, n, &o, 1), general = read_once(rest, n, n, &o, 0);
  assert_int_equal(fast.rc, PT_OK);
  assert_int_equal(general.rc, PT_OK);
  assert_string_equal(fast.json, general.json);
  assert_int_equal(fast.next, n);
  free(fast.json);
  free(general.json);
  schema.release(&schema);
  free(block);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_fast_matches_general),
                                     cmocka_unit_test(test_short_records_many_columns)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
