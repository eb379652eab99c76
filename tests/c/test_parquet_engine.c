/* test_parquet_engine.c — Parquet datasets on the local engine, with real
 * executor processes (this program, re-run by the session): pt_read_parquet
 * partitions by row group (small files together, big files split), applies
 * projection and filters when planning, and counts and collects exact rows;
 * pt_write_parquet commits one file per partition that reads back whole,
 * in each save mode on a directory with files and on a missing one;
 * mismatched schemas and bad paths fail with clear messages; the tasks'
 * writers make the same bytes on any number of encoding threads, and their
 * readers the same rows on any number of decoding threads; the sizing rule
 * shared with read_delta and read_csv gives the partition counts it should.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/api_int.h"
#include "core/core.h"
#include "protium.h"

#define CHECK(call)                                                                    \
  do {                                                                                 \
    pt_error err = {0};                                                                \
    int chk_rc_ = (call);                                                              \
    if (chk_rc_ != PT_OK) fail_msg("%s: %s (%d)", #call, err.message, chk_rc_);        \
  } while (0)

static pt_session *S;
static char DIR_[256];

/* struct<id: int64 not null, name: utf8> with ids [from, from + n); md
 * non-NULL: the footer's pair written_in=md too. */
static void write_file_md(const char *path, int64_t from, int64_t n, int64_t rg_rows,
                          int with_name, const char *md) {
  struct ArrowSchema schema;
  CHECK(pt_schema_init(&schema, "+s", "", 0, with_name ? 2 : 1, &err));
  CHECK(pt_schema_init(schema.children[0], "l", "id", 0, 0, &err));
  if (with_name) CHECK(pt_schema_init(schema.children[1], "u", "name", ARROW_FLAG_NULLABLE, 0, &err));
  pt_builder *b;
  CHECK(pt_builder_new(&schema, &b, &err));
  for (int64_t i = from; i < from + n; i++) {
    assert_int_equal(pt_builder_append_int(pt_builder_child(b, 0), i), PT_OK);
    if (with_name) {
      char s[32];
      int len = snprintf(s, sizeof s, "n%lld", (long long)i);
      assert_int_equal(pt_builder_append_bytes(pt_builder_child(b, 1), s, len), PT_OK);
    }
    assert_int_equal(pt_builder_append_row(b), PT_OK);
  }
  struct ArrowArray batch;
  CHECK(pt_builder_finish(b, &batch, &err));
  pt_parquet_write_options o;
  pt_parquet_write_options_init(&o);
  o.row_group_rows = rg_rows;
  const char *md_key = "written_in";
  if (md) {
    o.metadata_keys = &md_key;
    o.metadata_values = &md;
    o.n_metadata = 1;
  }
  pt_parquet_writer *w;
  CHECK(pt_parquet_writer_open_path(path, &schema, &o, &w, &err));
  CHECK(pt_parquet_writer_write(w, &batch, &err));
  CHECK(pt_parquet_writer_close(w, &err));
  pt_parquet_writer_free(w);
  batch.release(&batch);
  pt_builder_free(b);
  schema.release(&schema);
}

static void write_file(const char *path, int64_t from, int64_t n, int64_t rg_rows, int with_name) {
  write_file_md(path, from, n, rg_rows, with_name, NULL);
}

/* schema's metadata is one pair, written_in=value. */
static void assert_written_in(const struct ArrowSchema *schema, const char *value) {
  assert_non_null(schema->metadata);
  int32_t n, kl, vl;
  memcpy(&n, schema->metadata, 4);
  assert_int_equal(n, 1);
  memcpy(&kl, schema->metadata + 4, 4);
  assert_int_equal(kl, 10);
  assert_memory_equal(schema->metadata + 8, "written_in", 10);
  memcpy(&vl, schema->metadata + 18, 4);
  assert_int_equal(vl, (int32_t)strlen(value));
  assert_memory_equal(schema->metadata + 22, value, strlen(value));
}

