/* test_csv_engine.c — CSV datasets on the local engine, with real executor
 * processes: pt_read_csv cuts files at record starts (quoted newlines
 * included) into partitions that together hold every record exactly once,
 * skips each file's header only where the file starts, names file and line
 * of a malformed record in any partition; pt_write_csv commits one file per
 * partition exactly once, also when a task attempt fails, and the files read
 * back as the same rows; count() of a PERMISSIVE read counts records
 * without a parse.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "protium.h"
#include "test_util.h"

#define ROWS 5000

static pt_session *S;
static char DIR_[256];
static char BIG[512];  /* one file of ROWS records, a header and quoted newlines */

/* Row i: id, a name (every 7th spans two lines, every 11th holds a doubled
 * quote and a comma), a score and a day. */
static void put_row(FILE *f, int64_t i) {
  fprintf(f, "%lld,", (long long)i);
  if (i % 7 == 0) fprintf(f, "\"n%lld\nsecond line\",", (long long)i);
  else if (i % 11 == 0) fprintf(f, "\"n%lld \"\"q\"\", c\",", (long long)i);
  else fprintf(f, "n%lld,", (long long)i);
  fprintf(f, "%.1f,2024-01-%02d\n", (double)i * 0.5, (int)(i % 28) + 1);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int setup(void **state) {
  (void)state;
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(DIR_, sizeof DIR_, "%s/pt-csv-engine-XXXXXX", tmp);
  if (mkdtemp(DIR_) == NULL) return -1;
  snprintf(BIG, sizeof BIG, "%s/big.csv", DIR_);
  FILE *f = fopen(BIG, "w");
  if (!f) return -1;
  fputs("id,name,score,day\n", f);
  for (int64_t i = 0; i < ROWS; i++) put_row(f, i);
  fclose(f);
  /* About 150 KB of text in partitions of ~20 KB: several cuts land inside
   * quoted fields. */
  const char *kv[] = {"csv.partition_bytes", "20000"};
  S = pt_test_session("local[2]", kv, 2);
  return S ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  pt_session_close(S);
  pt__rm_rf(DIR_);
  return 0;
}

/* Every row of ds checked against put_row's values; each id seen once. */
static void check_rows(pt_dataset *ds, int64_t n_rows) {
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  struct ArrowSchema schema;
  assert_int_equal(st.get_schema(&st, &schema), 0);
  char tn[256];
  pt_type_name(&schema, tn, sizeof tn);
  assert_string_equal(tn, "struct<id: int64, name: utf8, score: float64, day: date32>");
  uint8_t *seen = calloc((size_t)n_rows, 1);
  int64_t total = 0;
  struct ArrowArray b;
  while (st.get_next(&st, &b) == 0 && b.release) {
    const int64_t *id = (const int64_t *)b.children[0]->buffers[1] + b.children[0]->offset;
    const int32_t *off = (const int32_t *)b.children[1]->buffers[1] + b.children[1]->offset;
    const char *txt = b.children[1]->buffers[2];
    const double *score = (const double *)b.children[2]->buffers[1] + b.children[2]->offset;
    const int32_t *day = (const int32_t *)b.children[3]->buffers[1] + b.children[3]->offset;
    for (int64_t r = 0; r < b.length; r++) {
      int64_t i = id[r];
      assert_true(i >= 0 && i < n_rows);
      assert_int_equal(seen[i], 0);
      seen[i] = 1;
      char want[64];
      if (i % 7 == 0) snprintf(want, sizeof want, "n%lld\nsecond line", (long long)i);
      else if (i % 11 == 0) snprintf(want, sizeof want, "n%lld \"q\", c", (long long)i);
      else snprintf(want, sizeof want, "n%lld", (long long)i);
      assert_int_equal(off[r + 1] - off[r], (int32_t)strlen(want));
      assert_memory_equal(txt + off[r], want, strlen(want));
      assert_true(score[r] == (double)i * 0.5);
      assert_int_equal(day[r], 19723 + (int32_t)(i % 28)); /* 2024-01-01 is day 19723 */
    }
    total += b.length;
    b.release(&b);
  }
  assert_int_equal(total, n_rows);
  free(seen);
  schema.release(&schema);
  st.release(&st);
}

static void test_split_at_record_starts(void **state) {
  (void)state;
  pt_csv_options o;
  pt_csv_options_init(&o);
  o.header = 1;
  pt_dataset *ds;
  CHECK(pt_read_csv(S, BIG, &o, &ds, &err));
  struct stat sb;
  assert_int_equal(stat(BIG, &sb), 0);
  /* At most ~20 KB each, as many as that takes rounded up to a multiple of
   * the 2 slots (equal ranges: no short last one). */
  int64_t np = pt_dataset_num_partitions(ds);
  assert_true(np >= sb.st_size / 20000 && np <= sb.st_size / 20000 + 2);
  int64_t n;
  CHECK(pt_count(ds, &n, &err));
  assert_int_equal(n, ROWS);
  check_rows(ds, ROWS);
  pt_dataset_free(ds);
}

static void test_files_share_partitions_headers_skipped(void **state) {
  (void)state;
  char dir[600], path[700];
  snprintf(dir, sizeof dir, "%s/many", DIR_);
  pt_error e;
  assert_int_equal(pt__mkdirs(dir, &e), PT_OK);
  /* 10 files of 100 rows (~3 KB each): each has its header, and about six
   * share a 20 KB partition. */
  for (int k = 0; k < 10; k++) {
    snprintf(path, sizeof path, "%s/part-%02d.csv", dir, k);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("id,name,score,day\n", f);
    for (int64_t i = k * 100; i < (k + 1) * 100; i++) put_row(f, i);
    fclose(f);
  }
  snprintf(path, sizeof path, "%s/_ignored.csv", dir);
  write_text(path, "not,a,csv,file\n");
  pt_csv_options o;
  pt_csv_options_init(&o);
  o.header = 1;
  pt_dataset *ds;
  CHECK(pt_read_csv(S, dir, &o, &ds, &err));
  assert_true(pt_dataset_num_partitions(ds) >= 2 && pt_dataset_num_partitions(ds) <= 3);
  check_rows(ds, 1000);
  pt_dataset_free(ds);
}

static void test_failfast_names_file_and_line(void **state) {
  (void)state;
  char path[600];
  snprintf(path, sizeof path, "%s/bad.csv", DIR_);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("id,name,score,day\n", f);
  /* Line numbers: the header is line 1; quoted newlines count as lines. */
  long long line = 2, bad_line = 0;
  for (int64_t i = 0; i < 3000; i++) {
    if (i == 2500) {
      bad_line = line;
      fputs("2500,bad,zz,2024-01-01\n", f);
      line += 1;
    } else {
      put_row(f, i);
      line += i % 7 == 0 ? 2 : 1;
    }
  }
  fclose(f);
  pt_csv_options o;
  pt_csv_options_init(&o);
  o.header = 1;
  pt_dataset *ds;
  CHECK(pt_read_csv(S, path, &o, &ds, &err));
  assert_true(pt_dataset_num_partitions(ds) > 2);
  int64_t n;
  pt_error err = {0};
  /* A value that does not convert fails what converts it (collect), not
   * a count, which checks each record's structure only. */
  CHECK(pt_count(ds, &n, &err));
  assert_int_equal(n, 3000);
  struct ArrowArrayStream failed;
  assert_int_equal(pt_collect(ds, &failed, &err), PT_EFORMAT);
  char want[900];
  snprintf(want, sizeof want,
           "read_csv: csv: %s: line %lld: malformed record: column 2 (score): cannot read 'zz' "
           "as float64; fix the file or read with mode DROPMALFORMED or PERMISSIVE", path,
           bad_line);
  if (!strstr(err.message, want)) fail_msg("got: %s\nwant: %s", err.message, want);
  pt_dataset_free(ds);

  /* A record of the wrong shape fails the count too, naming its line. */
  char shape[600];
  snprintf(shape, sizeof shape, "%s/shape.csv", DIR_);
  f = fopen(shape, "w");
  assert_non_null(f);
  fputs("id,name,score,day\n", f);
  line = 2;
  for (int64_t i = 0; i < 3000; i++) {
    if (i == 2500) {
      bad_line = line;
      fputs("2500,\"two\nlines\",1.5\n", f);
      line += 2;
    } else {
      put_row(f, i);
      line += i % 7 == 0 ? 2 : 1;
    }
  }
  fclose(f);
  CHECK(pt_read_csv(S, shape, &o, &ds, &err));
  assert_true(pt_dataset_num_partitions(ds) > 2);
  assert_int_equal(pt_count(ds, &n, &err), PT_EFORMAT);
  snprintf(want, sizeof want,
           "read_csv: csv: %s: line %lld: malformed record: 3 fields, the schema has 4; fix the "
           "file or read with mode DROPMALFORMED or PERMISSIVE", shape, bad_line);
  if (!strstr(err.message, want)) fail_msg("got: %s\nwant: %s", err.message, want);
  pt_dataset_free(ds);

  /* DROPMALFORMED skips it; PERMISSIVE keeps it, its text in the corrupt
   * column. */
  o.mode = PT_CSV_DROPMALFORMED;
  CHECK(pt_read_csv(S, path, &o, &ds, &err));
  CHECK(pt_count(ds, &n, &err));
  assert_int_equal(n, 2999);
  pt_dataset_free(ds);
  o.mode = PT_CSV_PERMISSIVE;
  o.corrupt_column = "_corrupt_record";
  CHECK(pt_read_csv(S, path, &o, &ds, &err));
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  struct ArrowSchema sch;
  assert_int_equal(st.get_schema(&st, &sch), 0);
  struct ArrowArray b;
  int64_t rows = 0, corrupt = 0;
  while (st.get_next(&st, &b) == 0 && b.release) {
    assert_int_equal(b.n_children, 5);
    const struct ArrowArray *c = b.children[4];
    const int32_t *off = (const int32_t *)c->buffers[1] + c->offset;
    for (int64_t r = 0; r < b.length; r++)
      if (pt_array_is_valid(sch.children[4], c, r)) {
        corrupt++;
        assert_int_equal(off[r + 1] - off[r], 22);
        assert_memory_equal((const char *)c->buffers[2] + off[r], "2500,bad,zz,2024-01-01", 22);
      }
    rows += b.length;
    b.release(&b);
  }
  st.release(&st);
  sch.release(&sch);
  assert_int_equal(rows, 3000);
  assert_int_equal(corrupt, 1);
  pt_dataset_free(ds);
}

static void test_bad_paths_and_options(void **state) {
  (void)state;
  pt_dataset *ds = NULL;
  pt_error err = {0};
  char path[600];
  snprintf(path, sizeof path, "%s/missing.csv", DIR_);
  assert_int_equal(pt_read_csv(S, path, NULL, &ds, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "does not exist"));
  snprintf(path, sizeof path, "%s/empty.csv", DIR_);
  write_text(path, "");
  assert_int_equal(pt_read_csv(S, path, NULL, &ds, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "give a schema"));
  pt_csv_options o;
  pt_csv_options_init(&o);
  o.delimiter = '"';
  assert_int_equal(pt_read_csv(S, BIG, &o, &ds, &err), PT_EINVAL);
  assert_null(ds);
  /* An empty file with a schema is an empty dataset. */
  struct ArrowSchema schema;
  CHECK(pt_schema_init(&schema, "+s", "", 0, 1, &err));
  CHECK(pt_schema_init(schema.children[0], "l", "x", ARROW_FLAG_NULLABLE, 0, &err));
  pt_csv_options_init(&o);
  o.schema = &schema;
  snprintf(path, sizeof path, "%s/empty.csv", DIR_);
  CHECK(pt_read_csv(S, path, &o, &ds, &err));
  schema.release(&schema);
  int64_t n = -1;
  CHECK(pt_count(ds, &n, &err));
  assert_int_equal(n, 0);
  pt_dataset_free(ds);
}

/* Fails the first attempt of partition 1 after it has written rows: the
 * retry's file, not the failed one's, must be committed. */
static int fail_once(const pt_task_context *ctx, const struct ArrowSchema *schema,
                     const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                     size_t arg_size, pt_error *err) {
  (void)schema, (void)arg, (void)arg_size;
  if (pt_ctx_partition_id(ctx) == 1 && pt_ctx_task_attempt(ctx) == 0) {
    snprintf(err->message, sizeof err->message, "injected failure");
    return err->code = PT_EIO;
  }
  return pt_array_copy(schema, batch, out, err);
}
PT_REGISTER_FN(fail_once)

static void test_write_round_trip_exactly_once(void **state) {
  (void)state;
  pt_csv_options o;
  pt_csv_options_init(&o);
  o.header = 1;
  pt_dataset *ds, *mapped, *back;
  CHECK(pt_read_csv(S, BIG, &o, &ds, &err));
  CHECK(pt_map_batches(ds, fail_once, NULL, NULL, 0, &mapped, &err));
  char out[600];
  snprintf(out, sizeof out, "%s/written", DIR_);
  CHECK(pt_write_csv(mapped, out, NULL, &err));
  pt_job_stats *js;
  CHECK(pt_dataset_last_job(mapped, &js, &err));
  pt_stage_stats tot;
  pt_job_stats_total(js, &tot);
  assert_int_equal(tot.tasks_failed, 1);
  assert_int_equal(tot.rows_written, ROWS);
  pt_job_stats_free(js);
  /* One file per partition, then _SUCCESS; nothing else. */
  int64_t np = pt_dataset_num_partitions(mapped), files = 0;
  DIR *d = opendir(out);
  assert_non_null(d);
  struct dirent *e;
  int success = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    if (strcmp(e->d_name, "_SUCCESS") == 0) success = 1;
    else {
      assert_int_equal(strncmp(e->d_name, "part-", 5), 0);
      assert_non_null(strstr(e->d_name, ".csv"));
      files++;
    }
  }
  closedir(d);
  assert_true(success);
  assert_int_equal(files, np);
  CHECK(pt_read_csv(S, out, &o, &back, &err));
  check_rows(back, ROWS);
  pt_dataset_free(back);

  /* Again into the same, now full, directory: refused, nothing touched. */
  pt_error err = {0};
  assert_int_equal(pt_write_csv(mapped, out, NULL, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "is not empty"));
  pt_dataset_free(mapped);
  pt_dataset_free(ds);
}

