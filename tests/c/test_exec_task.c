/* test_exec_task.c — the task runner without a driver: stage definitions
 * built here, tasks run in-process, outputs read back. Covers range and map
 * and filter into count and result sinks, shuffle write and read (round
 * robin and by hash), lost map outputs (fetch failures) and clear errors for
 * unregistered or failing functions.
 */
#include "test_ipc_util.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "arrow/kernels.h"
#include "core/registry.h"
#include "exec/barrier_area.h"
#include "exec/exec.h"
#include "net/net.h"
#include "net/tcp.h"

/* ------------------------------------------------------------------------ */
/* User functions */

/* The int64 column 0 of a struct batch, offsets applied. */
static const int64_t *batch_ids(const struct ArrowArray *batch) {
  const struct ArrowArray *c = batch->children[0];
  return (const int64_t *)c->buffers[1] + c->offset + batch->offset;
}

/* id -> id * 2, same schema. */
static int double_ids(const pt_task_context *ctx, const struct ArrowSchema *schema,
                      const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                      size_t arg_size, pt_error *err) {
  pt_builder *b;
  int rc = pt_builder_new(schema, &b, err);
  if (rc != PT_OK) return rc;
  const int64_t *ids = batch_ids(batch);
  for (int64_t i = 0; i < batch->length; i++) {
    pt_builder_append_int(pt_builder_child(b, 0), ids[i] * 2);
    pt_builder_append_row(b);
  }
  rc = pt_builder_finish(b, out, err);
  pt_builder_free(b);
  return rc;
}
PT_REGISTER_FN(double_ids)

/* id -> (id, s = "p<partition>:<id>") with the schema given in out_schema. */
static int add_label(const pt_task_context *ctx, const struct ArrowSchema *schema,
                     const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                     size_t arg_size, pt_error *err) {
  struct ArrowSchema s;
  schema_node(&s, "+s", "", 2);
  schema_node(s.children[0], "l", "id", 0);
  schema_node(s.children[1], "u", "s", 0);
  pt_builder *b;
  int rc = pt_builder_new(&s, &b, err);
  s.release(&s);
  if (rc != PT_OK) return rc;
  const int64_t *ids = batch_ids(batch);
  for (int64_t i = 0; i < batch->length; i++) {
    char text[64];
    int n = snprintf(text, sizeof text, "p%lld:%lld", (long long)ctx->partition,
                     (long long)ids[i]);
    pt_builder_append_int(pt_builder_child(b, 0), ids[i]);
    pt_builder_append_bytes(pt_builder_child(b, 1), text, n);
    pt_builder_append_row(b);
  }
  rc = pt_builder_finish(b, out, err);
  pt_builder_free(b);
  return rc;
}
PT_REGISTER_FN(add_label)

static int keep_multiples(const pt_task_context *ctx, const struct ArrowSchema *schema,
                          const struct ArrowArray *batch, uint8_t *keep, const void *arg,
                          size_t arg_size, pt_error *err) {
  int64_t k;
  memcpy(&k, arg, sizeof k);
  const int64_t *ids = batch_ids(batch);
  for (int64_t i = 0; i < batch->length; i++)
    if (ids[i] % k == 0) keep[i >> 3] |= (uint8_t)(1u << (i & 7));
  return PT_OK;
}
PT_REGISTER_FN(keep_multiples)

static int failing_map(const pt_task_context *ctx, const struct ArrowSchema *schema,
                       const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                       size_t arg_size, pt_error *err) {
  snprintf(err->message, sizeof err->message, "boom at partition %lld",
           (long long)ctx->partition);
  return PT_EINVAL;
}
PT_REGISTER_FN(failing_map)

/* Sleeps arg milliseconds; fails if the executor's environment leaked into
 * user code. */
static int sleepy(const pt_task_context *ctx, const struct ArrowSchema *schema,
                  const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                  size_t arg_size, pt_error *err) {
  if (getenv("PROTIUM_EXECUTOR_SOCKET") != NULL) {
    snprintf(err->message, sizeof err->message, "PROTIUM_EXECUTOR_SOCKET is still set");
    return PT_EINVAL;
  }
  int64_t ms = 0;
  if (arg_size == sizeof ms) memcpy(&ms, arg, sizeof ms);
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
  return pt_array_copy(schema, batch, out, err);
}
PT_REGISTER_FN(sleepy)

/* ------------------------------------------------------------------------ */
/* Stage building */

typedef struct stage_b {
  Protium__StageDef def;
  Protium__Op ops[8];
  Protium__Op *op_ptrs[8];
  Protium__RangeSource range;
  Protium__FilesSource files;
  Protium__ShuffleSource shuffle_read;
  Protium__MapOp map;
  Protium__FilterOp filter;
  Protium__ShuffleSink shuffle_write;
  Protium__ResultSink result;
  Protium__CountSink count;
  Protium__IpcSink ipc;
  Protium__MapPartitionsOp map_partitions;
} stage_b;

static stage_b *stage_begin(int64_t stage_id) {
  stage_b *s = calloc(1, sizeof *s);
  protium__stage_def__init(&s->def);
  s->def.stage_id = stage_id;
  s->def.job_id = 9;
  s->def.ops = s->op_ptrs;
  protium__range_source__init(&s->range);
  protium__files_source__init(&s->files);
  protium__shuffle_source__init(&s->shuffle_read);
  protium__map_op__init(&s->map);
  protium__filter_op__init(&s->filter);
  protium__shuffle_sink__init(&s->shuffle_write);
  protium__result_sink__init(&s->result);
  protium__count_sink__init(&s->count);
  protium__ipc_sink__init(&s->ipc);
  protium__map_partitions_op__init(&s->map_partitions);
  return s;
}

static Protium__Op *add_op(stage_b *s, Protium__Op__OpCase c) {
  Protium__Op *op = &s->ops[s->def.n_ops];
  protium__op__init(op);
  op->op_case = c;
  s->op_ptrs[s->def.n_ops++] = op;
  switch (c) {
    case PROTIUM__OP__OP_RANGE: op->range = &s->range; break;
    case PROTIUM__OP__OP_FILES: op->files = &s->files; break;
    case PROTIUM__OP__OP_SHUFFLE_READ: op->shuffle_read = &s->shuffle_read; break;
    case PROTIUM__OP__OP_MAP: op->map = &s->map; break;
    case PROTIUM__OP__OP_FILTER: op->filter = &s->filter; break;
    case PROTIUM__OP__OP_SHUFFLE_WRITE: op->shuffle_write = &s->shuffle_write; break;
    case PROTIUM__OP__OP_RESULT: op->result = &s->result; break;
    case PROTIUM__OP__OP_COUNT: op->count = &s->count; break;
    case PROTIUM__OP__OP_WRITE_IPC: op->write_ipc = &s->ipc; break;
    case PROTIUM__OP__OP_MAP_PARTITIONS: op->map_partitions = &s->map_partitions; break;
    default: break;
  }
  return op;
}

static void add_range(stage_b *s, int64_t start, int64_t end, int64_t parts, int64_t batch) {
  add_op(s, PROTIUM__OP__OP_RANGE);
  s->range.start = start;
  s->range.end = end;
  s->range.partitions = parts;
  s->range.batch_rows = batch;
}

/* Schema-only IPC stream bytes. */
static bytes schema_bytes(const struct ArrowSchema *schema) {
  return write_batches(schema, NULL, 0, NULL);
}

static pt__stage *stage_end(stage_b *s) {
  pt__stage *st;
  CHECK(pt__stage_new(&s->def, &st, &err));
  return st;
}

static char dir_template[] = "/tmp/pt-exec-test-XXXXXX";
static char *tmp_dir;
static pt__exec_env env;

static int setup(void **state) {
  tmp_dir = mkdtemp(dir_template);
  assert_non_null(tmp_dir);
  env.executor_id = 3;
  env.local_dir = tmp_dir;
  env.session_dir = tmp_dir;
  return 0;
}