static int setup(void **state) {
  snprintf(DIR_, sizeof DIR_, "%s/pt-pq-engine-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (mkdtemp(DIR_) == NULL) return -1;
  char path[512];
  /* Three small files (2 row groups of 500 rows each), one big one (20 row
   * groups of 500). */
  for (int f = 0; f < 3; f++) {
    snprintf(path, sizeof path, "%s/in/small-%d.parquet", DIR_, f);
    char dir[400];
    snprintf(dir, sizeof dir, "%s/in", DIR_);
    pt_error e;
    if (pt__mkdirs(dir, &e) != PT_OK) return -1;
    write_file(path, f * 1000, 1000, 500, 1);
  }
  snprintf(path, sizeof path, "%s/in/big.parquet", DIR_);
  write_file(path, 3000, 10000, 500, 1);
  pt_conf *conf;
  pt_error err;
  if (pt_conf_new(&conf, &err) != PT_OK) return -1;
  /* Small partitions: about four row groups of ~8 KB each. */
  if (pt_conf_set(conf, "parquet.partition_bytes", "30000", &err) != PT_OK) return -1;
  int rc = pt_session_open("local[2]", conf, &S, &err);
  pt_conf_free(conf);
  if (rc != PT_OK) fprintf(stderr, "%s\n", err.message);
  return rc == PT_OK ? 0 : -1;
}

static int teardown(void **state) {
  pt_session_close(S);
  pt__rm_rf(DIR_);
  return 0;
}

/* Sums the ids of everything collected; *rows = their number. */
static int64_t collect_sum(pt_dataset *ds, int64_t *rows) {
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  int64_t sum = 0;
  *rows = 0;
  struct ArrowArray a;
  while (st.get_next(&st, &a) == 0 && a.release) {
    const struct ArrowArray *id = a.children[0];
    const int64_t *v = (const int64_t *)id->buffers[1] + id->offset + a.offset;
    for (int64_t i = 0; i < a.length; i++) sum += v[i];
    *rows += a.length;
    a.release(&a);
  }
  assert_null(st.get_last_error(&st));
  st.release(&st);
  return sum;
}

static void test_read_partitions_and_count(void **state) {
  char in[400];
  snprintf(in, sizeof in, "%s/in", DIR_);
  pt_dataset *ds;
  CHECK(pt_read_parquet(S, in, NULL, &ds, &err));
  /* 26 row groups of ~7-8 KB in partitions of ~30 KB: more than one
   * partition, fewer than the row groups; small files share. */
  int64_t parts = pt_dataset_num_partitions(ds);
  assert_true(parts > 3 && parts < 26);
  int64_t count;
  CHECK(pt_count(ds, &count, &err));
  assert_int_equal(count, 13000);
  int64_t rows;
  assert_int_equal(collect_sum(ds, &rows), (int64_t)13000 * 12999 / 2);
  assert_int_equal(rows, 13000);
  pt_dataset_free(ds);
}

static void test_projection_and_filter(void **state) {
  char in[400];
  snprintf(in, sizeof in, "%s/in/*.parquet", DIR_);
  const char *cols[] = {"id"};
  pt_parquet_read_options o;
  pt_parquet_read_options_init(&o);
  o.columns = cols;
  o.n_columns = 1;
  int64_t lo = 12000;
  pt_parquet_filter *f;
  CHECK(pt_parquet_filter_int("id", PT_PARQUET_GE, &lo, 1, &f, &err));
  o.filter = f;
  pt_dataset *ds;
  CHECK(pt_read_parquet(S, in, &o, &ds, &err));
  pt_parquet_filter_free(f);
  struct ArrowSchema schema;
  CHECK(pt_dataset_schema(ds, &schema, &err));
  assert_int_equal(schema.n_children, 1);
  assert_string_equal(schema.children[0]->name, "id");
  schema.release(&schema);
  /* Only the big file's last two row groups (ids 12000..12999) may match. */
  int64_t count;
  CHECK(pt_count(ds, &count, &err));
  assert_int_equal(count, 1000);
  pt_dataset_free(ds);
}

/* The read's filter reaches the tasks: within the row groups they read,
 * the page index passes over the pages that cannot match (counted in the
 * job's stats), and every matching row is still there. */
static void test_filter_skips_pages_in_tasks(void **state) {
  char path[512];
  snprintf(path, sizeof path, "%s/pages/one.parquet", DIR_);
  char dir[400];
  snprintf(dir, sizeof dir, "%s/pages", DIR_);
  CHECK(pt__mkdirs(dir, &err));
  /* 40000 sorted ids in two row groups of 20000, pages of 4 KiB (~500
   * values of id). */
  struct ArrowSchema schema;
  CHECK(pt_schema_init(&schema, "+s", "", 0, 2, &err));
  CHECK(pt_schema_init(schema.children[0], "l", "id", 0, 0, &err));
  CHECK(pt_schema_init(schema.children[1], "g", "x", ARROW_FLAG_NULLABLE, 0, &err));
  pt_builder *b;
  CHECK(pt_builder_new(&schema, &b, &err));
  for (int64_t i = 0; i < 40000; i++) {
    assert_int_equal(pt_builder_append_int(pt_builder_child(b, 0), i), PT_OK);
    assert_int_equal(pt_builder_append_double(pt_builder_child(b, 1), (double)i / 2), PT_OK);
    assert_int_equal(pt_builder_append_row(b), PT_OK);
  }
  struct ArrowArray batch;
  CHECK(pt_builder_finish(b, &batch, &err));
  pt_parquet_write_options wo;
  pt_parquet_write_options_init(&wo);
  wo.row_group_rows = 20000;
  wo.page_bytes = 4096;
  wo.use_dictionary = 0;
  pt_parquet_writer *w;
  CHECK(pt_parquet_writer_open_path(path, &schema, &wo, &w, &err));
  CHECK(pt_parquet_writer_write(w, &batch, &err));
  CHECK(pt_parquet_writer_close(w, &err));
  pt_parquet_writer_free(w);
  batch.release(&batch);
  pt_builder_free(b);
  schema.release(&schema);

  /* id in [25000, 25100) OR id = 39999: the first row group is pruned when
   * planning, in the second a few pages of each column are decoded. */
  int64_t lo = 25000, hi = 25100, last = 39999;
  pt_parquet_filter *a, *c, *range, *eq, *f;
  CHECK(pt_parquet_filter_int("id", PT_PARQUET_GE, &lo, 1, &a, &err));
  CHECK(pt_parquet_filter_int("id", PT_PARQUET_LT, &hi, 1, &c, &err));
  CHECK(pt_parquet_filter_combine(PT_PARQUET_AND, a, c, &range, &err));
  CHECK(pt_parquet_filter_int("id", PT_PARQUET_EQ, &last, 1, &eq, &err));
  CHECK(pt_parquet_filter_combine(PT_PARQUET_OR, range, eq, &f, &err));
  pt_parquet_read_options o;
  pt_parquet_read_options_init(&o);
  o.filter = f;
  pt_dataset *ds;
  CHECK(pt_read_parquet(S, path, &o, &ds, &err));
  pt_parquet_filter_free(f);
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  int64_t rows = 0, matching = 0, matching_sum = 0;
  struct ArrowArray arr;
  while (st.get_next(&st, &arr) == 0 && arr.release) {
    const struct ArrowArray *id = arr.children[0], *x = arr.children[1];
    for (int64_t i = 0; i < arr.length; i++) {
      int64_t v = ((const int64_t *)id->buffers[1])[id->offset + arr.offset + i];
      double d = ((const double *)x->buffers[1])[x->offset + arr.offset + i];
      assert_true(d == (double)v / 2); /* columns stay aligned */
      if ((v >= lo && v < hi) || v == last) {
        matching++;
        matching_sum += v;
      }
    }
    rows += arr.length;
    arr.release(&arr);
  }
  assert_null(st.get_last_error(&st));
  st.release(&st);
  assert_int_equal(matching, 101);
  assert_int_equal(matching_sum, (25000 + 25099) * 100 / 2 + 39999);
  /* Only the kept pages' rows come back: a few pages, not the row group. */
  assert_true(rows >= 101 && rows < 4000);
  pt_job_stats *js;
  CHECK(pt_dataset_last_job(ds, &js, &err));
  pt_stage_stats tot;
  pt_job_stats_total(js, &tot);
  pt_job_stats_free(js);
  assert_int_equal(tot.rows_read, rows);
  /* Two columns of about 20 pages each in the row group read: the pages
   * of [25000, 25100) and of 39999, in each column. */
  assert_true(tot.parquet_pages_read >= 4 && tot.parquet_pages_read <= 8);
  assert_true(tot.parquet_pages_skipped >= 30);
  pt_dataset_free(ds);

  /* Without a filter: every page, and the same matching rows. */
  CHECK(pt_read_parquet(S, path, NULL, &ds, &err));
  int64_t count;
  CHECK(pt_count(ds, &count, &err));
  assert_int_equal(count, 40000);
  CHECK(pt_dataset_last_job(ds, &js, &err));
  pt_job_stats_total(js, &tot);
  pt_job_stats_free(js);
  assert_int_equal(tot.parquet_pages_skipped, 0);
  assert_true(tot.parquet_pages_read >= 70);
  pt_dataset_free(ds);
}

static void test_write_and_read_back(void **state) {
  char in[400], out[400];
  snprintf(in, sizeof in, "%s/in", DIR_);
  snprintf(out, sizeof out, "%s/out", DIR_);
  pt_dataset *ds;
  CHECK(pt_read_parquet(S, in, NULL, &ds, &err));
  pt_parquet_write_options o;
  pt_parquet_write_options_init(&o);
  o.codec = PT_PARQUET_ZSTD;
  CHECK(pt_write_parquet(ds, out, &o, &err));
  int64_t parts = pt_dataset_num_partitions(ds);
  pt_dataset_free(ds);
  /* part-00000.parquet ... and _SUCCESS, nothing else. */
  DIR *d = opendir(out);
  assert_non_null(d);
  int files = 0, success = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    if (strcmp(e->d_name, "_SUCCESS") == 0) success = 1;
    else {
      assert_int_equal(strncmp(e->d_name, "part-", 5), 0);
      files++;
    }
  }
  closedir(d);
  assert_int_equal(success, 1);
  assert_int_equal(files, parts);
  CHECK(pt_read_parquet(S, out, NULL, &ds, &err));
  int64_t rows;
  assert_int_equal(collect_sum(ds, &rows), (int64_t)13000 * 12999 / 2);
  assert_int_equal(rows, 13000);
  pt_dataset_free(ds);
  /* Writing again into the same directory is refused. */
  CHECK(pt_read_parquet(S, in, NULL, &ds, &err));
  pt_error err;
  assert_int_equal(pt_write_parquet(ds, out, NULL, &err), PT_EINVAL);
  char want[600];
  snprintf(want, sizeof want,
           "write_parquet: directory '%s' is not empty; write to a new directory or empty it first",
           out);
  assert_string_equal(err.message, want);
  pt_dataset_free(ds);
}