static void test_write_refuses_types_before_running(void **state) {
  (void)state;
  struct ArrowSchema schema;
  CHECK(pt_schema_init(&schema, "+s", "", 0, 1, &err));
  CHECK(pt_schema_init(schema.children[0], "+l", "xs", ARROW_FLAG_NULLABLE, 1, &err));
  CHECK(pt_schema_init(schema.children[0]->children[0], "l", "item", ARROW_FLAG_NULLABLE, 0, &err));
  pt_dataset *ds;
  CHECK(pt_from_batches(S, &schema, NULL, 0, &ds, &err));
  schema.release(&schema);
  char out[600];
  snprintf(out, sizeof out, "%s/refused", DIR_);
  pt_error err = {0};
  assert_int_equal(pt_write_csv(ds, out, NULL, &err), PT_ENOTSUP);
  assert_string_equal(err.message,
                      "write_csv: csv: write: column 0 (xs) is list<int64>, which CSV does "
                      "not carry; cast it to a string first");
  struct stat sb;
  assert_int_not_equal(stat(out, &sb), 0);
  pt_dataset_free(ds);
}

/* The rows pt_collect gives. */
static int64_t collected_rows(pt_dataset *ds) {
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  int64_t total = 0;
  struct ArrowArray b;
  while (st.get_next(&st, &b) == 0 && b.release) {
    total += b.length;
    b.release(&b);
  }
  st.release(&st);
  return total;
}