static int teardown(void **state) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
  return system(cmd);
}

static Protium__TaskStatus run_task(pt__stage *stage, int64_t partition, int64_t attempt) {
  Protium__TaskLaunch tl;
  protium__task_launch__init(&tl);
  tl.task_id = 100 + partition;
  tl.stage_id = pt__stage_id(stage);
  tl.partition = partition;
  tl.attempt = attempt;
  Protium__TaskStatus st;
  pt__task_run(&env, stage, &tl, NULL, 0, &st);
  assert_int_equal(st.task_id, 100 + partition);
  return st;
}

static void expect_ok(const Protium__TaskStatus *st) {
  if (st->state != PROTIUM__TASK_STATE__TASK_SUCCEEDED)
    fail_msg("task %lld: state %d: %s", (long long)st->task_id, st->state, st->error);
}

/* Reads every batch of an IPC file into one concatenated batch (or a released one). */
static int64_t read_ids(const char *path, int64_t *ids, int64_t cap, int col) {
  struct ArrowArrayStream s;
  CHECK(pt_ipc_read_path(path, &s, &err));
  struct ArrowSchema schema;
  assert_int_equal(s.get_schema(&s, &schema), 0);
  int64_t n = 0;
  for (;;) {
    struct ArrowArray a;
    assert_int_equal(s.get_next(&s, &a), 0);
    if (a.release == NULL) break;
    pt__view v;
    CHECK(pt__view_init(&v, &schema, &a, &err));
    for (int64_t i = 0; i < a.length; i++) {
      assert_true(n < cap);
      ids[n++] = pt__view_get_int(&v.children[col], v.offset + i);
    }
    pt__view_reset(&v);
    a.release(&a);
  }
  schema.release(&schema);
  s.release(&s);
  return n;
}

/* ------------------------------------------------------------------------ */
/* Tests */

static void test_range_count(void **state) {
  stage_b *b = stage_begin(1);
  add_range(b, -5, 1000003, 7, 1000);
  add_op(b, PROTIUM__OP__OP_COUNT);
  pt__stage *st = stage_end(b);
  int64_t total = 0;
  for (int64_t p = 0; p < 7; p++) {
    Protium__TaskStatus s = run_task(st, p, 0);
    expect_ok(&s);
    total += s.count;
    pt__task_status_clear(&s);
  }
  assert_int_equal(total, 1000008);
  pt__stage_unref(st);
  free(b);

  /* range -> map -> filter -> count: the rows go through the functions. */
  b = stage_begin(2);
  add_range(b, 0, 10000, 3, 999);
  add_op(b, PROTIUM__OP__OP_MAP);
  b->map.fn = "double_ids";
  add_op(b, PROTIUM__OP__OP_FILTER);
  int64_t k = 3;
  b->filter.fn = "keep_multiples";
  b->filter.arg.data = (uint8_t *)&k;
  b->filter.arg.len = sizeof k;
  add_op(b, PROTIUM__OP__OP_COUNT);
  st = stage_end(b);
  total = 0;
  for (int64_t p = 0; p < 3; p++) {
    Protium__TaskStatus s = run_task(st, p, 0);
    expect_ok(&s);
    assert_int_equal(s.count, s.rows);
    total += s.count;
    pt__task_status_clear(&s);
  }
  /* 2*id % 3 == 0 <=> id % 3 == 0: ids 0, 3, ..., 9999 */
  assert_int_equal(total, 3334);
  pt__stage_unref(st);
  free(b);
}

static void test_range_result(void **state) {
  stage_b *b = stage_begin(3);
  add_range(b, 10, 110, 4, 7);
  add_op(b, PROTIUM__OP__OP_MAP);
  b->map.fn = "add_label";
  struct ArrowSchema out;
  schema_node(&out, "+s", "", 2);
  schema_node(out.children[0], "l", "id", 0);
  schema_node(out.children[1], "u", "s", 0);
  bytes sb = schema_bytes(&out);
  b->map.out_schema.data = sb.data;
  b->map.out_schema.len = (size_t)sb.size;
  add_op(b, PROTIUM__OP__OP_RESULT);
  pt__stage *st = stage_end(b);
  bytes_free(&sb); /* the stage keeps its own copy */
  int64_t expect = 10;
  for (int64_t p = 0; p < 4; p++) {
    Protium__TaskStatus s = run_task(st, p, 2);
    expect_ok(&s);
    char want[512];
    snprintf(want, sizeof want, "%s/results/9/part-%lld-2.arrows", tmp_dir, (long long)p);
    assert_string_equal(s.output_path, want);
    assert_int_equal(s.rows, 25);
    int64_t ids[64];
    assert_int_equal(read_ids(s.output_path, ids, 64, 0), 25);
    for (int i = 0; i < 25; i++) assert_int_equal(ids[i], expect++);
    pt__task_status_clear(&s);
  }
  /* An empty partition still writes a valid file (schema, no rows). */
  pt__stage_unref(st);
  free(b);
  b = stage_begin(4);
  add_range(b, 0, 2, 4, 0);
  add_op(b, PROTIUM__OP__OP_RESULT);
  st = stage_end(b);
  Protium__TaskStatus s = run_task(st, 0, 0);
  expect_ok(&s);
  int64_t ids[4];
  assert_int_equal(read_ids(s.output_path, ids, 4, 0), 0);
  pt__task_status_clear(&s);
  pt__stage_unref(st);
  free(b);
  out.release(&out);
}

/* Runs the map stage of a shuffle; statuses go to outs[]. */
static void run_map_stage(int64_t sid, int64_t maps, int64_t reduces, const char *key,
                          Protium__TaskStatus *outs) {
  stage_b *b = stage_begin(10 + sid);
  add_range(b, 0, 1000, maps, 64);
  add_op(b, PROTIUM__OP__OP_MAP);
  b->map.fn = "add_label";
  struct ArrowSchema out;
  schema_node(&out, "+s", "", 2);
  schema_node(out.children[0], "l", "id", 0);
  schema_node(out.children[1], "u", "s", 0);
  bytes sb = schema_bytes(&out);
  b->map.out_schema.data = sb.data;
  b->map.out_schema.len = (size_t)sb.size;
  add_op(b, PROTIUM__OP__OP_SHUFFLE_WRITE);
  b->shuffle_write.shuffle_id = sid;
  b->shuffle_write.partitions = reduces;
  char *keys[1] = {(char *)key};
  if (key != NULL) {
    b->shuffle_write.n_keys = 1;
    b->shuffle_write.keys = keys;
  }
  pt__stage *st = stage_end(b);
  for (int64_t m = 0; m < maps; m++) {
    outs[m] = run_task(st, m, 1);
    expect_ok(&outs[m]);
    char want[512];
    snprintf(want, sizeof want, "%s/shuffle-%lld-%lld-1.arrows", tmp_dir, (long long)sid,
             (long long)m);
    assert_non_null(outs[m].shuffle);
    assert_string_equal(outs[m].shuffle->path, want);
    assert_int_equal(outs[m].shuffle->n_segment_offsets, reduces + 1);
    assert_int_equal(outs[m].shuffle->n_segment_rows, reduces);
    int64_t rows = 0;
    for (int64_t r = 0; r < reduces; r++) rows += outs[m].shuffle->segment_rows[r];
    assert_int_equal(rows, outs[m].rows);
    struct stat sst;
    assert_int_equal(stat(want, &sst), 0);
    assert_int_equal(sst.st_size, outs[m].shuffle->segment_offsets[reduces]);
  }
  pt__stage_unref(st);
  bytes_free(&sb);
  out.release(&out);
  free(b);
}