static void test_errors(void **state) {
  pt_error err;
  pt_dataset *ds;
  char path[512];
  snprintf(path, sizeof path, "%s/nope", DIR_);
  assert_int_equal(pt_read_parquet(S, path, NULL, &ds, &err), PT_EINVAL);
  char want[700];
  snprintf(want, sizeof want, "read_parquet: '%s' does not exist", path);
  assert_string_equal(err.message, want);
  /* Files of two schemas. */
  snprintf(path, sizeof path, "%s/mixed", DIR_);
  assert_int_equal(pt__mkdirs(path, &err), PT_OK);
  char a[600], b[600];
  snprintf(a, sizeof a, "%s/a.parquet", path);
  snprintf(b, sizeof b, "%s/b.parquet", path);
  write_file(a, 0, 10, 10, 1);
  write_file(b, 0, 10, 10, 0);
  assert_int_equal(pt_read_parquet(S, path, NULL, &ds, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "all files must share one schema"));
  /* Not Parquet. */
  snprintf(a, sizeof a, "%s/bad/x.parquet", DIR_);
  snprintf(b, sizeof b, "%s/bad", DIR_);
  assert_int_equal(pt__mkdirs(b, &err), PT_OK);
  FILE *f = fopen(a, "wb");
  fputs("not parquet at all", f);
  fclose(f);
  assert_int_equal(pt_read_parquet(S, b, NULL, &ds, &err), PT_EFORMAT);
  snprintf(want, sizeof want, "read_parquet: parquet: %s: not a Parquet file: no PAR1 magic at the start", a);
  assert_string_equal(err.message, want);
}

