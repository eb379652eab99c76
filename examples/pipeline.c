/* pipeline.c — the engine from C: a map function registered with
 * PT_REGISTER_FN runs in two executor processes (local[2]) over a range of
 * ids, the rows are shuffled by a key column and written as Arrow IPC files,
 * then read back and checked row by row. Usage: pipeline OUT (OUT.XXXXXX is created
 * next to it and removed at the end).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protium.h"

/* batch struct<id: int64> -> struct<id: int64, bucket: int64>. Runs in the
 * executors: arg is a copy of the bytes given to pt_map_batches. */
static int add_bucket(const pt_task_context *ctx, const struct ArrowSchema *schema,
                      const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                      size_t arg_size, pt_error *err) {
  int64_t buckets;
  memcpy(&buckets, arg, sizeof buckets);
  const struct ArrowArray *ids = batch->children[0];
  const int64_t *id = (const int64_t *)ids->buffers[1] + ids->offset + batch->offset;

  struct ArrowSchema out_schema;
  pt_builder *b;
  if (pt_schema_init(&out_schema, "+s", "", 0, 2, err) != PT_OK) return PT_ENOMEM;
  if (pt_schema_init(out_schema.children[0], "l", "id", 0, 0, err) != PT_OK ||
      pt_schema_init(out_schema.children[1], "l", "bucket", 0, 0, err) != PT_OK ||
      pt_builder_new(&out_schema, &b, err) != PT_OK) {
    out_schema.release(&out_schema);
    return PT_ENOMEM;
  }
  int rc = PT_OK;
  for (int64_t i = 0; i < batch->length && rc == PT_OK; i++) {
    rc = pt_builder_append_int(pt_builder_child(b, 0), id[i]);
    if (rc == PT_OK) rc = pt_builder_append_int(pt_builder_child(b, 1), id[i] % buckets);
    if (rc == PT_OK) rc = pt_builder_append_row(b);
  }
  if (rc == PT_OK) rc = pt_builder_finish(b, out, err);
  pt_builder_free(b);
  out_schema.release(&out_schema);
  return rc;
}
PT_REGISTER_FN(add_bucket)

static int fail(const char *what, const pt_error *err) {
  fprintf(stderr, "pipeline: %s: %s\n", what, err->message);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: pipeline OUT\n");
    return 2;
  }
  char dir[4096];
  snprintf(dir, sizeof dir, "%s.XXXXXX", argv[1]);
  if (mkdtemp(dir) == NULL) {
    perror("pipeline: mkdtemp");
    return 1;
  }

  pt_error err;
  pt_session *s;
  if (pt_session_open("local[2]", NULL, &s, &err) != PT_OK) return fail("session", &err);

  /* The output schema of add_bucket, for the planner. */
  struct ArrowSchema schema;
  pt_schema_init(&schema, "+s", "", 0, 2, &err);
  pt_schema_init(schema.children[0], "l", "id", 0, 0, &err);
  pt_schema_init(schema.children[1], "l", "bucket", 0, 0, &err);

  int64_t buckets = 10;
  const char *keys[] = {"bucket"};
  pt_dataset *ids, *bucketed, *shuffled, *back;
  int64_t count = 0;
  int status = 1;
  if (pt_range(s, 0, 100000, 4, &ids, &err) != PT_OK) return fail("range", &err);
  if (pt_map_batches(ids, add_bucket, &schema, &buckets, sizeof buckets, &bucketed, &err) !=
      PT_OK)
    return fail("map_batches", &err);
  if (pt_repartition_by(bucketed, 3, keys, 1, &shuffled, &err) != PT_OK)
    return fail("repartition_by", &err);
  if (pt_write_ipc(shuffled, dir, NULL, &err) != PT_OK) {
    fail("write_ipc", &err);
  } else if (pt_read_ipc(s, dir, &back, &err) != PT_OK) {
    fail("read_ipc", &err);
  } else {
    /* Read back: every id exactly once, with its bucket. */
    struct ArrowArrayStream st;
    if (pt_collect(back, &st, &err) != PT_OK) {
      fail("collect", &err);
    } else {
      static uint8_t seen[100000];
      int ok = 1;
      struct ArrowArray b;
      while (ok && st.get_next(&st, &b) == 0 && b.release) {
        const struct ArrowArray *c0 = b.children[0], *c1 = b.children[1];
        const int64_t *id = (const int64_t *)c0->buffers[1] + c0->offset + b.offset;
        const int64_t *bk = (const int64_t *)c1->buffers[1] + c1->offset + b.offset;
        for (int64_t i = 0; i < b.length && ok; i++)
          ok = id[i] >= 0 && id[i] < 100000 && !seen[id[i]]++ && bk[i] == id[i] % buckets;
        count += b.length;
        b.release(&b);
      }
      st.release(&st);
      if (ok && count == 100000) status = 0;
      else fprintf(stderr, "pipeline: the rows read back are not the rows written\n");
    }
    pt_dataset_free(back);
  }
  printf("%lld rows written to 3 files and read back\n", (long long)count);

  pt_dataset_free(shuffled);
  pt_dataset_free(bucketed);
  pt_dataset_free(ids);
  schema.release(&schema);
  pt_session_close(s);

  /* Remove the output. */
  char path[4200];
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/part-%05d.arrow", dir, i);
    unlink(path);
  }
  snprintf(path, sizeof path, "%s/_SUCCESS", dir);
  unlink(path);
  rmdir(dir);
  return status;
}