/* Reduce stage: shuffle read of the map outputs into result files. */
static pt__stage *reduce_stage(int64_t sid, Protium__TaskStatus *maps, int64_t n_maps,
                               Protium__ShuffleOutput **outs, stage_b **bp) {
  stage_b *b = stage_begin(20 + sid);
  add_op(b, PROTIUM__OP__OP_SHUFFLE_READ);
  b->shuffle_read.shuffle_id = sid;
  for (int64_t m = 0; m < n_maps; m++) outs[m] = maps[m].shuffle;
  b->shuffle_read.n_map_outputs = (size_t)n_maps;
  b->shuffle_read.map_outputs = outs;
  add_op(b, PROTIUM__OP__OP_RESULT);
  *bp = b;
  return stage_end(b);
}

static void check_shuffle(const char *key) {
  enum { MAPS = 3, REDUCES = 4 };
  int64_t sid = key ? 2 : 1;
  Protium__TaskStatus maps[MAPS];
  run_map_stage(sid, MAPS, REDUCES, key, maps);
  Protium__ShuffleOutput *outs[MAPS];
  stage_b *b;
  pt__stage *st = reduce_stage(sid, maps, MAPS, outs, &b);
  int seen[1000] = {0};
  for (int64_t r = 0; r < REDUCES; r++) {
    Protium__TaskStatus s = run_task(st, r, 0);
    expect_ok(&s);
    int64_t ids[1000];
    int64_t n = read_ids(s.output_path, ids, 1000, 0);
    assert_int_equal(n, s.rows);
    int64_t expect_rows = 0;
    for (int m = 0; m < MAPS; m++) expect_rows += maps[m].shuffle->segment_rows[r];
    assert_int_equal(n, expect_rows);
    for (int64_t i = 0; i < n; i++) {
      assert_true(ids[i] >= 0 && ids[i] < 1000);
      seen[ids[i]]++;
      if (key == NULL) {
        /* Round robin: map m's row j (id = lo_m + j) goes to (m + j) % REDUCES. */
        int64_t m = ids[i] * MAPS / 1000;
        while (m * 1000 / MAPS > ids[i]) m--;
        while ((m + 1) * 1000 / MAPS <= ids[i]) m++;
        int64_t j = ids[i] - m * 1000 / MAPS;
        assert_int_equal((m + j) % REDUCES, r);
      }
    }
    if (key != NULL) {
      /* Hash: the partition is the hash of the key modulo REDUCES. */
      struct ArrowArrayStream rs;
      CHECK(pt_ipc_read_path(s.output_path, &rs, &err));
      struct ArrowSchema schema;
      assert_int_equal(rs.get_schema(&rs, &schema), 0);
      for (;;) {
        struct ArrowArray a;
        assert_int_equal(rs.get_next(&rs, &a), 0);
        if (a.release == NULL) break;
        uint64_t h[1000];
        int col = 0;
        CHECK(pt__hash_rows(&schema, &a, &col, 1, h, &err));
        for (int64_t i = 0; i < a.length; i++) assert_int_equal(h[i] % REDUCES, r);
        a.release(&a);
      }
      schema.release(&schema);
      rs.release(&rs);
    }
    pt__task_status_clear(&s);
  }
  for (int i = 0; i < 1000; i++) assert_int_equal(seen[i], 1);
  pt__stage_unref(st);
  free(b);
  for (int m = 0; m < MAPS; m++) pt__task_status_clear(&maps[m]);
}

static void test_shuffle_round_robin(void **state) { check_shuffle(NULL); }
static void test_shuffle_hash(void **state) { check_shuffle("id"); }

static void test_fetch_failure(void **state) {
  enum { MAPS = 3 };
  Protium__TaskStatus maps[MAPS];
  run_map_stage(7, MAPS, 2, NULL, maps);
  assert_int_equal(unlink(maps[1].shuffle->path), 0); /* map 1's output is lost */
  Protium__ShuffleOutput *outs[MAPS];
  stage_b *b;
  pt__stage *st = reduce_stage(7, maps, MAPS, outs, &b);
  Protium__TaskStatus s = run_task(st, 1, 0);
  assert_int_equal(s.state, PROTIUM__TASK_STATE__TASK_FETCH_FAILED);
  assert_int_equal(s.failed_map_partition, 1);
  char want[512];
  snprintf(want, sizeof want,
           "shuffle read: output of map 1 ('%s') cannot be opened: No such file or directory",
           maps[1].shuffle->path);
  assert_string_equal(s.error, want);
  assert_null(s.output_path[0] ? s.output_path : NULL);
  pt__task_status_clear(&s);
  /* A truncated file is a fetch failure too. */
  off_t cut = maps[2].shuffle->segment_offsets[1] + 10;
  assert_int_equal(truncate(maps[2].shuffle->path, cut), 0);
  s = run_task(st, 1, 0);
  assert_int_equal(s.state, PROTIUM__TASK_STATE__TASK_FETCH_FAILED);
  /* map 1 comes first */
  assert_int_equal(s.failed_map_partition, 1);
  pt__task_status_clear(&s);
  outs[1] = maps[0].shuffle; /* pretend map 1 was recomputed */
  pt__stage_unref(st);
  st = stage_end(b); /* the stage copied its definition: make it anew */
  s = run_task(st, 1, 0);
  assert_int_equal(s.state, PROTIUM__TASK_STATE__TASK_FETCH_FAILED);
  assert_int_equal(s.failed_map_partition, 2);
  pt__task_status_clear(&s);
  /* No result file is left behind by failed attempts? The result sink opens its file
   * before reading, and removes it on failure. */
  snprintf(want, sizeof want, "%s/results/9/part-1-0.arrows", tmp_dir);
  assert_int_equal(access(want, F_OK), -1);
  pt__stage_unref(st);
  free(b);
  for (int m = 0; m < MAPS; m++) pt__task_status_clear(&maps[m]);
}

static void test_function_errors(void **state) {
  stage_b *b = stage_begin(30);
  add_range(b, 0, 10, 1, 0);
  add_op(b, PROTIUM__OP__OP_MAP);
  b->map.fn = "nope";
  add_op(b, PROTIUM__OP__OP_COUNT);
  pt__stage *st = stage_end(b);
  Protium__TaskStatus s = run_task(st, 0, 0);
  assert_int_equal(s.state, PROTIUM__TASK_STATE__TASK_FAILED);
  assert_string_equal(s.error,
                      "map 'nope': function 'nope' is not registered in this program; add "
                      "PT_REGISTER_FN(nope) next to its definition");
  pt__task_status_clear(&s);
  pt__stage_unref(st);

  b->map.fn = "failing_map";
  st = stage_end(b);
  s = run_task(st, 0, 0);
  assert_int_equal(s.state, PROTIUM__TASK_STATE__TASK_FAILED);
  assert_string_equal(s.error, "map 'failing_map': boom at partition 0");
  pt__task_status_clear(&s);
  pt__stage_unref(st);

  /* add_label returns two columns, but the stage says "unchanged". */
  b->map.fn = "add_label";
  st = stage_end(b);
  s = run_task(st, 0, 0);
  assert_int_equal(s.state, PROTIUM__TASK_STATE__TASK_FAILED);
  assert_string_equal(s.error, "map 'add_label': the batch it returned does not match its "
                               "output schema: array has 2 children, its schema 1");
  pt__task_status_clear(&s);
  pt__stage_unref(st);
  free(b);
}