/* The names in dir, sorted, each followed by ' ', into buf; how many. */
static int list_names(const char *dir, char *buf, size_t cap) {
  char *names[64];
  int n = 0;
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    assert_true(n < 64);
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  for (int i = 1; i < n; i++) /* a few names: insertion sort */
    for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      char *t = names[j];
      names[j] = names[j - 1];
      names[j - 1] = t;
    }
  buf[0] = '\0';
  for (int i = 0; i < n; i++) {
    assert_true(strlen(buf) + strlen(names[i]) + 2 <= cap);
    strcat(buf, names[i]);
    strcat(buf, " ");
    free(names[i]);
  }
  return n;
}

/* Writes ids [from, to) in parts partitions to dir in mode. */
static int write_range(const char *dir, int64_t from, int64_t to, int64_t parts, int mode,
                       pt_error *err) {
  pt_dataset *ds;
  CHECK(pt_range(S, from, to, parts, &ds, &err));
  pt_parquet_write_options o;
  pt_parquet_write_options_init(&o);
  o.mode = mode;
  int rc = pt_write_parquet(ds, dir, &o, err);
  pt_dataset_free(ds);
  return rc;
}

/* dir's rows as read back: their number and the sum of their ids. */
static int64_t read_back_sum(const char *dir, int64_t *rows) {
  pt_dataset *ds;
  CHECK(pt_read_parquet(S, dir, NULL, &ds, &err));
  int64_t sum = collect_sum(ds, rows);
  pt_dataset_free(ds);
  return sum;
}

/* The save modes (pt_write_mode) on a directory that holds a write's files
 * and on one that does not exist: the files each leaves and the rows they
 * read back as. */
static void test_write_modes(void **state) {
  const int modes[] = {PT_WRITE_ERROR, PT_WRITE_APPEND, PT_WRITE_OVERWRITE, PT_WRITE_IGNORE};
  const int64_t base_sum = 10 * 9 / 2, new_sum = (100 + 129) * 30 / 2;
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    char dir[400], names[2048], before[2048];
    pt_error err = {0};
    int64_t rows;
    /* A directory that does not exist: every mode writes it. */
    snprintf(dir, sizeof dir, "%s/modes-%d/new", DIR_, modes[m]);
    assert_int_equal(write_range(dir, 100, 130, 3, modes[m], &err), PT_OK);
    assert_int_equal(list_names(dir, names, sizeof names), 4);
    if (modes[m] == PT_WRITE_APPEND) {
      /* part-NNNNN-TOKEN.parquet: one token for the write's files. */
      assert_int_equal(strncmp(names, "_SUCCESS part-00000-", 20), 0);
      assert_non_null(strstr(names, ".parquet part-00002-"));
    } else {
      assert_string_equal(names, "_SUCCESS part-00000.parquet part-00001.parquet "
                                 "part-00002.parquet ");
    }
    assert_int_equal(read_back_sum(dir, &rows), new_sum);
    assert_int_equal(rows, 30);

    /* A directory that holds a write's files (ids 0..9, two files). */
    snprintf(dir, sizeof dir, "%s/modes-%d/old", DIR_, modes[m]);
    assert_int_equal(write_range(dir, 0, 10, 2, PT_WRITE_ERROR, &err), PT_OK);
    assert_int_equal(list_names(dir, before, sizeof before), 3);
    int rc = write_range(dir, 100, 130, 3, modes[m], &err);
    int n = list_names(dir, names, sizeof names);
    int64_t sum = read_back_sum(dir, &rows);
    switch (modes[m]) {
      case PT_WRITE_ERROR: {
        assert_int_equal(rc, PT_EINVAL);
        char want[600];
        snprintf(want, sizeof want,
                 "write_parquet: directory '%s' is not empty; write to a new directory or empty "
                 "it first", dir);
        assert_string_equal(err.message, want);
        assert_string_equal(names, before);
        assert_int_equal(sum, base_sum);
        assert_int_equal(rows, 10);
        break;
      }
      case PT_WRITE_IGNORE:
        assert_int_equal(rc, PT_OK);
        assert_string_equal(names, before);
        assert_int_equal(sum, base_sum);
        assert_int_equal(rows, 10);
        break;
      case PT_WRITE_APPEND:
        /* The old files as they were, three new ones beside them. */
        assert_int_equal(rc, PT_OK);
        assert_int_equal(n, 6);
        assert_non_null(strstr(names, "part-00000.parquet "));
        assert_non_null(strstr(names, "part-00001.parquet "));
        assert_int_equal(sum, base_sum + new_sum);
        assert_int_equal(rows, 40);
        break;
      case PT_WRITE_OVERWRITE:
        assert_int_equal(rc, PT_OK);
        assert_string_equal(names, "_SUCCESS part-00000.parquet part-00001.parquet "
                                   "part-00002.parquet ");
        assert_int_equal(sum, new_sum);
        assert_int_equal(rows, 30);
        break;
    }
  }
}

/* year=.../city=.../part.parquet: the keys become columns (year int32, city
 * utf8 with a null), every row of a file carries its directory's values;
 * the schema keeps the first file's schema metadata. */
