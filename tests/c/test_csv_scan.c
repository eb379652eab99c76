/* test_csv_scan.c — the record-start scan's ways of making its 64-byte
 * masks (a byte at a time, SSE2, AVX2, AVX-512BW: those this CPU has) give
 * the same starts, lines and cuts on random CSV at every alignment. */
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
 * starts and lines at a few thread counts. */
typedef struct found {
  int64_t *start, *line, *cut, *cut_line;
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
          if (got.start[k] != want.start[k] || got.line[k] != want.line[k])
            fail_msg("round %d align %d level %d target %lld: start %lld line %lld, want "
                     "%lld line %lld",
                     r, a, l, (long long)tg[k], (long long)got.start[k], (long long)got.line[k],
                     (long long)want.start[k], (long long)want.line[k]);
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
  }
  free(area);
  free(text);
  free(tg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_levels_agree),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