static void test_ipc_sink_and_files(void **state) {
  char temp[512];
  snprintf(temp, sizeof temp, "%s/out/_temporary", tmp_dir);
  stage_b *b = stage_begin(40);
  add_range(b, 0, 5000, 2, 1000);
  add_op(b, PROTIUM__OP__OP_WRITE_IPC);
  b->ipc.temp_dir = temp;
  b->ipc.format = PT_IPC_FILE;
  b->ipc.compression = PT_COMPRESSION_ZSTD;
  pt__stage *st = stage_end(b);
  char *paths[2];
  for (int64_t p = 0; p < 2; p++) {
    Protium__TaskStatus s = run_task(st, p, 1);
    expect_ok(&s);
    char want[600];
    snprintf(want, sizeof want, "%s/part-%lld-1.arrow", temp, (long long)p);
    assert_string_equal(s.output_path, want);
    assert_int_equal(s.rows, 2500);
    paths[p] = strdup(s.output_path);
    pt__task_status_clear(&s);
  }
  pt__stage_unref(st);
  free(b);
  /* Read them back through a files source. */
  b = stage_begin(41);
  add_op(b, PROTIUM__OP__OP_FILES);
  b->files.n_paths = 2;
  b->files.paths = paths;
  add_op(b, PROTIUM__OP__OP_FILTER);
  int64_t k = 10;
  b->filter.fn = "keep_multiples";
  b->filter.arg.data = (uint8_t *)&k;
  b->filter.arg.len = sizeof k;
  add_op(b, PROTIUM__OP__OP_COUNT);
  st = stage_end(b);
  for (int64_t p = 0; p < 2; p++) {
    Protium__TaskStatus s = run_task(st, p, 0);
    expect_ok(&s);
    assert_int_equal(s.count, 250);
    pt__task_status_clear(&s);
  }
  pt__stage_unref(st);
  free(b);
  free(paths[0]);
  free(paths[1]);
}

static void test_registry(void **state) {
  void (*fn)(void);
  const char *name;
  CHECK(pt__fn_lookup_name("double_ids", &fn, &err));
  assert_ptr_equal(fn, (void (*)(void))double_ids);
  CHECK(pt__fn_lookup_ptr((void (*)(void))add_label, &name, &err));
  assert_string_equal(name, "add_label");
  /* The same pair again is fine; another function under a taken name is
   * refused, and the name becomes unusable rather than ambiguous. */
  assert_int_equal(pt_fn_register("dup", (void (*)(void))double_ids), PT_OK);
  assert_int_equal(pt_fn_register("dup", (void (*)(void))double_ids), PT_OK);
  assert_int_equal(pt_fn_register("dup", (void (*)(void))add_label), PT_EINVAL);
  pt_error err = {0};
  assert_int_equal(pt__fn_lookup_name("dup", &fn, &err), PT_EINVAL);
  assert_string_equal(err.message, "function name 'dup' is registered for two different "
                                   "functions; rename one of them");
  assert_null(fn);
  assert_int_equal(pt__fn_lookup_ptr((void (*)(void))test_registry, &name, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "is not registered; add PT_REGISTER_FN"));
  assert_int_equal(pt_fn_register(NULL, (void (*)(void))add_label), PT_EINVAL);
}

/* Every allocation failure inside a task becomes a failed status with a
 * message; nothing leaks or crashes (the ASan build checks). */
static void test_task_alloc_failures(void **state) {
  stage_b *b = stage_begin(70);
  add_range(b, 0, 300, 2, 100);
  add_op(b, PROTIUM__OP__OP_FILTER);
  int64_t k = 2;
  b->filter.fn = "keep_multiples";
  b->filter.arg.data = (uint8_t *)&k;
  b->filter.arg.len = sizeof k;
  add_op(b, PROTIUM__OP__OP_SHUFFLE_WRITE);
  b->shuffle_write.shuffle_id = 70;
  b->shuffle_write.partitions = 3;
  char *keys[1] = {"id"};
  b->shuffle_write.n_keys = 1;
  b->shuffle_write.keys = keys;
  pt__stage *st = stage_end(b);
  int failed = 0;
  for (int64_t n = 0; n < 2000; n++) {
    pt__alloc_fail_after(n);
    Protium__TaskStatus s = run_task(st, 1, 0);
    pt__alloc_fail_after(-1);
    if (s.state == PROTIUM__TASK_STATE__TASK_SUCCEEDED) {
      assert_int_equal(s.rows, 75);
      pt__task_status_clear(&s);
      break;
    }
    assert_int_equal(s.state, PROTIUM__TASK_STATE__TASK_FAILED);
    failed++;
    pt__task_status_clear(&s);
  }
  assert_true(failed > 20);
  /* No temporary file is left behind. */
  char tmp[400];
  snprintf(tmp, sizeof tmp, "%s/shuffle-70-1-0.arrows.tmp", tmp_dir);
  assert_int_equal(access(tmp, F_OK), -1);
  pt__stage_unref(st);
  free(b);
}

/* ------------------------------------------------------------------------ */
/* The executor process, against a fake driver */

typedef struct fake_driver {
  int listen_fd, fd;
  pid_t pid;
  pt__frame_decoder d;
  int heartbeats;
} fake_driver;