static void test_hive_directories(void **state) {
  static const char *const dirs[] = {"year=2023/city=Paris", "year=2024/city=Lyon",
                                     "year=2024/city=__HIVE_DEFAULT_PARTITION__",
                                     "year=2025/city=S%C3%A8te"};
  char path[600];
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/hive/%s", DIR_, dirs[i]);
    pt_error e;
    assert_int_equal(pt__mkdirs(path, &e), PT_OK);
    snprintf(path, sizeof path, "%s/hive/%s/part-0.parquet", DIR_, dirs[i]);
    write_file_md(path, i * 100, 100, 50, 1, dirs[i]);
  }
  snprintf(path, sizeof path, "%s/hive/_SUCCESS", DIR_);
  FILE *f = fopen(path, "w");
  fclose(f);
  snprintf(path, sizeof path, "%s/hive", DIR_);
  pt_dataset *ds;
  CHECK(pt_read_parquet(S, path, NULL, &ds, &err));
  struct ArrowSchema schema;
  CHECK(pt_dataset_schema(ds, &schema, &err));
  char name[256];
  pt_type_name(&schema, name, sizeof name);
  assert_string_equal(name, "struct<id: int64, name: utf8, year: int32, city: utf8>");
  /* The schema metadata of the first file by path, as pyarrow.dataset
   * gives it: one pair, written_in=year=2023/city=Paris. */
  assert_written_in(&schema, dirs[0]);
  schema.release(&schema);
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  int64_t rows = 0, year_sum = 0, nulls = 0, sete = 0;
  struct ArrowArray a;
  while (st.get_next(&st, &a) == 0 && a.release) {
    const struct ArrowArray *id = a.children[0], *year = a.children[2], *city = a.children[3];
    for (int64_t i = 0; i < a.length; i++) {
      int64_t v = ((const int64_t *)id->buffers[1])[id->offset + i];
      int32_t y = ((const int32_t *)year->buffers[1])[year->offset + i];
      assert_int_equal(y, v < 100 ? 2023 : v < 300 ? 2024 : 2025);
      year_sum += y;
      int64_t j = city->offset + i;
      bool valid = city->buffers[0] == NULL || pt__bit_get(city->buffers[0], j);
      if (!valid) {
        assert_true(v >= 200 && v < 300);
        nulls++;
      } else if (v >= 300) {
        const int32_t *o = (const int32_t *)city->buffers[1];
        assert_int_equal(o[j + 1] - o[j], 5);
        assert_memory_equal((const char *)city->buffers[2] + o[j], "S\xc3\xa8te", 5);
        sete++;
      }
    }
    rows += a.length;
    a.release(&a);
  }
  assert_null(st.get_last_error(&st));
  st.release(&st);
  assert_int_equal(rows, 400);
  assert_int_equal(year_sum, 100 * 2023 + 200 * 2024 + 100 * 2025);
  assert_int_equal(nulls, 100);
  assert_int_equal(sete, 100);
  pt_dataset_free(ds);

  /* Filters on the keys prune whole directories: year >= 2024 AND city IS
   * NULL leaves one file; on a file column too (id < 250), statistics prune
   * within what is left. */
  int64_t y = 2024, lim = 250;
  pt_parquet_filter *fy, *fc, *ab, *fi, *abc;
  CHECK(pt_parquet_filter_int("year", PT_PARQUET_GE, &y, 1, &fy, &err));
  CHECK(pt_parquet_filter_is_null("city", &fc, &err));
  CHECK(pt_parquet_filter_combine(PT_PARQUET_AND, fy, fc, &ab, &err));
  pt_parquet_read_options o;
  pt_parquet_read_options_init(&o);
  o.filter = ab;
  CHECK(pt_read_parquet(S, path, &o, &ds, &err));
  int64_t count;
  CHECK(pt_count(ds, &count, &err));
  assert_int_equal(count, 100);
  pt_dataset_free(ds);
  CHECK(pt_parquet_filter_int("id", PT_PARQUET_LT, &lim, 1, &fi, &err));
  CHECK(pt_parquet_filter_combine(PT_PARQUET_AND, ab, fi, &abc, &err));
  o.filter = abc;
  CHECK(pt_read_parquet(S, path, &o, &ds, &err));
  CHECK(pt_count(ds, &count, &err));
  /* The keys decide their part of the filter per directory; what is left
   * (id < 250) prunes by statistics: the file's row group [250, 300) goes. */
  assert_int_equal(count, 50);
  pt_dataset_free(ds);
  const char *lyon = "Lyon";
  pt_parquet_filter *l;
  CHECK(pt_parquet_filter_bytes("city", PT_PARQUET_EQ, &lyon, NULL, 1, &l, &err));
  o.filter = l;
  CHECK(pt_read_parquet(S, path, &o, &ds, &err));
  CHECK(pt_count(ds, &count, &err));
  assert_int_equal(count, 100);
  pt_dataset_free(ds);
  pt_parquet_filter_free(abc);
  /* (year = 2023 AND id >= 50) OR (city = 'Lyon' AND id < 120): each
   * directory keeps the side its values allow, for its statistics: the
   * Paris file's row group [50, 100), the Lyon file's [100, 150). */
  int64_t y23 = 2023, fifty = 50, l120 = 120;
  pt_parquet_filter *p1, *p2, *p12, *l1, *l12, *both;
  CHECK(pt_parquet_filter_int("year", PT_PARQUET_EQ, &y23, 1, &p1, &err));
  CHECK(pt_parquet_filter_int("id", PT_PARQUET_GE, &fifty, 1, &p2, &err));
  CHECK(pt_parquet_filter_combine(PT_PARQUET_AND, p1, p2, &p12, &err));
  CHECK(pt_parquet_filter_int("id", PT_PARQUET_LT, &l120, 1, &l1, &err));
  CHECK(pt_parquet_filter_combine(PT_PARQUET_AND, l, l1, &l12, &err));
  CHECK(pt_parquet_filter_combine(PT_PARQUET_OR, p12, l12, &both, &err));
  o.filter = both;
  CHECK(pt_read_parquet(S, path, &o, &ds, &err));
  assert_int_equal(collect_sum(ds, &count), (50 + 99) * 50 / 2 + (100 + 149) * 50 / 2);
  assert_int_equal(count, 100);
  pt_dataset_free(ds);
  pt_parquet_filter_free(both);
}