/* count() of a PERMISSIVE read counts records without parsing them: the
 * big file cut into many ranges, and a directory whose files hold
 * malformed records, blank lines (no records), CRLF and no final
 * newline, give the rows a collect gives. FAILFAST fails on them. */
static void test_permissive_count_counts_records(void **state) {
  (void)state;
  pt_csv_options o;
  pt_csv_options_init(&o);
  o.header = 1;
  o.mode = PT_CSV_PERMISSIVE;
  pt_dataset *ds;
  CHECK(pt_read_csv(S, BIG, &o, &ds, &err));
  assert_true(pt_dataset_num_partitions(ds) > 4);
  int64_t n;
  CHECK(pt_count(ds, &n, &err));
  assert_int_equal(n, ROWS);
  pt_dataset_free(ds);

  char dir[600], path[700];
  snprintf(dir, sizeof dir, "%s/permissive", DIR_);
  assert_int_equal(mkdir(dir, 0700), 0);
  snprintf(path, sizeof path, "%s/a.csv", dir);
  write_text(path, "k,v\n1,\"x\ny\"\n2,oops,extra\n\n3\r\n\"4\",\"a\"\"b\"\n5,z");
  snprintf(path, sizeof path, "%s/b.csv", dir);
  write_text(path, "k,v\r\n6,\"\r\n\"\r\n\r\n7,w\n");
  CHECK(pt_read_csv(S, dir, &o, &ds, &err));
  CHECK(pt_count(ds, &n, &err));
  assert_int_equal(n, 7); /* a.csv: 5 records and a blank line, b.csv: 2 and one */
  assert_int_equal(collected_rows(ds), n);
  pt_dataset_free(ds);
  o.mode = PT_CSV_FAILFAST;
  CHECK(pt_read_csv(S, dir, &o, &ds, &err));
  pt_error err = {0};
  assert_int_equal(pt_count(ds, &n, &err), PT_EFORMAT);
  assert_non_null(strstr(err.message, ": line 4: malformed record: "));
  pt_dataset_free(ds);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_split_at_record_starts),
      cmocka_unit_test(test_files_share_partitions_headers_skipped),
      cmocka_unit_test(test_failfast_names_file_and_line),
      cmocka_unit_test(test_bad_paths_and_options),
      cmocka_unit_test(test_write_round_trip_exactly_once),
      cmocka_unit_test(test_write_refuses_types_before_running),
      cmocka_unit_test(test_permissive_count_counts_records),
  };
  return cmocka_run_group_tests_name("csv_engine", tests, setup, teardown);
}
