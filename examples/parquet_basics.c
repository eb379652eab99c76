/* parquet_basics.c — Parquet with protium's C API: write a batch as a
 * ZSTD-compressed Parquet file in row groups of 1000 rows, read two of its
 * columns back in batches of 4096 rows, and check every value.
 *
 *   build/examples/parquet_basics events.parquet
 */
#include <stdio.h>
#include <string.h>

#include <protium.h>

#define ROWS 10000

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: parquet_basics FILE\n");
    return 2;
  }
  const char *path = argv[1];
  int status = 1;
  pt_error err = {0};

  /* struct<id: int64 not null, user: utf8, score: float64> */
  struct ArrowSchema schema;
  if (pt_schema_init(&schema, "+s", "", 0, 3, &err) != PT_OK ||
      pt_schema_init(schema.children[0], "l", "id", 0, 0, &err) != PT_OK ||
      pt_schema_init(schema.children[1], "u", "user", ARROW_FLAG_NULLABLE, 0, &err) != PT_OK ||
      pt_schema_init(schema.children[2], "g", "score", ARROW_FLAG_NULLABLE, 0, &err) != PT_OK) {
    fprintf(stderr, "parquet_basics: %s\n", err.message);
    return 1;
  }
  pt_builder *b;
  if (pt_builder_new(&schema, &b, &err) != PT_OK) goto release_schema;
  for (int64_t i = 0; i < ROWS; i++) {
    char user[16];
    int n = snprintf(user, sizeof user, "user%lld", (long long)(i % 100));
    int rc = pt_builder_append_int(pt_builder_child(b, 0), i);
    if (rc == PT_OK)
      rc = i % 10 == 0 ? pt_builder_append_null(pt_builder_child(b, 1), 1)
                       : pt_builder_append_bytes(pt_builder_child(b, 1), user, n);
    if (rc == PT_OK) rc = pt_builder_append_double(pt_builder_child(b, 2), (double)i / 4);
    if (rc == PT_OK) rc = pt_builder_append_row(b);
    if (rc != PT_OK) {
      fprintf(stderr, "parquet_basics: append: %s\n", pt_builder_last_error(b));
      goto free_builder;
    }
  }
  struct ArrowArray batch;
  if (pt_builder_finish(b, &batch, &err) != PT_OK) goto free_builder;

  /* Write: ZSTD, row groups of 1000 rows (the user column dictionary-encoded). */
  pt_parquet_write_options wopts;
  pt_parquet_write_options_init(&wopts);
  wopts.codec = PT_PARQUET_ZSTD;
  wopts.row_group_rows = 1000;
  pt_parquet_writer *w;
  if (pt_parquet_writer_open_path(path, &schema, &wopts, &w, &err) != PT_OK) goto release_batch;
  if (pt_parquet_writer_write(w, &batch, &err) != PT_OK ||
      pt_parquet_writer_close(w, &err) != PT_OK) {
    pt_parquet_writer_free(w);
    goto release_batch;
  }
  pt_parquet_writer_free(w);

  /* Read two columns back, in batches of at most 4096 rows (a batch never
   * spans two row groups). */
  const char *columns[] = {"user", "id"};
  pt_parquet_read_options ropts;
  pt_parquet_read_options_init(&ropts);
  ropts.columns = columns;
  ropts.n_columns = 2;
  ropts.batch_size = 4096;
  struct ArrowArrayStream stream;
  if (pt_parquet_read_path(path, &ropts, &stream, &err) != PT_OK) goto release_batch;
  int64_t seen = 0, batches = 0;
  struct ArrowArray got;
  while (stream.get_next(&stream, &got) == 0 && got.release != NULL) {
    const struct ArrowArray *user = got.children[0], *id = got.children[1];
    const int32_t *offsets = (const int32_t *)user->buffers[1] + user->offset;
    const char *chars = user->buffers[2];
    const int64_t *ids = (const int64_t *)id->buffers[1] + id->offset;
    for (int64_t i = 0; i < got.length; i++, seen++) {
      char want[16];
      int n = snprintf(want, sizeof want, "user%lld", (long long)(seen % 100));
      int null = !pt_array_is_valid(schema.children[1], user, i);
      int ok = ids[i] == seen &&
               (seen % 10 == 0 ? null
                               : !null && offsets[i + 1] - offsets[i] == n &&
                                     memcmp(chars + offsets[i], want, (size_t)n) == 0);
      if (!ok) {
        fprintf(stderr, "parquet_basics: row %lld differs\n", (long long)seen);
        got.release(&got);
        stream.release(&stream);
        goto release_batch;
      }
    }
    batches++;
    got.release(&got);
  }
  const char *e = stream.get_last_error(&stream);
  stream.release(&stream);
  if (e != NULL || seen != ROWS) {
    fprintf(stderr, "parquet_basics: read %lld rows: %s\n", (long long)seen, e ? e : "");
    goto release_batch;
  }
  printf("%s: %lld rows in %lld batches\n", path, (long long)seen, (long long)batches);
  status = 0;

release_batch:
  if (status != 0 && err.message[0]) fprintf(stderr, "parquet_basics: %s\n", err.message);
  batch.release(&batch);
free_builder:
  pt_builder_free(b);
release_schema:
  schema.release(&schema);
  return status;
}