/* A key that is __HIVE_DEFAULT_PARTITION__ in every directory is utf8, all
 * null (Spark: NullType, read as string), not a number. */
static void test_hive_all_null_key(void **state) {
  static const char *const dirs[] = {"a=1/tag=__HIVE_DEFAULT_PARTITION__",
                                     "a=2/tag=__HIVE_DEFAULT_PARTITION__"};
  char path[600];
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/hive_null/%s", DIR_, dirs[i]);
    pt_error e;
    assert_int_equal(pt__mkdirs(path, &e), PT_OK);
    snprintf(path, sizeof path, "%s/hive_null/%s/part-0.parquet", DIR_, dirs[i]);
    write_file(path, i * 10, 10, 10, 0);
  }
  snprintf(path, sizeof path, "%s/hive_null", DIR_);
  pt_dataset *ds;
  CHECK(pt_read_parquet(S, path, NULL, &ds, &err));
  struct ArrowSchema schema;
  CHECK(pt_dataset_schema(ds, &schema, &err));
  char name[256];
  pt_type_name(&schema, name, sizeof name);
  assert_string_equal(name, "struct<id: int64, a: int32, tag: utf8>");
  schema.release(&schema);
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  int64_t rows = 0, nulls = 0;
  struct ArrowArray a;
  while (st.get_next(&st, &a) == 0 && a.release) {
    rows += a.length;
    nulls += a.children[2]->null_count;
    a.release(&a);
  }
  assert_null(st.get_last_error(&st));
  st.release(&st);
  assert_int_equal(rows, 20);
  assert_int_equal(nulls, 20);
  pt_dataset_free(ds);
}

/* partition_by: the Hive directories read above written again by year and
 * city: one directory per pair (null as Hive's marker), files without those
 * columns, and the rows and schema metadata read back the same; wrong
 * columns fail at once. */
static void test_write_partition_by(void **state) {
  char in[600], out[600], path[900];
  snprintf(in, sizeof in, "%s/hive", DIR_);
  snprintf(out, sizeof out, "%s/hive-out", DIR_);
  pt_dataset *ds;
  CHECK(pt_read_parquet(S, in, NULL, &ds, &err));
  const char *keys[] = {"year", "city"};
  pt_parquet_write_options o;
  pt_parquet_write_options_init(&o);
  o.partition_by = keys;
  o.n_partition_by = 2;
  CHECK(pt_write_parquet(ds, out, &o, &err));
  static const char *const dirs[] = {"year=2023/city=Paris", "year=2024/city=Lyon",
                                     "year=2024/city=__HIVE_DEFAULT_PARTITION__",
                                     "year=2025/city=S\xc3\xa8te"};
  for (int i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/%s", out, dirs[i]);
    DIR *d = opendir(path);
    assert_non_null(d);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d)))
      if (e->d_name[0] != '.') {
        assert_int_equal(strncmp(e->d_name, "part-", 5), 0);
        files++;
        /* The file itself holds id and name only. */
        char file[1200];
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        struct ArrowArrayStream st;
        CHECK(pt_parquet_read_path(file, NULL, &st, &err));
        struct ArrowSchema fs;
        assert_int_equal(st.get_schema(&st, &fs), 0);
        char name[256];
        pt_type_name(&fs, name, sizeof name);
        assert_string_equal(name, "struct<id: int64, name: utf8>");
        fs.release(&fs);
        st.release(&st);
      }
    closedir(d);
    assert_true(files >= 1);
  }
  snprintf(path, sizeof path, "%s/_SUCCESS", out);
  assert_int_equal(access(path, F_OK), 0);
  snprintf(path, sizeof path, "%s/_temporary", out);
  assert_int_not_equal(access(path, F_OK), 0);
  pt_dataset_free(ds);

  CHECK(pt_read_parquet(S, out, NULL, &ds, &err));
  struct ArrowSchema schema;
  CHECK(pt_dataset_schema(ds, &schema, &err));
  char name[256];
  pt_type_name(&schema, name, sizeof name);
  assert_string_equal(name, "struct<id: int64, name: utf8, year: int32, city: utf8>");
  /* The input's schema metadata (its first file's) went into every file
   * written and comes back: one pair, written_in=year=2023/city=Paris. */
  assert_written_in(&schema, dirs[0]);
  schema.release(&schema);
  int64_t rows;
  assert_int_equal(collect_sum(ds, &rows), (int64_t)400 * 399 / 2);
  assert_int_equal(rows, 400);
  pt_dataset_free(ds);
  int64_t y = 2024, count;
  pt_parquet_filter *fy;
  CHECK(pt_parquet_filter_int("year", PT_PARQUET_EQ, &y, 1, &fy, &err));
  pt_parquet_read_options ro;
  pt_parquet_read_options_init(&ro);
  ro.filter = fy;
  CHECK(pt_read_parquet(S, out, &ro, &ds, &err));
  CHECK(pt_count(ds, &count, &err));
  assert_int_equal(count, 200);
  pt_dataset_free(ds);
  pt_parquet_filter_free(fy);

  /* Wrong partition columns fail before any task runs, leaving nothing. */
  snprintf(out, sizeof out, "%s/hive-bad", DIR_);
  CHECK(pt_read_parquet(S, in, NULL, &ds, &err));
  pt_error err;
  const char *nope[] = {"nope"};
  o.partition_by = nope;
  o.n_partition_by = 1;
  assert_int_equal(pt_write_parquet(ds, out, &o, &err), PT_EINVAL);
  assert_string_equal(err.message,
                      "write_parquet: partition_by column 'nope' is not a column of the dataset");
  const char *all[] = {"id", "name", "year", "city"};
  o.partition_by = all;
  o.n_partition_by = 4;
  assert_int_equal(pt_write_parquet(ds, out, &o, &err), PT_EINVAL);
  assert_string_equal(err.message,
                      "write_parquet: partition_by names every column; the files need at least "
                      "one column that is not a partition column");
  assert_int_not_equal(access(out, F_OK), 0);
  pt_dataset_free(ds);
  /* A single file has no partition directories. */
  snprintf(path, sizeof path, "%s/single.parquet", DIR_);
  struct ArrowSchema one;
  CHECK(pt_schema_init(&one, "+s", "", 0, 1, &err));
  CHECK(pt_schema_init(one.children[0], "l", "id", 0, 0, &err));
  pt_parquet_writer *w;
  o.partition_by = keys;
  o.n_partition_by = 1;
  assert_int_equal(pt_parquet_writer_open_path(path, &one, &o, &w, &err), PT_EINVAL);
  assert_string_equal(err.message, "parquet: partition_by applies to pt_write_parquet (a "
                                   "directory); a single file has no partition directories");
  one.release(&one);
}

