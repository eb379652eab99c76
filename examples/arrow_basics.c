/* arrow_basics.c — the Arrow C API of protium in one program: build a record
 * batch with builders, write it as a ZSTD-compressed Arrow IPC file, read it
 * back as a standard ArrowArrayStream and print its rows as JSON lines.
 *
 *   build/examples/arrow_basics people.arrow
 */
#include <stdio.h>
#include <string.h>

#include <protium.h>

/* Appends to a builder or reports why not: appends return a status and keep
 * their message on the builder (pt_builder_last_error). */
#define APPEND(builder, call)                                                          \
  do {                                                                                 \
    if ((call) != PT_OK) {                                                             \
      fprintf(stderr, "arrow_basics: append: %s\n", pt_builder_last_error(builder));   \
      goto free_builder;                                                               \
    }                                                                                  \
  } while (0)

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: arrow_basics FILE\n");
    return 2;
  }
  const char *path = argv[1];
  int status = 1;
  pt_error err;

  /* 1. The schema: a struct whose children are the columns. Each node is
   * made by pt_schema_init; releasing the root releases the whole tree. */
  struct ArrowSchema schema;
  if (pt_schema_init(&schema, "+s", "", 0, 5, &err) != PT_OK ||
      pt_schema_init(schema.children[0], "l", "id", 0, 0, &err) != PT_OK ||
      pt_schema_init(schema.children[1], "u", "name", ARROW_FLAG_NULLABLE, 0, &err) != PT_OK ||
      pt_schema_init(schema.children[2], "g", "score", ARROW_FLAG_NULLABLE, 0, &err) != PT_OK ||
      pt_schema_init(schema.children[3], "+l", "tags", ARROW_FLAG_NULLABLE, 1, &err) != PT_OK ||
      pt_schema_init(schema.children[3]->children[0], "u", "item", ARROW_FLAG_NULLABLE, 0,
                     &err) != PT_OK ||
      pt_schema_init(schema.children[4], "tsm:UTC", "joined", ARROW_FLAG_NULLABLE, 0, &err) !=
          PT_OK) {
    fprintf(stderr, "arrow_basics: schema: %s\n", err.message);
    if (schema.release) schema.release(&schema);
    return 1;
  }

  /* 2. Rows. A builder mirrors the schema: one child builder per column.
   * Append a value (or a null) to every column, then close the row on the
   * root with pt_builder_append_row. A list column takes its items on its
   * child builder and is closed the same way. */
  pt_builder *b = NULL;
  if (pt_builder_new(&schema, &b, &err) != PT_OK) {
    fprintf(stderr, "arrow_basics: builder: %s\n", err.message);
    schema.release(&schema);
    return 1;
  }
  pt_builder *id = pt_builder_child(b, 0), *name = pt_builder_child(b, 1),
             *score = pt_builder_child(b, 2), *tags = pt_builder_child(b, 3),
             *tag = pt_builder_child(tags, 0), *joined = pt_builder_child(b, 4);
  static const struct {
    const char *name;
    double score;
    const char *tags[3];
    int64_t joined_ms; /* milliseconds since 1970-01-01 UTC */
  } people[] = {
      {"ada", 97.5, {"math", "engines", NULL}, -4102444800000},
      {NULL, 0.1, {NULL}, 0},
      {"grace", -1.0, {"cobol", NULL}, 1614834367123},
  };
  for (int64_t i = 0; i < 3; i++) {
    APPEND(id, pt_builder_append_int(id, 1000 + i));
    if (people[i].name)
      APPEND(name, pt_builder_append_bytes(name, people[i].name,
                                           (int64_t)strlen(people[i].name)));
    else
      APPEND(name, pt_builder_append_null(name, 1));
    APPEND(score, pt_builder_append_double(score, people[i].score));
    for (int k = 0; people[i].tags[k] != NULL; k++)
      APPEND(tag, pt_builder_append_bytes(tag, people[i].tags[k],
                                          (int64_t)strlen(people[i].tags[k])));
    APPEND(tags, pt_builder_append_row(tags));
    APPEND(joined, pt_builder_append_int(joined, people[i].joined_ms));
    APPEND(b, pt_builder_append_row(b));
  }
  /* finish moves the rows into an ArrowArray (ours now) and empties b. */
  struct ArrowArray batch;
  if (pt_builder_finish(b, &batch, &err) != PT_OK) {
    fprintf(stderr, "arrow_basics: finish: %s\n", err.message);
    goto free_builder;
  }

  /* 3. Write an Arrow IPC file, ZSTD-compressed. pyarrow, polars, DuckDB...
   * read it as they read their own. */
  pt_ipc_write_options opts;
  pt_ipc_write_options_init(&opts);
  opts.format = PT_IPC_FILE;
  opts.compression = PT_COMPRESSION_ZSTD;
  pt_ipc_writer *w = NULL;
  if (pt_ipc_writer_open_path(path, &schema, &opts, &w, &err) != PT_OK ||
      pt_ipc_writer_write(w, &batch, &err) != PT_OK || pt_ipc_writer_close(w, &err) != PT_OK) {
    fprintf(stderr, "arrow_basics: write %s: %s\n", path, err.message);
    pt_ipc_writer_free(w);
    goto release_batch;
  }
  pt_ipc_writer_free(w);
  batch.release(&batch);

  /* 4. Read it back: an ArrowArrayStream (the Arrow C Stream Interface),
   * batch after batch until get_next gives a released array. */
  struct ArrowArrayStream stream;
  if (pt_ipc_read_path(path, &stream, &err) != PT_OK) {
    fprintf(stderr, "arrow_basics: read %s: %s\n", path, err.message);
    goto free_builder;
  }
  struct ArrowSchema read_schema;
  if (stream.get_schema(&stream, &read_schema) != 0) {
    fprintf(stderr, "arrow_basics: read %s: %s\n", path, stream.get_last_error(&stream));
    goto release_stream;
  }
  /* 5. Print each batch as JSON lines (what `protium cat` does). */
  pt_buf out = {0};
  for (;;) {
    if (stream.get_next(&stream, &batch) != 0) {
      fprintf(stderr, "arrow_basics: read %s: %s\n", path, stream.get_last_error(&stream));
      break;
    }
    if (batch.release == NULL) { /* end of stream */
      status = 0;
      break;
    }
    int rc = pt_json_write_batch(&read_schema, &batch, &out, &err);
    batch.release(&batch);
    if (rc != PT_OK) {
      fprintf(stderr, "arrow_basics: json: %s\n", err.message);
      break;
    }
  }
  if (status == 0) fwrite(out.data, 1, out.len, stdout);
  pt_buf_free(&out);
  read_schema.release(&read_schema);
release_stream:
  stream.release(&stream);
  goto free_builder;

release_batch:
  batch.release(&batch);
free_builder:
  pt_builder_free(b);
  schema.release(&schema);
  return status;
}