static void drv_start(fake_driver *drv, int64_t id, int slots) {
  memset(drv, 0, sizeof *drv);
  char sock[300];
  snprintf(sock, sizeof sock, "%s/drv-%lld.sock", tmp_dir, (long long)id);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strcpy(addr.sun_path, sock);
  drv->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
  assert_int_equal(bind(drv->listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
  assert_int_equal(listen(drv->listen_fd, 4), 0);
  char ids[32], sl[32];
  snprintf(ids, sizeof ids, "%lld", (long long)id);
  snprintf(sl, sizeof sl, "%d", slots);
  drv->pid = fork();
  assert_true(drv->pid >= 0);
  if (drv->pid == 0) {
    setenv("PROTIUM_EXECUTOR_SOCKET", sock, 1);
    setenv("PROTIUM_EXECUTOR_ID", ids, 1);
    setenv("PROTIUM_EXECUTOR_SLOTS", sl, 1);
    setenv("PROTIUM_EXECUTOR_DIR", tmp_dir, 1);
    execl("/proc/self/exe", "executor", (char *)NULL);
    _exit(127);
  }
  /* Bounded waits: a broken executor fails the test instead of hanging it. */
  struct pollfd pfd = {.fd = drv->listen_fd, .events = POLLIN};
  if (poll(&pfd, 1, 10000) != 1) {
    kill(drv->pid, SIGKILL);
    waitpid(drv->pid, NULL, 0);
    fail_msg("the executor did not connect within 10 s");
  }
  drv->fd = accept(drv->listen_fd, NULL, NULL);
  assert_true(drv->fd >= 0);
  struct timeval tv = {.tv_sec = 20};
  setsockopt(drv->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  pt__frame_decoder_init(&drv->d);
}

static void drv_send(fake_driver *drv, pt__msg_type type, const ProtobufCMessage *m) {
  pt_buf out = {0};
  CHECK(pt__frame_append(&out, type, m, &err));
  CHECK(pt__write_all(drv->fd, out.data, out.len, &err));
  pt_buf_free(&out);
}

/* The next message other than a heartbeat. */
static ProtobufCMessage *drv_recv(fake_driver *drv, pt__msg_type want) {
  for (;;) {
    pt__frame f;
    CHECK(pt__frame_read(drv->fd, &drv->d, &f, &err));
    ProtobufCMessage *m;
    CHECK(pt__msg_unpack(f.type, f.payload, f.len, &m, &err));
    if (f.type == PT__MSG_HEARTBEAT) {
      drv->heartbeats++;
      pt__msg_free(m);
      continue;
    }
    assert_int_equal(f.type, want);
    return m;
  }
}

static void drv_handshake(fake_driver *drv, int64_t id, int slots) {
  Protium__Hello *h = (Protium__Hello *)drv_recv(drv, PT__MSG_HELLO);
  assert_int_equal(h->protocol_version, 1);
  assert_int_equal(h->executor_id, id);
  assert_int_equal(h->pid, drv->pid);
  assert_int_equal(h->slots, slots);
  assert_string_equal(h->local_dir, tmp_dir);
  pt__msg_free(&h->base);
  Protium__Welcome w;
  protium__welcome__init(&w);
  w.session_dir = tmp_dir;
  w.heartbeat_interval_ms = 20;
  drv_send(drv, PT__MSG_WELCOME, &w.base);
}

static int drv_wait_exit(fake_driver *drv, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    int status;
    pid_t r = waitpid(drv->pid, &status, WNOHANG);
    if (r == drv->pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    usleep(10000);
  }
  kill(drv->pid, SIGKILL);
  waitpid(drv->pid, NULL, 0);
  return -1;
}

static void drv_close(fake_driver *drv) {
  if (drv->fd >= 0) close(drv->fd);
  close(drv->listen_fd);
  pt__frame_decoder_reset(&drv->d);
}

/* Sends tasks [first, first+n) of stage b (with its definition when
 * with_def) in one LaunchBatch. */
static void drv_launch(fake_driver *drv, stage_b *b, int with_def, int64_t first, int64_t n) {
  Protium__LaunchBatch lb;
  protium__launch_batch__init(&lb);
  Protium__StageDef *defs[1] = {&b->def};
  if (with_def) {
    lb.n_stages = 1;
    lb.stages = defs;
  }
  Protium__TaskLaunch *tl = calloc((size_t)n, sizeof *tl);
  Protium__TaskLaunch **ptrs = calloc((size_t)n, sizeof *ptrs);
  for (int64_t i = 0; i < n; i++) {
    protium__task_launch__init(&tl[i]);
    tl[i].task_id = first + i;
    tl[i].stage_id = b->def.stage_id;
    tl[i].partition = first + i;
    ptrs[i] = &tl[i];
  }
  lb.n_tasks = (size_t)n;
  lb.tasks = ptrs;
  drv_send(drv, PT__MSG_LAUNCH_BATCH, &lb.base);
  free(tl);
  free(ptrs);
}

static void test_executor_process(void **state) {
  /* A load, not a cast to void, so that the linker keeps executor.o. */
  volatile int linked = pt__executor_linked;
  assert_int_equal(linked, 1);
  fake_driver drv;
  drv_start(&drv, 5, 2);
  drv_handshake(&drv, 5, 2);

  /* Many small tasks: range -> sleepy(0) -> count, in batches. */
  enum { TASKS = 4000, BATCH = 500 };
  stage_b *b = stage_begin(50);
  add_range(b, 0, TASKS * 3, TASKS, 0);
  add_op(b, PROTIUM__OP__OP_MAP);
  b->map.fn = "sleepy";
  add_op(b, PROTIUM__OP__OP_COUNT);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int64_t done = 0, total = 0, frames = 0;
  char *seen = calloc(TASKS, 1);
  for (int64_t sent = 0; sent < TASKS; sent += BATCH) {
    drv_launch(&drv, b, sent == 0, sent, BATCH);
  }
  while (done < TASKS) {
    Protium__StatusBatch *sb = (Protium__StatusBatch *)drv_recv(&drv, PT__MSG_STATUS_BATCH);
    frames++;
    for (size_t i = 0; i < sb->n_statuses; i++) {
      Protium__TaskStatus *st = sb->statuses[i];
      if (st->state != PROTIUM__TASK_STATE__TASK_SUCCEEDED)
        fail_msg("task %lld: %s", (long long)st->task_id, st->error);
      assert_int_equal(seen[st->task_id], 0);
      seen[st->task_id] = 1;
      total += st->count;
      done++;
    }
    pt__msg_free(&sb->base);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  print_message("%d tasks in %.3f s (%.0f tasks/s) in %lld status frames\n", TASKS, secs,
                TASKS / secs, (long long)frames);
  assert_int_equal(total, TASKS * 3);
  free(seen);

  /* Kill: slow tasks on 2 slots; the queued ones are reported killed. */
  stage_b *slow = stage_begin(51);
  add_range(slow, 0, 10, 10, 0);
  add_op(slow, PROTIUM__OP__OP_MAP);
  int64_t ms = 100;
  slow->map.fn = "sleepy";
  slow->map.arg.data = (uint8_t *)&ms;
  slow->map.arg.len = sizeof ms;
  add_op(slow, PROTIUM__OP__OP_COUNT);
  drv_launch(&drv, slow, 1, 0, 6);
  int64_t kill_ids[] = {3, 4, 5, 99};
  Protium__KillTasks kt;
  protium__kill_tasks__init(&kt);
  kt.n_task_ids = 4;
  kt.task_ids = kill_ids;
  drv_send(&drv, PT__MSG_KILL_TASKS, &kt.base);
  int states[6] = {0};
  for (int got = 0; got < 6;) {
    Protium__StatusBatch *sb = (Protium__StatusBatch *)drv_recv(&drv, PT__MSG_STATUS_BATCH);
    for (size_t i = 0; i < sb->n_statuses; i++, got++)
      states[sb->statuses[i]->task_id] = sb->statuses[i]->state;
    pt__msg_free(&sb->base);
  }
  for (int i = 0; i < 6; i++)
    assert_int_equal(states[i], i < 3 ? PROTIUM__TASK_STATE__TASK_SUCCEEDED
                                      : PROTIUM__TASK_STATE__TASK_KILLED);
  assert_true(drv.heartbeats > 0);

  /* Cleanup removes shuffle files; a later task shows it was handled. */
  char path[400];
  snprintf(path, sizeof path, "%s/shuffle-77-0-0.arrows", tmp_dir);
  FILE *f = fopen(path, "w");
  fclose(f);
  int64_t sids[] = {77}, stage_ids[] = {50, 51};
  Protium__Cleanup cl;
  protium__cleanup__init(&cl);
  cl.n_shuffle_ids = 1;
  cl.shuffle_ids = sids;
  cl.n_stage_ids = 2;
  cl.stage_ids = stage_ids;
  drv_send(&drv, PT__MSG_CLEANUP, &cl.base);
  drv_launch(&drv, b, 0, 0, 1); /* the definition is gone */
  Protium__StatusBatch *sb = (Protium__StatusBatch *)drv_recv(&drv, PT__MSG_STATUS_BATCH);
  assert_int_equal(sb->n_statuses, 1);
  assert_int_equal(sb->statuses[0]->state, PROTIUM__TASK_STATE__TASK_FAILED);
  assert_string_equal(sb->statuses[0]->error,
                      "executor has no definition of stage 50 attempt 0");
  pt__msg_free(&sb->base);
  assert_int_equal(access(path, F_OK), -1);

  Protium__Shutdown sd;
  protium__shutdown__init(&sd);
  drv_send(&drv, PT__MSG_SHUTDOWN, &sd.base);
  assert_int_equal(drv_wait_exit(&drv, 5000), 0);
  drv_close(&drv);
  free(b);
  free(slow);
}

/* Fails with what the task holds as its message: "gpu=A,B fpga=C env=A,B"
 * (env: CUDA_VISIBLE_DEVICES in its child environment, or "unset"). */
static int held(const pt_task_context *ctx, const struct ArrowSchema *schema,
                const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                size_t arg_size, pt_error *err) {
  (void)schema, (void)batch, (void)out, (void)arg, (void)arg_size;
  char text[2][64];
  const char *names[2] = {"gpu", "fpga"};
  for (int r = 0; r < 2; r++) {
    const char *const *addrs;
    int64_t n;
    int rc = pt_ctx_resources(ctx, names[r], &addrs, &n, err);
    if (rc != PT_OK) return rc;
    text[r][0] = 0;
    for (int64_t i = 0, len = 0; i < n; i++)
      len += snprintf(text[r] + len, sizeof text[r] - (size_t)len, "%s%s", i ? "," : "", addrs[i]);
  }
  char **envp;
  int rc = pt_ctx_child_env(ctx, &envp, err);
  if (rc != PT_OK) return rc;
  const char *cvd = "unset";
  for (char **e = envp; *e; e++)
    if (strncmp(*e, "CUDA_VISIBLE_DEVICES=", 21) == 0) cvd = *e + 21;
  snprintf(err->message, sizeof err->message, "gpu=%s fpga=%s env=%s", text[0], text[1], cvd);
  pt_env_free(envp);
  return PT_EINVAL;
}
PT_REGISTER_FN(held)

/* Welcome lists the executor's resources once; launches name addresses by
 * index (one in resource_ref, several in resource_refs pairs, in any order
 * of resources). A launch naming what the list lacks fails with a message,
 * and the executor goes on. */
static void test_executor_resource_refs(void **state) {
  (void)state;
  fake_driver drv;
  drv_start(&drv, 9, 1);
  Protium__Hello *h = (Protium__Hello *)drv_recv(&drv, PT__MSG_HELLO);
  pt__msg_free(&h->base);
  char *gpus[] = {"g0", "g1", "g2"}, *fpgas[] = {"f0", "f1"};
  Protium__Resource res[2], *res_ptrs[2] = {&res[0], &res[1]};
  protium__resource__init(&res[0]);
  res[0].name = "gpu";
  res[0].env = "CUDA_VISIBLE_DEVICES";
  res[0].n_addresses = 3;
  res[0].addresses = gpus;
  protium__resource__init(&res[1]);
  res[1].name = "fpga";
  res[1].n_addresses = 2;
  res[1].addresses = fpgas;
  Protium__Welcome w;
  protium__welcome__init(&w);
  w.session_dir = tmp_dir;
  w.heartbeat_interval_ms = 20;
  w.n_resources = 2;
  w.resources = res_ptrs;
  drv_send(&drv, PT__MSG_WELCOME, &w.base);

  stage_b *b = stage_begin(60);
  add_range(b, 0, 6, 6, 0);
  add_op(b, PROTIUM__OP__OP_MAP);
  b->map.fn = "held";
  add_op(b, PROTIUM__OP__OP_COUNT);
  uint32_t several[] = {0, 2, 1, 1, 0, 0}, odd[] = {0};
  Protium__TaskLaunch tl[6], *ptrs[6];
  for (int i = 0; i < 6; i++) {
    protium__task_launch__init(&tl[i]);
    tl[i].task_id = i;
    tl[i].stage_id = 60;
    tl[i].partition = i;
    ptrs[i] = &tl[i];
  }
  tl[0].resource_ref = ((uint64_t)0 << 32 | 1) + 1;
  tl[1].n_resource_refs = 6;
  tl[1].resource_refs = several;
  tl[2].resource_ref = ((uint64_t)0 << 32 | 3) + 1; /* gpu 3: there are 3 */
  tl[3].n_resource_refs = 1;
  tl[3].resource_refs = odd;
  tl[4].resource_ref = ((uint64_t)2 << 32 | 0) + 1; /* no resource 2 */
  Protium__LaunchBatch lb;
  protium__launch_batch__init(&lb);
  Protium__StageDef *defs[1] = {&b->def};
  lb.n_stages = 1;
  lb.stages = defs;
  lb.n_tasks = 6;
  lb.tasks = ptrs;
  drv_send(&drv, PT__MSG_LAUNCH_BATCH, &lb.base);
  const char *want[6] = {
      "map 'held': gpu=g1 fpga= env=g1",
      "map 'held': gpu=g2,g0 fpga=f1 env=g2,g0",
      "the driver named resources this executor was not told of",
      "the driver named resources this executor was not told of",
      "the driver named resources this executor was not told of",
      "map 'held': gpu= fpga= env=unset"};
  int got[6] = {0};
  for (int n = 0; n < 6;) {
    Protium__StatusBatch *sb = (Protium__StatusBatch *)drv_recv(&drv, PT__MSG_STATUS_BATCH);
    for (size_t i = 0; i < sb->n_statuses; i++, n++) {
      Protium__TaskStatus *st = sb->statuses[i];
      assert_true(st->task_id >= 0 && st->task_id < 6 && !got[st->task_id]);
      got[st->task_id] = 1;
      assert_int_equal(st->state, PROTIUM__TASK_STATE__TASK_FAILED);
      const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
      if (st->task_id == 5 && cvd) continue; /* the executor's own, inherited */
      assert_string_equal(st->error, want[st->task_id]);
    }
    pt__msg_free(&sb->base);
  }
  Protium__Shutdown sd;
  protium__shutdown__init(&sd);
  drv_send(&drv, PT__MSG_SHUTDOWN, &sd.base);
  assert_int_equal(drv_wait_exit(&drv, 5000), 0);
  drv_close(&drv);
  free(b);
}

/* A barrier task's side of the coordinator: it gives "ab" to an all_gather
 * of two tasks and expects sizes {1, 2} and bytes "Zab"; its task infos
 * must be the launch's. Any error is the task's. */
static int gather_ab(const pt_task_context *ctx, struct ArrowArrayStream *input, const void *arg,
                     size_t arg_size, pt_error *err) {
  const pt_task_info *infos;
  int64_t n;
  int rc = pt_ctx_task_infos(ctx, &infos, &n, err);
  if (rc != PT_OK) return rc;
  if (n != 2 || infos[1].port != 4242 || strcmp(infos[1].host, "h1") != 0) {
    snprintf(err->message, sizeof err->message, "wrong task infos");
    return PT_EINVAL;
  }
  void *out;
  size_t sizes[2];
  rc = pt_ctx_all_gather(ctx, "ab", 2, &out, sizes, err);
  if (rc != PT_OK) return rc;
  int ok = sizes[0] == 1 && sizes[1] == 2 && memcmp(out, "Zab", 3) == 0;
  free(out);
  if (!ok) {
    snprintf(err->message, sizeof err->message, "gathered the wrong bytes");
    return PT_EINVAL;
  }
  return PT_OK;
}
PT_REGISTER_FN(gather_ab)

/* Launches task id (partition 1 of 2) of barrier stage b with two infos,
 * and returns its call. */
static Protium__BarrierCall *drv_barrier_task(fake_driver *drv, stage_b *b, int with_def,
                                              int64_t id) {
  Protium__TaskInfo infos[2], *iptrs[2] = {&infos[0], &infos[1]};
  const char *hosts[2] = {"h0", "h1"};
  for (int i = 0; i < 2; i++) {
    protium__task_info__init(&infos[i]);
    infos[i].partition = i;
    infos[i].host = (char *)hosts[i];
    infos[i].port = 4241 + i;
  }
  Protium__TaskLaunch tl, *tptr = &tl;
  protium__task_launch__init(&tl);
  tl.task_id = id;
  tl.stage_id = b->def.stage_id;
  tl.partition = 1;
  tl.n_task_infos = 2;
  tl.task_infos = iptrs;
  Protium__StageDef *defs[1] = {&b->def};
  Protium__LaunchBatch lb;
  protium__launch_batch__init(&lb);
  lb.n_stages = with_def ? 1 : 0;
  lb.stages = defs;
  lb.n_tasks = 1;
  lb.tasks = &tptr;
  drv_send(drv, PT__MSG_LAUNCH_BATCH, &lb.base);
  Protium__BarrierCall *c = (Protium__BarrierCall *)drv_recv(drv, PT__MSG_BARRIER_CALL);
  assert_int_equal(c->task_id, id);
  assert_int_equal(c->seq, 0);
  assert_int_equal(c->kind, PROTIUM__BARRIER_KIND__BARRIER_KIND_ALL_GATHER);
  assert_int_equal(c->size, 2);
  assert_int_equal(c->offset, 0);
  assert_int_equal(c->data.len, 2);
  assert_memory_equal(c->data.data, "ab", 2);
  return c;
}

static void drv_reply(fake_driver *drv, int64_t id, int64_t *sizes, size_t n_sizes,
                      int64_t offset, const char *data) {
  Protium__BarrierReply r;
  protium__barrier_reply__init(&r);
  r.task_id = id;
  r.n_sizes = n_sizes;
  r.sizes = sizes;
  r.offset = offset;
  r.data.data = (uint8_t *)data;
  r.data.len = strlen(data);
  drv_send(drv, PT__MSG_BARRIER_REPLY, &r.base);
}

/* The status of the one task in flight. */
static void drv_expect_status(fake_driver *drv, int64_t id, int state, const char *error) {
  Protium__StatusBatch *sb = (Protium__StatusBatch *)drv_recv(drv, PT__MSG_STATUS_BATCH);
  assert_int_equal(sb->n_statuses, 1);
  assert_int_equal(sb->statuses[0]->task_id, id);
  if ((int)sb->statuses[0]->state != state)
    fail_msg("task %lld: state %d: %s", (long long)id, (int)sb->statuses[0]->state,
             sb->statuses[0]->error);
  if (error && !strstr(sb->statuses[0]->error, error))
    fail_msg("task %lld: '%s' does not say '%s'", (long long)id, sb->statuses[0]->error, error);
  pt__msg_free(&sb->base);
}

/* Replies in pieces, garbled replies, replies and aborts for tasks that
 * are not there, and an abort of a waiting task: the executor assembles
 * what is right, fails the task on what is wrong, and lives on. */
static void test_executor_barrier_calls(void **state) {
  fake_driver drv;
  drv_start(&drv, 7, 1);
  drv_handshake(&drv, 7, 1);
  stage_b *b = stage_begin(70);
  b->def.barrier = 1;
  b->def.num_tasks = 2;
  add_range(b, 0, 2, 2, 0);
  add_op(b, PROTIUM__OP__OP_MAP_PARTITIONS);
  b->map_partitions.fn = "gather_ab";
  add_op(b, PROTIUM__OP__OP_COUNT);
  int64_t sizes[2] = {1, 2}, three[3] = {1, 1, 1}, negative[2] = {-1, 4};

  /* Right, in two frames; strangers' reply and abort in between. */
  Protium__BarrierCall *c = drv_barrier_task(&drv, b, 1, 1);
  pt__msg_free(&c->base);
  drv_reply(&drv, 1, sizes, 2, 0, "Za");
  drv_reply(&drv, 99, sizes, 2, 0, "Zab");
  int64_t stranger = 98;
  Protium__BarrierAbort ab;
  protium__barrier_abort__init(&ab);
  ab.n_task_ids = 1;
  ab.task_ids = &stranger;
  drv_send(&drv, PT__MSG_BARRIER_ABORT, &ab.base);
  drv_reply(&drv, 1, NULL, 0, 2, "b");
  drv_expect_status(&drv, 1, PROTIUM__TASK_STATE__TASK_SUCCEEDED, NULL);

  /* Out of order, too many sizes, a negative size. */
  c = drv_barrier_task(&drv, b, 0, 2);
  pt__msg_free(&c->base);
  drv_reply(&drv, 2, sizes, 2, 1, "ab");
  drv_expect_status(&drv, 2, PROTIUM__TASK_STATE__TASK_FAILED, "the driver's reply is out of order");
  c = drv_barrier_task(&drv, b, 0, 3);
  pt__msg_free(&c->base);
  drv_reply(&drv, 3, three, 3, 0, "abc");
  drv_expect_status(&drv, 3, PROTIUM__TASK_STATE__TASK_FAILED, "a different number of tasks");
  c = drv_barrier_task(&drv, b, 0, 4);
  pt__msg_free(&c->base);
  drv_reply(&drv, 4, negative, 2, 0, "abc");
  drv_expect_status(&drv, 4, PROTIUM__TASK_STATE__TASK_FAILED, "negative size");

  /* An error reply, then an abort of a waiting task. */
  c = drv_barrier_task(&drv, b, 0, 5);
  pt__msg_free(&c->base);
  Protium__BarrierReply er;
  protium__barrier_reply__init(&er);
  er.task_id = 5;
  er.error = "partition 0 lost: executor 3 lost";
  er.error_code = PT_EIO;
  drv_send(&drv, PT__MSG_BARRIER_REPLY, &er.base);
  drv_expect_status(&drv, 5, PROTIUM__TASK_STATE__TASK_FAILED,
                    "all_gather (step 0): partition 0 lost: executor 3 lost");
  c = drv_barrier_task(&drv, b, 0, 6);
  pt__msg_free(&c->base);
  int64_t six = 6;
  ab.task_ids = &six;
  ab.error = "barrier stage 70 attempt 0 stopped: by the test";
  drv_send(&drv, PT__MSG_BARRIER_ABORT, &ab.base);
  drv_expect_status(&drv, 6, PROTIUM__TASK_STATE__TASK_FAILED, "stopped: by the test");

  Protium__Shutdown sd;
  protium__shutdown__init(&sd);
  drv_send(&drv, PT__MSG_SHUTDOWN, &sd.base);
  assert_int_equal(drv_wait_exit(&drv, 5000), 0);
  drv_close(&drv);
  free(b);
}

static int barrier_twice(const pt_task_context *ctx, struct ArrowArrayStream *input,
                         const void *arg, size_t arg_size, pt_error *err) {
  (void)input, (void)arg, (void)arg_size;
  for (int i = 0; i < 2; i++) PT_RETURN_NOT_OK(pt_ctx_barrier(ctx, err));
  return PT_OK;
}
PT_REGISTER_FN(barrier_twice)

/* A barrier stage whose StageDef names a shared area for 2 tasks. */
static stage_b *area_stage(int64_t id, const char *area) {
  stage_b *b = stage_begin(id);
  b->def.barrier = 1;
  b->def.num_tasks = 2;
  b->def.barrier_area = (char *)area;
  add_range(b, 0, 2, 2, 0);
  add_op(b, PROTIUM__OP__OP_MAP_PARTITIONS);
  b->map_partitions.fn = "barrier_twice";
  add_op(b, PROTIUM__OP__OP_COUNT);
  return b;
}

/* With a shared area, barrier() steps meet there (the test is partition
 * 0): no BarrierCall reaches the driver, and the task marks its return.
 * An area that cannot be opened is a BarrierFault, and the task fails
 * with the driver's abort; so does a task whose abort comes while it
 * waits in the area, which the abort stops for its peers too. */
static void test_executor_shared_area(void **state) {
  fake_driver drv;
  drv_start(&drv, 8, 1);
  drv_handshake(&drv, 8, 1);
  char path[512], missing[512];
  snprintf(path, sizeof path, "%s/area-80", tmp_dir);
  snprintf(missing, sizeof missing, "%s/no-such-area", tmp_dir);
  CHECK(pt__area_create(path, 80, 0, 2, 60000, &err));
  pt__area me;
  CHECK(pt__area_open(path, 80, 0, 2, &me, &err));
  stage_b *b = area_stage(80, path);
  drv_launch(&drv, b, 1, 1, 1);
  int code;
  char why[512];
  for (int64_t step = 0; step < 2; step++)
    assert_int_equal(pt__area_step(&me, 0, step, PROTIUM__BARRIER_KIND__BARRIER_KIND_BARRIER,
                                   &code, why, sizeof why), PT__AREA_DONE);
  drv_expect_status(&drv, 1, PROTIUM__TASK_STATE__TASK_SUCCEEDED, NULL);
  assert_int_equal(atomic_load(&me.slots[1].ended), 3); /* two calls, then returned */
  pt__area_close(&me);

  stage_b *bad = area_stage(81, missing);
  drv_launch(&drv, bad, 1, 2, 1);
  Protium__BarrierFault *f = (Protium__BarrierFault *)drv_recv(&drv, PT__MSG_BARRIER_FAULT);
  assert_int_equal(f->task_id, 2);
  assert_int_equal(f->error_code, PT_EIO);
  assert_non_null(strstr(f->error, "partition 2: barrier area"));
  assert_non_null(strstr(f->error, "cannot open"));
  pt__msg_free(&f->base);
  /* Without its area the task's call goes to the driver, which answers
   * with the stop its fault caused. */
  Protium__BarrierCall *c = (Protium__BarrierCall *)drv_recv(&drv, PT__MSG_BARRIER_CALL);
  assert_int_equal(c->task_id, 2);
  pt__msg_free(&c->base);
  Protium__BarrierAbort ab;
  protium__barrier_abort__init(&ab);
  int64_t id = 2;
  ab.n_task_ids = 1;
  ab.task_ids = &id;
  ab.error = "barrier stage 81 attempt 0 stopped: partition 2: barrier area cannot open";
  drv_send(&drv, PT__MSG_BARRIER_ABORT, &ab.base);
  drv_expect_status(&drv, 2, PROTIUM__TASK_STATE__TASK_FAILED, "stage 81 attempt 0 stopped");

  snprintf(path, sizeof path, "%s/area-82", tmp_dir);
  CHECK(pt__area_create(path, 82, 0, 2, 60000, &err));
  CHECK(pt__area_open(path, 82, 0, 2, &me, &err));
  stage_b *waits = area_stage(82, path);
  drv_launch(&drv, waits, 1, 1, 1);
  while (atomic_load(&me.head->arrived) < 1) usleep(1000);
  id = 1;
  ab.error = "barrier stage 82 attempt 0 stopped: by the test";
  drv_send(&drv, PT__MSG_BARRIER_ABORT, &ab.base);
  drv_expect_status(&drv, 1, PROTIUM__TASK_STATE__TASK_FAILED,
                    "barrier (step 0): barrier stage 82 attempt 0 stopped: by the test");
  assert_int_equal(atomic_load(&me.head->stopped), 1);
  assert_int_equal(atomic_load(&me.slots[1].ended), 0); /* failed: not marked returned */
  pt__area_close(&me);

  Protium__Shutdown sd;
  protium__shutdown__init(&sd);
  drv_send(&drv, PT__MSG_SHUTDOWN, &sd.base);
  assert_int_equal(drv_wait_exit(&drv, 5000), 0);
  drv_close(&drv);
  free(b);
  free(bad);
  free(waits);
}

/* The driver goes away: the executor exits on its own, even with a task
 * running. */
static void test_executor_orphan(void **state) {
  fake_driver drv;
  drv_start(&drv, 6, 1);
  drv_handshake(&drv, 6, 1);
  stage_b *slow = stage_begin(60);
  add_range(slow, 0, 1, 1, 0);
  add_op(slow, PROTIUM__OP__OP_MAP);
  int64_t ms = 10000;
  slow->map.fn = "sleepy";
  slow->map.arg.data = (uint8_t *)&ms;
  slow->map.arg.len = sizeof ms;
  add_op(slow, PROTIUM__OP__OP_COUNT);
  drv_launch(&drv, slow, 1, 0, 1);
  close(drv.fd);
  drv.fd = -1;
  assert_int_equal(drv_wait_exit(&drv, 3000), 1);
  drv_close(&drv);
  free(slow);
}

/* Over TCP, a driver that reads nothing for many times
 * executor.heartbeat_timeout (a driver held up on a loaded machine) while
 * the executor has bytes to send: its kernel answers the window probes, so
 * the executor waits instead of giving up on it, and exits normally at
 * Shutdown. The driver's tiny receive buffer shuts the window with the
 * executor's heartbeats alone. */
static void test_executor_tcp_slow_driver(void **state) {
  int lfd, port;
  CHECK(pt__tcp_listen("127.0.0.1", 0, &lfd, &port, &err));
  int small = 4096; /* accepted connections inherit it */
  assert_int_equal(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
  pt__secret secret;
  CHECK(pt__secret_from_hex(hex, &secret, &err));
  char where[64];
  snprintf(where, sizeof where, "tcp:127.0.0.1:%d", port);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    setenv("PROTIUM_EXECUTOR_SOCKET", where, 1);
    setenv("PROTIUM_EXECUTOR_SECRET", hex, 1);
    setenv("PROTIUM_EXECUTOR_ID", "7", 1);
    setenv("PROTIUM_EXECUTOR_SLOTS", "1", 1);
    setenv("PROTIUM_EXECUTOR_DIR", tmp_dir, 1);
    execl("/proc/self/exe", "executor", (char *)NULL);
    _exit(127);
  }
  fake_driver drv;
  memset(&drv, 0, sizeof drv);
  drv.listen_fd = lfd;
  drv.pid = pid;
  struct pollfd pfd = {.fd = lfd, .events = POLLIN};
  if (poll(&pfd, 1, 30000) != 1) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("the executor did not connect within 30 s");
  }
  drv.fd = accept(lfd, NULL, NULL);
  assert_true(drv.fd >= 0);
  struct timeval tv = {.tv_sec = 30};
  setsockopt(drv.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  CHECK(pt__auth_server(drv.fd, &secret, 30000, &err));
  pt__frame_decoder_init(&drv.d);
  Protium__Hello *h = (Protium__Hello *)drv_recv(&drv, PT__MSG_HELLO);
  assert_int_equal(h->executor_id, 7);
  pt__msg_free(&h->base);
  Protium__Welcome w;
  protium__welcome__init(&w);
  w.session_dir = tmp_dir;
  w.heartbeat_interval_ms = 10;
  w.heartbeat_timeout_ms = 300;
  drv_send(&drv, PT__MSG_WELCOME, &w.base);

  /* Read nothing until the heartbeats have stopped arriving (the window
   * is shut) for ten heartbeat timeouts, the executor alive all along. */
  int queued = -1, still = 0, status;
  for (int k = 0; k < 3000 && still < 30; k++) {
    usleep(100000);
    assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
    int n = 0;
    assert_int_equal(ioctl(drv.fd, FIONREAD, &n), 0);
    still = n == queued ? still + 1 : 0;
    queued = n;
  }
  assert_int_equal(still, 30);
  assert_int_equal(waitpid(pid, &status, WNOHANG), 0);

  /* The driver reads again: the executor's blocked heartbeats go out, it
   * reads Shutdown and exits with status 0. */
  Protium__Shutdown sd;
  protium__shutdown__init(&sd);
  drv_send(&drv, PT__MSG_SHUTDOWN, &sd.base);
  int code = -1;
  for (int k = 0; k < 3000 && code < 0; k++) {
    char buf[65536];
    struct pollfd rp = {.fd = drv.fd, .events = POLLIN};
    if (poll(&rp, 1, 10) == 1 && read(drv.fd, buf, sizeof buf) <= 0) {
      code = drv_wait_exit(&drv, 10000);
      break;
    }
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  assert_int_equal(code, 0);
  drv_close(&drv);
}

int main(void) {
  /* The executor's constructor should have taken over before main(): if
   * it did not (executor.o not linked), running the tests again here would
   * fork executors forever. */
  if (getenv("PROTIUM_EXECUTOR_SOCKET") != NULL) {
    fprintf(stderr, "executor constructor did not run\n");
    _exit(3);
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_range_count),        cmocka_unit_test(test_range_result),
      cmocka_unit_test(test_shuffle_round_robin), cmocka_unit_test(test_shuffle_hash),
      cmocka_unit_test(test_fetch_failure),      cmocka_unit_test(test_function_errors),
      cmocka_unit_test(test_ipc_sink_and_files), cmocka_unit_test(test_task_alloc_failures),
      cmocka_unit_test(test_registry),
      cmocka_unit_test(test_executor_process),
      cmocka_unit_test(test_executor_resource_refs),
      cmocka_unit_test(test_executor_orphan),
      cmocka_unit_test(test_executor_barrier_calls),
      cmocka_unit_test(test_executor_shared_area),
      cmocka_unit_test(test_executor_tcp_slow_driver),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