/* The whole of a file, in memory; *n its size. Caller frees. */
static uint8_t *slurp(const char *path, long *n) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) fail_msg("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  *n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)*n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)*n, f), (size_t)*n);
  fclose(f);
  return b;
}

/* parquet.write.threads (and the write's threads option) reach the tasks'
 * writers, which make the same bytes whatever the number: each part file of
 * one thread's write equals the other writes'. Batches of 40000 rows of two
 * columns are big enough for the writer to share them out. */
static void test_write_threads_same_bytes(void **state) {
  char in[400], path[512], outs[3][400];
  snprintf(in, sizeof in, "%s/threads-in", DIR_);
  pt_error e;
  assert_int_equal(pt__mkdirs(in, &e), PT_OK);
  for (int f = 0; f < 2; f++) {
    snprintf(path, sizeof path, "%s/t-%d.parquet", in, f);
    write_file(path, f * 40000, 40000, 40000, 1);
  }
  pt_conf *conf;
  pt_session *s2;
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "parquet.write.threads", "2", &err));
  CHECK(pt_conf_set(conf, "parquet.partition_bytes", "30000", &err));
  CHECK(pt_session_open("local[2]", conf, &s2, &err));
  pt_conf_free(conf);
  pt_session *sessions[3] = {S, s2, S};
  for (int k = 0; k < 3; k++) {
    snprintf(outs[k], sizeof outs[k], "%s/threads-out-%d", DIR_, k);
    pt_dataset *ds;
    CHECK(pt_read_parquet(sessions[k], in, NULL, &ds, &err));
    assert_int_equal(pt_dataset_num_partitions(ds), 2);
    pt_parquet_write_options o;
    pt_parquet_write_options_init(&o);
    o.codec = PT_PARQUET_ZSTD;
    o.row_group_rows = 30000;
    o.page_bytes = 16384;
    if (k == 2) o.threads = 3;
    CHECK(pt_write_parquet(ds, outs[k], &o, &err));
    pt_dataset_free(ds);
  }
  for (int p = 0; p < 2; p++) {
    long n0, n;
    snprintf(path, sizeof path, "%s/part-%05d.parquet", outs[0], p);
    uint8_t *want = slurp(path, &n0);
    assert_true(n0 > 100000);
    for (int k = 1; k < 3; k++) {
      snprintf(path, sizeof path, "%s/part-%05d.parquet", outs[k], p);
      uint8_t *got = slurp(path, &n);
      assert_int_equal(n, n0);
      assert_memory_equal(got, want, (size_t)n0);
      free(got);
    }
    free(want);
  }
  /* Out of range, before any task runs. */
  pt_dataset *ds;
  CHECK(pt_read_parquet(S, in, NULL, &ds, &err));
  pt_parquet_write_options o;
  pt_parquet_write_options_init(&o);
  o.threads = 17;
  snprintf(path, sizeof path, "%s/threads-out-bad", DIR_);
  pt_error err;
  assert_int_equal(pt_write_parquet(ds, path, &o, &err), PT_EINVAL);
  assert_string_equal(err.message, "write_parquet: 17 encoding threads asked for (threads or "
                                   "parquet.write.threads); give 1 to 16");
  pt_dataset_free(ds);
  pt_session_close(s2);
}

/* The ids collected, in order (caller frees); *rows = their number. */
static int64_t *collect_ids(pt_dataset *ds, int64_t *rows) {
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  int64_t *ids = NULL, cap = 0;
  *rows = 0;
  struct ArrowArray a;
  while (st.get_next(&st, &a) == 0 && a.release) {
    const struct ArrowArray *id = a.children[0];
    const int64_t *v = (const int64_t *)id->buffers[1] + id->offset + a.offset;
    if (*rows + a.length > cap) {
      cap = (*rows + a.length) * 2;
      ids = realloc(ids, (size_t)cap * sizeof *ids);
      assert_non_null(ids);
    }
    memcpy(ids + *rows, v, (size_t)a.length * sizeof *v);
    *rows += a.length;
    a.release(&a);
  }
  assert_null(st.get_last_error(&st));
  st.release(&st);
  return ids;
}

/* parquet.read.threads (and a read's own threads option above 1) decode
 * each task's row groups on that many threads: the same rows in the same
 * order as the task's thread alone; out of range fails before any task. */
static void test_read_threads(void **state) {
  char in[400];
  snprintf(in, sizeof in, "%s/in", DIR_);
  pt_conf *conf;
  pt_session *s2;
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "parquet.read.threads", "2", &err));
  CHECK(pt_conf_set(conf, "parquet.partition_bytes", "30000", &err));
  CHECK(pt_session_open("local[2]", conf, &s2, &err));
  pt_conf_free(conf);
  int64_t n0, n;
  pt_dataset *ds;
  CHECK(pt_read_parquet(S, in, NULL, &ds, &err));
  int64_t *want = collect_ids(ds, &n0);
  pt_dataset_free(ds);
  assert_int_equal(n0, 13000);
  for (int k = 0; k < 2; k++) {
    pt_parquet_read_options o;
    pt_parquet_read_options_init(&o);
    o.threads = k == 0 ? 1 : 3; /* the session's 2, then the read's 3 */
    CHECK(pt_read_parquet(k == 0 ? s2 : S, in, &o, &ds, &err));
    int64_t *got = collect_ids(ds, &n);
    assert_int_equal(n, n0);
    assert_memory_equal(got, want, (size_t)n0 * sizeof *want);
    free(got);
    pt_dataset_free(ds);
  }
  free(want);
  pt_session_close(s2);
  /* Refused: 0 by the configuration, 17 and -1 before any task runs. */
  CHECK(pt_conf_new(&conf, &err));
  pt_error e;
  assert_int_equal(pt_conf_set(conf, "parquet.read.threads", "0", &e), PT_EINVAL);
  CHECK(pt_conf_set(conf, "parquet.read.threads", "17", &err));
  CHECK(pt_session_open("local[1]", conf, &s2, &err));
  pt_conf_free(conf);
  ds = NULL;
  assert_int_equal(pt_read_parquet(s2, in, NULL, &ds, &e), PT_EINVAL);
  assert_null(ds);
  assert_string_equal(e.message, "read_parquet: 17 decoding threads asked for (threads or "
                                 "parquet.read.threads); give 1 to 16");
  pt_session_close(s2);
  pt_parquet_read_options o;
  pt_parquet_read_options_init(&o);
  o.threads = -1;
  assert_int_equal(pt_read_parquet(S, in, &o, &ds, &e), PT_EINVAL);
  assert_string_equal(e.message, "read_parquet: -1 decoding threads asked for (threads or "
                                 "parquet.read.threads); give 1 to 16");
}

/* The sizing rule of the file reads (src/api/split.c) on S's two slots,
 * and the dealing of pieces into partitions of about equal size. */
static void test_split_rule(void **state) {
  const int64_t MiB = (int64_t)1 << 20, cap = 128 * MiB;
  assert_int_equal(pt__split_parts(S, 0, cap), 1);
  assert_int_equal(pt__split_parts(S, 3 * MiB, cap), 1);
  assert_int_equal(pt__split_parts(S, 6 * MiB, cap), 1); /* halves under 4 MiB */
  assert_int_equal(pt__split_parts(S, 10 * MiB, cap), 2);
  assert_int_equal(pt__split_parts(S, 40 * MiB, cap), 2);
  assert_int_equal(pt__split_parts(S, 256 * MiB, cap), 2);
  assert_int_equal(pt__split_parts(S, 256 * MiB + 1, cap), 4);
  assert_int_equal(pt__split_parts(S, 300 * MiB, cap), 4);
  assert_int_equal(pt__split_parts(S, 200000, 30000), 8); /* 7 rounded up */
  pt__deal d;
  int64_t got[16];
  /* Four equal files in two: two each. */
  pt__deal_init(&d, 4 * 3 * MiB, 2, cap);
  for (int i = 0; i < 4; i++) got[i] = pt__deal_next(&d, 3 * MiB);
  assert_int_equal(got[0], 0);
  assert_int_equal(got[1], 0);
  assert_int_equal(got[2], 1);
  assert_int_equal(got[3], 1);
  /* Sixteen row groups in four under a cap that would take six: four each. */
  pt__deal_init(&d, 16 * MiB, 4, 6 * MiB);
  for (int i = 0; i < 16; i++) got[i] = pt__deal_next(&d, MiB);
  for (int i = 0; i < 16; i++) assert_int_equal(got[i], i / 4);
  /* The cap starts a partition even when one was asked for. */
  pt__deal_init(&d, 15 * MiB, 1, 8 * MiB);
  for (int i = 0; i < 3; i++) assert_int_equal(pt__deal_next(&d, 5 * MiB), i);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_split_rule),
      cmocka_unit_test(test_read_partitions_and_count),
      cmocka_unit_test(test_projection_and_filter),
      cmocka_unit_test(test_filter_skips_pages_in_tasks),
      cmocka_unit_test(test_write_and_read_back),
      cmocka_unit_test(test_write_modes),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_hive_directories),
      cmocka_unit_test(test_hive_all_null_key),
      cmocka_unit_test(test_write_partition_by),
      cmocka_unit_test(test_write_threads_same_bytes),
      cmocka_unit_test(test_read_threads),
  };
  return cmocka_run_group_tests_name("parquet_engine", tests, setup, teardown);
}
