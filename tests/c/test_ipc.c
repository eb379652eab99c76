/* test_ipc.c — Arrow IPC write and read round trips: every type, nulls,
 * slices, both codecs, stream and file formats, dictionaries (deltas,
 * replacements, nesting), zero and empty batches, zero-copy and lifetimes,
 * old framing and V4 metadata, reading from pipes and paths, and the C
 * Stream Interface contract of the readers. Corruption and exact error
 * messages are in test_ipc_corrupt.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "test_ipc_util.h"
#include "arrow/flatbuf.h"
#include "arrow/ipc_int.h"

/* ------------------------------------------------------------------------ */
/* Message listing (to check what the writer chose to write) */

typedef struct msg_info {
  int type;
  int64_t dict_id;
  int delta;
  int64_t length; /* record batch rows / dictionary values */
  int64_t body;
  int compressed;
} msg_info;

/* Lists the messages of an IPC stream (or of the stream inside a file). */
static int list_messages(const bytes *b, msg_info *out, int max) {
  int64_t pos = 0;
  if (b->size >= 8 && memcmp(b->data, "ARROW1", 6) == 0) pos = 8;
  int n = 0;
  while (pos + 8 <= b->size) {
    assert_int_equal(pt__load_u32(b->data + pos), PT_IPC_CONTINUATION);
    int32_t len = pt__load_i32(b->data + pos + 4);
    if (len == 0) break;
    assert_int_equal((pos + 8 + len) % 8, 0);
    pt__fb_reader r;
    pt__fb_table msg, hdr, rb, comp;
    assert_true(pt__fb_reader_init(&r, b->data + pos + 8, len, &msg));
    assert_true(n < max);
    msg_info *m = &out[n++];
    memset(m, 0, sizeof *m);
    m->type = pt__fb_u8(&msg, MSG_HEADER_TYPE, 0);
    m->body = pt__fb_i64(&msg, MSG_BODY_LENGTH, 0);
    assert_int_equal(pt__fb_i16(&msg, MSG_VERSION, 0), PT_IPC_V5);
    assert_true(pt__fb_table_get(&msg, MSG_HEADER, &hdr));
    m->dict_id = -1;
    if (m->type == PT_IPC_HDR_DICTIONARY_BATCH) {
      m->dict_id = pt__fb_i64(&hdr, DB_ID, 0);
      m->delta = pt__fb_bool(&hdr, DB_IS_DELTA, false);
      assert_true(pt__fb_table_get(&hdr, DB_DATA, &rb));
    } else {
      rb = hdr;
    }
    if (m->type != PT_IPC_HDR_SCHEMA) {
      m->length = pt__fb_i64(&rb, RB_LENGTH, 0);
      m->compressed = pt__fb_table_get(&rb, RB_COMPRESSION, &comp);
    }
    assert_null(r.bad);
    assert_int_equal(m->body % 8, 0);
    pos += 8 + len + m->body;
  }
  return n;
}

/* ------------------------------------------------------------------------ */
/* Round trips */

static void roundtrip_all(pt_ipc_format format, pt_compression codec) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray batches[4];
  int64_t rows[4] = {100, 37, 0, 1};
  for (int i = 0; i < 4; i++) make_all_batch(&schema, rows[i], i, &batches[i]);
  pt_ipc_write_options o;
  opts_init(&o, format, codec);
  bytes b = write_batches(&schema, batches, 4, &o);
  struct ArrowSchema got_schema;
  struct ArrowArray got[8];
  int n = read_batches(&b, &got_schema, got, 8);
  assert_int_equal(n, 4);
  char n1[256], n2[256];
  for (int64_t c = 0; c < schema.n_children; c++) {
    pt_type_name(schema.children[c], n1, sizeof n1);
    pt_type_name(got_schema.children[c], n2, sizeof n2);
    assert_string_equal(n1, n2);
    assert_string_equal(schema.children[c]->name, got_schema.children[c]->name);
    assert_int_equal(schema.children[c]->flags, got_schema.children[c]->flags);
  }
  for (int i = 0; i < 4; i++) {
    assert_batches_equal(&schema, &batches[i], &got[i]);
    got[i].release(&got[i]);
    batches[i].release(&batches[i]);
  }
  msg_info msgs[32];
  int nm = list_messages(&b, msgs, 32);
  /* schema, 3 dictionaries (once), 4 batches */
  assert_int_equal(nm, 8);
  for (int i = 4; i < nm; i++) assert_int_equal(msgs[i].compressed, codec != PT_COMPRESSION_NONE);
  got_schema.release(&got_schema);
  schema.release(&schema);
  bytes_free(&b);
}

static void test_roundtrip_stream(void **state) { roundtrip_all(PT_IPC_STREAM, PT_COMPRESSION_NONE); }
static void test_roundtrip_file(void **state) { roundtrip_all(PT_IPC_FILE, PT_COMPRESSION_NONE); }
static void test_roundtrip_lz4(void **state) {
  roundtrip_all(PT_IPC_STREAM, PT_COMPRESSION_LZ4_FRAME);
  roundtrip_all(PT_IPC_FILE, PT_COMPRESSION_LZ4_FRAME);
}
static void test_roundtrip_zstd(void **state) {
  roundtrip_all(PT_IPC_STREAM, PT_COMPRESSION_ZSTD);
  roundtrip_all(PT_IPC_FILE, PT_COMPRESSION_ZSTD);
}

/* Slices at every bit offset: offsets rebased, bitmaps shifted. */
static void test_slices(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray full;
  make_all_batch(&schema, 90, 5, &full);
  for (int codec = 0; codec < 2; codec++) {
    for (int64_t off = 0; off < 20; off += (off < 9 ? 1 : 5)) {
      int64_t len = off % 3 == 0 ? 0 : 61 - off;
      struct ArrowArray sl;
      CHECK(pt_array_slice(&full, off, len, &sl, &err));
      pt_ipc_write_options o;
      opts_init(&o, off % 2 ? PT_IPC_FILE : PT_IPC_STREAM,
                codec ? PT_COMPRESSION_ZSTD : PT_COMPRESSION_NONE);
      bytes b = write_batches(&schema, &sl, 1, &o);
      struct ArrowSchema gs;
      struct ArrowArray got;
      assert_int_equal(read_batches(&b, &gs, &got, 1), 1);
      assert_int_equal(got.length, len);
      assert_int_equal(got.offset, 0);
      assert_rows_equal(&schema, &full, off, &got, 0, len);
      got.release(&got);
      gs.release(&gs);
      sl.release(&sl);
      bytes_free(&b);
    }
  }
  full.release(&full);
  schema.release(&schema);
}

/* Columns whose null_count is unknown (-1) get it computed; a column with
 * no nulls gets an empty validity buffer. */
static void test_null_count_unknown(void **state) {
  struct ArrowSchema schema;
  schema_node(&schema, "+s", "", 2);
  schema_node(schema.children[0], "i", "a", 0);
  schema_node(schema.children[1], "i", "b", 0);
  pt_builder *root;
  CHECK(pt_builder_new(&schema, &root, &err));
  for (int i = 0; i < 20; i++) {
    if (i % 3) assert_int_equal(pt_builder_append_int(pt_builder_child(root, 0), i), PT_OK);
    else assert_int_equal(pt_builder_append_null(pt_builder_child(root, 0), 1), PT_OK);
    assert_int_equal(pt_builder_append_int(pt_builder_child(root, 1), i), PT_OK);
    assert_int_equal(pt_builder_append_row(root), PT_OK);
  }
  struct ArrowArray batch;
  CHECK(pt_builder_finish(root, &batch, &err));
  pt_builder_free(root);
  batch.children[0]->null_count = -1;
  bytes b = write_batches(&schema, &batch, 1, NULL);
  struct ArrowSchema gs;
  struct ArrowArray got;
  assert_int_equal(read_batches(&b, &gs, &got, 1), 1);
  assert_int_equal(got.children[0]->null_count, 7);
  assert_int_equal(got.children[1]->null_count, 0);
  assert_null(got.children[1]->buffers[0]);
  assert_batches_equal(&schema, &batch, &got);
  got.release(&got);
  gs.release(&gs);
  batch.release(&batch);
  schema.release(&schema);
  bytes_free(&b);
}

static void test_zero_batches(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  for (int f = 0; f < 2; f++) {
    pt_ipc_write_options o;
    opts_init(&o, f ? PT_IPC_FILE : PT_IPC_STREAM, PT_COMPRESSION_NONE);
    bytes b = write_batches(&schema, NULL, 0, &o);
    struct ArrowSchema gs;
    assert_int_equal(read_batches(&b, &gs, NULL, 0), 0);
    assert_int_equal(gs.n_children, N_ALL_COLUMNS);
    gs.release(&gs);
    bytes_free(&b);
  }
  schema.release(&schema);
}

/* ------------------------------------------------------------------------ */
/* Dictionaries */

static void dict_schema(struct ArrowSchema *s) {
  schema_node(s, "+s", "", 2);
  schema_dict(s->children[0], "i", "u", "d");
  schema_node(s->children[1], "l", "x", 0);
}

/* A batch of dict_schema whose dictionary is values[0..n) and whose rows
 * use indices idx[0..rows). */
static void dict_batch(const struct ArrowSchema *schema, const char *const *values, int n,
                       const int *idx, int rows, struct ArrowArray *out) {
  pt_builder *root;
  CHECK(pt_builder_new(schema, &root, &err));
  pt_builder *d = pt_builder_child(root, 0);
  for (int k = 0; k < n; k++)
    assert_int_equal(pt_builder_append_bytes(pt_builder_dictionary(d), values[k],
                                             (int64_t)strlen(values[k])), PT_OK);
  for (int r = 0; r < rows; r++) {
    if (idx[r] < 0) assert_int_equal(pt_builder_append_null(d, 1), PT_OK);
    else assert_int_equal(pt_builder_append_int(d, idx[r]), PT_OK);
    assert_int_equal(pt_builder_append_int(pt_builder_child(root, 1), r), PT_OK);
    assert_int_equal(pt_builder_append_row(root), PT_OK);
  }
  CHECK(pt_builder_finish(root, out, &err));
  pt_builder_free(root);
}

static void test_dictionary_deltas_and_replacements(void **state) {
  struct ArrowSchema schema;
  dict_schema(&schema);
  const char *v1[] = {"a", "b"}, *v2[] = {"a", "b", "c", "d"}, *v3[] = {"x", "y"};
  int i1[] = {0, 1, -1, 1}, i2[] = {3, 2, 0}, i3[] = {1, 0};
  struct ArrowArray in[5];
  dict_batch(&schema, v1, 2, i1, 4, &in[0]);
  dict_batch(&schema, v2, 4, i2, 3, &in[1]); /* grows: delta */
  dict_batch(&schema, v2, 4, i2, 2, &in[2]); /* same: nothing */
  dict_batch(&schema, v3, 2, i3, 2, &in[3]); /* other: replacement */
  dict_batch(&schema, v3, 0, NULL, 0, &in[4]); /* empty batch, empty dictionary */
  for (int codec = 0; codec < 3; codec++) {
    pt_ipc_write_options o;
    opts_init(&o, PT_IPC_STREAM, (pt_compression)codec);
    bytes b = write_batches(&schema, in, 4, &o);
    msg_info m[16];
    int nm = list_messages(&b, m, 16);
    assert_int_equal(nm, 8);
    int types[] = {1, 2, 3, 2, 3, 3, 2, 3};
    for (int k = 0; k < nm; k++) assert_int_equal(m[k].type, types[k]);
    assert_int_equal(m[1].delta, 0);
    assert_int_equal(m[1].length, 2);
    assert_int_equal(m[3].delta, 1);
    assert_int_equal(m[3].length, 2); /* only "c", "d" */
    assert_int_equal(m[6].delta, 0);
    assert_int_equal(m[6].length, 2);
    /* Every batch read stays valid after later dictionary batches and
     * after the stream is released. */
    struct ArrowSchema gs;
    struct ArrowArray got[4];
    assert_int_equal(read_batches(&b, &gs, got, 4), 4);
    assert_int_equal(got[0].children[0]->dictionary->length, 2);
    assert_int_equal(got[1].children[0]->dictionary->length, 4);
    assert_int_equal(got[3].children[0]->dictionary->length, 2);
    for (int k = 0; k < 4; k++) {
      assert_batches_equal(&schema, &in[k], &got[k]);
      CHECK(pt_array_validate(&gs, &got[k], &err));
    }
    for (int k = 0; k < 4; k++) got[k].release(&got[k]);
    gs.release(&gs);
    bytes_free(&b);
  }
  /* Without deltas a grown dictionary is a replacement. */
  pt_ipc_write_options o;
  opts_init(&o, PT_IPC_STREAM, PT_COMPRESSION_NONE);
  o.emit_dictionary_deltas = 0;
  bytes b = write_batches(&schema, in, 2, &o);
  msg_info m[8];
  assert_int_equal(list_messages(&b, m, 8), 5);
  assert_int_equal(m[3].type, PT_IPC_HDR_DICTIONARY_BATCH);
  assert_int_equal(m[3].delta, 0);
  assert_int_equal(m[3].length, 4);
  bytes_free(&b);

  /* File format: deltas fine, replacements refused with a message. */
  opts_init(&o, PT_IPC_FILE, PT_COMPRESSION_NONE);
  b = write_batches(&schema, in, 3, &o);
  struct ArrowSchema gs;
  struct ArrowArray got[3];
  assert_int_equal(read_batches(&b, &gs, got, 3), 3);
  for (int k = 0; k < 3; k++) {
    assert_batches_equal(&schema, &in[k], &got[k]);
    got[k].release(&got[k]);
  }
  gs.release(&gs);
  bytes_free(&b);
  pt_ipc_writer *w;
  pt_error err;
  assert_int_equal(pt_ipc_writer_open_buffer(&schema, &o, &w, &err), PT_OK);
  assert_int_equal(pt_ipc_writer_write(w, &in[0], &err), PT_OK);
  assert_int_equal(pt_ipc_writer_write(w, &in[3], &err), PT_EINVAL);
  assert_string_equal(err.message,
                      "ipc: record batch 1: column 'd': the dictionary changed since the previous "
                      "batch, and the IPC file format cannot replace dictionaries; use the "
                      "stream format, or keep dictionaries identical or only growing (with "
                      "emit_dictionary_deltas)");
  pt_ipc_writer_free(w);
  for (int k = 0; k < 5; k++) in[k].release(&in[k]);
  schema.release(&schema);
}

/* Slices of one dictionary-encoded array share its dictionary: written
 * once. */
static void test_dictionary_shared_by_slices(void **state) {
  struct ArrowSchema schema;
  dict_schema(&schema);
  const char *v[] = {"p", "q", "r"};
  int idx[] = {0, 1, 2, 2, 1, 0, -1, 1, 2, 0};
  struct ArrowArray full, parts[3];
  dict_batch(&schema, v, 3, idx, 10, &full);
  CHECK(pt_array_slice(&full, 0, 3, &parts[0], &err));
  CHECK(pt_array_slice(&full, 3, 4, &parts[1], &err));
  CHECK(pt_array_slice(&full, 7, 3, &parts[2], &err));
  bytes b = write_batches(&schema, parts, 3, NULL);
  msg_info m[8];
  assert_int_equal(list_messages(&b, m, 8), 5);
  struct ArrowSchema gs;
  struct ArrowArray got[3];
  assert_int_equal(read_batches(&b, &gs, got, 3), 3);
  assert_rows_equal(&schema, &full, 0, &got[0], 0, 3);
  assert_rows_equal(&schema, &full, 3, &got[1], 0, 4);
  assert_rows_equal(&schema, &full, 7, &got[2], 0, 3);
  for (int k = 0; k < 3; k++) {
    got[k].release(&got[k]);
    parts[k].release(&parts[k]);
  }
  gs.release(&gs);
  full.release(&full);
  schema.release(&schema);
  bytes_free(&b);
}

/* A dictionary whose values hold a dictionary-encoded field: inner ones are
 * written first; replacing an inner one rewrites the outer one. */
static void test_nested_dictionaries(void **state) {
  struct ArrowSchema schema;
  schema_node(&schema, "+s", "", 1);
  struct ArrowSchema *col = schema.children[0];
  schema_node(col, "s", "outer", 0);
  struct ArrowSchema values;
  schema_node(&values, "+s", NULL, 1);
  schema_dict(values.children[0], "c", "u", "inner");
  CHECK(pt_schema_set_dictionary(col, &values, &err));
  struct ArrowArray in[3];
  for (int k = 0; k < 3; k++) {
    pt_builder *root;
    CHECK(pt_builder_new(&schema, &root, &err));
    pt_builder *outer = pt_builder_child(root, 0);
    pt_builder *ov = pt_builder_dictionary(outer);
    pt_builder *inner = pt_builder_child(ov, 0);
    pt_builder *iv = pt_builder_dictionary(inner);
    const char *words[] = {"one", "two", "three"};
    for (int j = 0; j < 3; j++) {
      char w[16];
      snprintf(w, sizeof w, "%s%d", words[j], k == 2 ? 9 : 0); /* batch 2: new inner */
      assert_int_equal(pt_builder_append_bytes(iv, w, (int64_t)strlen(w)), PT_OK);
    }
    for (int j = 0; j < 4; j++) {
      assert_int_equal(pt_builder_append_int(inner, (j + k) % 3), PT_OK);
      assert_int_equal(pt_builder_append_row(ov), PT_OK);
    }
    for (int r = 0; r < 5; r++) {
      assert_int_equal(pt_builder_append_int(outer, (r * 3 + k) % 4), PT_OK);
      assert_int_equal(pt_builder_append_row(root), PT_OK);
    }
    CHECK(pt_builder_finish(root, &in[k], &err));
    pt_builder_free(root);
  }
  bytes b = write_batches(&schema, in, 3, NULL);
  msg_info m[16];
  int nm = list_messages(&b, m, 16);
  /* schema, inner, outer, batch, outer replaced (k=1: new indices), batch,
   * inner replaced, outer rewritten, batch */
  assert_true(nm >= 7);
  assert_int_equal(m[1].type, PT_IPC_HDR_DICTIONARY_BATCH);
  assert_int_equal(m[2].type, PT_IPC_HDR_DICTIONARY_BATCH);
  assert_true(m[1].dict_id != m[2].dict_id);
  struct ArrowSchema gs;
  struct ArrowArray got[3];
  assert_int_equal(read_batches(&b, &gs, got, 3), 3);
  for (int k = 0; k < 3; k++) {
    assert_batches_equal(&schema, &in[k], &got[k]);
    got[k].release(&got[k]);
    in[k].release(&in[k]);
  }
  gs.release(&gs);
  schema.release(&schema);
  bytes_free(&b);
}

/* ------------------------------------------------------------------------ */
/* Zero-copy and lifetimes */

static int freed;
static void count_free(void *data, void *arg) {
  freed++;
  free(data);
}

static void test_zero_copy_and_lifetime(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray batch;
  make_all_batch(&schema, 64, 1, &batch);
  bytes b = write_batches(&schema, &batch, 1, NULL);
  freed = 0;
  struct ArrowArrayStream s;
  CHECK(pt_ipc_read_buffer(b.data, b.size, count_free, NULL, &s, &err));
  struct ArrowArray got;
  assert_int_equal(s.get_next(&s, &got), 0);
  /* int64 values and utf8 bytes lie in the input. */
  const uint8_t *p = got.children[8]->buffers[1];
  assert_true(p >= b.data && p < b.data + b.size);
  p = got.children[13]->buffers[2];
  assert_true(p >= b.data && p < b.data + b.size);
  /* Move a child out: it keeps the input alive on its own. */
  struct ArrowArray child;
  pt__array_move(got.children[13], &child);
  s.release(&s);
  assert_int_equal(freed, 0);
  got.release(&got);
  assert_int_equal(freed, 0);
  int64_t len;
  pt__view v;
  CHECK(pt__view_init(&v, schema.children[13], &child, &err));
  pt__view_get_bytes(&v, 1, &len);
  pt__view_reset(&v);
  child.release(&child);
  assert_int_equal(freed, 1);
  batch.release(&batch);
  schema.release(&schema);
}

/* Unaligned input still reads (buffers copied where alignment needs it). */
static void test_unaligned_input(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray batch;
  make_all_batch(&schema, 50, 2, &batch);
  bytes b = write_batches(&schema, &batch, 1, NULL);
  uint8_t *odd = malloc((size_t)b.size + 1);
  memcpy(odd + 1, b.data, (size_t)b.size);
  bytes shifted = {odd + 1, b.size};
  struct ArrowSchema gs;
  struct ArrowArray got;
  assert_int_equal(read_batches(&shifted, &gs, &got, 1), 1);
  assert_batches_equal(&schema, &batch, &got);
  assert_int_equal((uintptr_t)got.children[8]->buffers[1] % 8, 0);
  got.release(&got);
  gs.release(&gs);
  free(odd);
  bytes_free(&b);
  batch.release(&batch);
  schema.release(&schema);
}

/* ------------------------------------------------------------------------ */
/* Paths, file descriptors, framing */

static void check_stream(struct ArrowArrayStream *s, const struct ArrowSchema *schema,
                         const struct ArrowArray *want, int n) {
  struct ArrowSchema gs;
  assert_int_equal(s->get_schema(s, &gs), 0);
  for (int k = 0; k < n; k++) {
    struct ArrowArray a;
    assert_int_equal(s->get_next(s, &a), 0);
    assert_non_null(a.release);
    assert_batches_equal(schema, &want[k], &a);
    a.release(&a);
  }
  struct ArrowArray end;
  assert_int_equal(s->get_next(s, &end), 0);
  assert_null(end.release);
  gs.release(&gs);
  s->release(s);
  assert_null(s->release);
}

static void test_path_and_fd(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray batches[2];
  make_all_batch(&schema, 40, 3, &batches[0]);
  make_all_batch(&schema, 7, 4, &batches[1]);
  char path[] = "/tmp/pt_test_ipc_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  for (int f = 0; f < 2; f++) {
    pt_ipc_write_options o;
    opts_init(&o, f ? PT_IPC_FILE : PT_IPC_STREAM, f ? PT_COMPRESSION_LZ4_FRAME : PT_COMPRESSION_NONE);
    pt_ipc_writer *w;
    CHECK(pt_ipc_writer_open_path(path, &schema, &o, &w, &err));
    CHECK(pt_ipc_writer_write(w, &batches[0], &err));
    CHECK(pt_ipc_writer_write(w, &batches[1], &err));
    CHECK(pt_ipc_writer_close(w, &err));
    pt_ipc_writer_free(w);
    struct ArrowArrayStream s;
    CHECK(pt_ipc_read_path(path, &s, &err));
    check_stream(&s, &schema, batches, 2);
    /* Through a file descriptor (read as a stream, the file's too). */
    fd = open(path, O_RDONLY);
    CHECK(pt_ipc_read_fd(fd, &s, &err));
    check_stream(&s, &schema, batches, 2);
    close(fd);
  }
  unlink(path);
  batches[0].release(&batches[0]);
  batches[1].release(&batches[1]);
  schema.release(&schema);
}

typedef struct pipe_job {
  int fd;
  const struct ArrowSchema *schema;
  struct ArrowArray *batches;
  int n;
} pipe_job;

static void *pipe_writer(void *arg) {
  pipe_job *j = arg;
  pt_ipc_writer *w;
  pt_error err;
  if (pt_ipc_writer_open_fd(j->fd, j->schema, NULL, &w, &err) != PT_OK) return NULL;
  for (int k = 0; k < j->n; k++) pt_ipc_writer_write(w, &j->batches[k], &err);
  pt_ipc_writer_close(w, &err);
  pt_ipc_writer_free(w);
  close(j->fd);
  return NULL;
}

static void test_pipe(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray batches[3];
  for (int k = 0; k < 3; k++) make_all_batch(&schema, 500 * k + 3, k, &batches[k]);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pipe_job job = {fds[1], &schema, batches, 3};
  pthread_t t;
  pthread_create(&t, NULL, pipe_writer, &job);
  struct ArrowArrayStream s;
  CHECK(pt_ipc_read_fd(fds[0], &s, &err));
  check_stream(&s, &schema, batches, 3);
  pthread_join(t, NULL);
  close(fds[0]);
  for (int k = 0; k < 3; k++) batches[k].release(&batches[k]);
  schema.release(&schema);
}

/* Pre-0.15 framing (no continuation marker) and V4 metadata are read. */
static void test_legacy_framing_v4(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray batch;
  make_all_batch(&schema, 30, 9, &batch);
  /* Without the union columns, which V4 lays out with a validity buffer
   * more: V5 bytes relabelled V4 are no longer the same data there. */
  schema.n_children = batch.n_children = N_HASHABLE_COLUMNS;
  bytes b = write_batches(&schema, &batch, 1, NULL);
  uint8_t *old = malloc((size_t)b.size);
  int64_t in = 0, out = 0;
  for (;;) {
    int32_t len = pt__load_i32(b.data + in + 4);
    pt__store_i32(old + out, len);
    if (len == 0) {
      out += 4;
      break;
    }
    /* Set Message.version to V4 through the vtable. */
    uint8_t *meta = b.data + in + 8;
    uint32_t root = pt__load_u32(meta);
    int32_t vt = (int32_t)root - pt__load_i32(meta + root);
    uint16_t fo = pt__load_u16(meta + vt + 4);
    assert_true(fo != 0);
    meta[root + fo] = PT_IPC_V4;
    pt__fb_reader r;
    pt__fb_table msg;
    assert_true(pt__fb_reader_init(&r, meta, len, &msg));
    int64_t body = pt__fb_i64(&msg, MSG_BODY_LENGTH, 0);
    memcpy(old + out + 4, meta, (size_t)(len + body));
    in += 8 + len + body;
    out += 4 + len + body;
  }
  bytes legacy = {old, out};
  struct ArrowSchema gs;
  struct ArrowArray got;
  assert_int_equal(read_batches(&legacy, &gs, &got, 1), 1);
  assert_batches_equal(&schema, &batch, &got);
  got.release(&got);
  gs.release(&gs);
  /* A stream without its end marker is fine too. */
  legacy.size -= 4;
  assert_int_equal(read_batches(&legacy, &gs, &got, 1), 1);
  got.release(&got);
  gs.release(&gs);
  free(old);
  bytes_free(&b);
  schema.n_children = batch.n_children = N_ALL_COLUMNS;
  batch.release(&batch);
  schema.release(&schema);
}

/* ------------------------------------------------------------------------ */
/* C Stream Interface contract, writer misuse */

static void test_stream_contract(void **state) {
  struct ArrowSchema schema;
  dict_schema(&schema);
  const char *v[] = {"a"};
  int idx[] = {0, 0};
  struct ArrowArray batch;
  dict_batch(&schema, v, 1, idx, 2, &batch);
  bytes b = write_batches(&schema, &batch, 1, NULL);
  struct ArrowArrayStream s;
  CHECK(pt_ipc_read_buffer(b.data, b.size, NULL, NULL, &s, &err));
  struct ArrowSchema s1, s2;
  assert_int_equal(s.get_schema(&s, &s1), 0);
  assert_int_equal(s.get_schema(&s, &s2), 0);
  assert_ptr_not_equal(s1.format, s2.format); /* fresh copies */
  assert_string_equal(s1.children[0]->name, "d");
  s1.release(&s1);
  assert_string_equal(s2.children[0]->dictionary->format, "u");
  s2.release(&s2);
  assert_null(s.get_last_error(&s));
  struct ArrowArray a;
  assert_int_equal(s.get_next(&s, &a), 0);
  a.release(&a);
  assert_int_equal(s.get_next(&s, &a), 0);
  assert_null(a.release);
  assert_int_equal(s.get_next(&s, &a), 0); /* stays at the end */
  assert_null(a.release);
  s.release(&s);

  /* Writer states. */
  pt_ipc_writer *w;
  pt_error err;
  assert_int_equal(pt_ipc_writer_open_buffer(&schema, NULL, &w, &err), PT_OK);
  void *data;
  int64_t size;
  assert_int_equal(pt_ipc_writer_take_buffer(w, &data, &size, &err), PT_ESTATE);
  assert_int_equal(pt_ipc_writer_close(w, &err), PT_OK);
  assert_int_equal(pt_ipc_writer_write(w, &batch, &err), PT_ESTATE);
  assert_string_equal(err.message, "ipc: the writer is closed");
  assert_int_equal(pt_ipc_writer_take_buffer(w, &data, &size, &err), PT_OK);
  free(data);
  pt_ipc_writer_free(w);
  /* A batch of another shape. */
  struct ArrowSchema other;
  make_all_schema(&other);
  struct ArrowArray ob;
  make_all_batch(&other, 3, 0, &ob);
  assert_int_equal(pt_ipc_writer_open_buffer(&schema, NULL, &w, &err), PT_OK);
  assert_int_equal(pt_ipc_writer_write(w, &ob, &err), PT_EINVAL);
  assert_string_equal(err.message,
                      "ipc: record batch 0 does not match the schema: array has 45 children, "
                      "its schema 2");
  pt_ipc_writer_free(w);
  /* Null rows at the top level cannot be written. */
  pt_builder *nb;
  CHECK(pt_builder_new(&schema, &nb, &err));
  assert_int_equal(pt_builder_append_null(nb, 2), PT_OK);
  struct ArrowArray nulls;
  CHECK(pt_builder_finish(nb, &nulls, &err));
  pt_builder_free(nb);
  assert_int_equal(pt_ipc_writer_open_buffer(&schema, NULL, &w, &err), PT_OK);
  assert_int_equal(pt_ipc_writer_write(w, &nulls, &err), PT_EINVAL);
  assert_string_equal(err.message, "ipc: record batch 0 has null rows; a record batch cannot have "
                                   "nulls at the top level");
  pt_ipc_writer_free(w);
  nulls.release(&nulls);
  /* Not a struct schema. */
  assert_int_equal(pt_ipc_writer_open_buffer(other.children[1], NULL, &w, &err), PT_EINVAL);
  assert_string_equal(err.message, "ipc: the schema must be a struct (\"+s\") whose children are "
                                   "the columns, not 'b'");
  ob.release(&ob);
  other.release(&other);
  /* write_stream: a reader's stream into a writer. */
  CHECK(pt_ipc_read_buffer(b.data, b.size, NULL, NULL, &s, &err));
  CHECK(pt_ipc_writer_open_buffer(&schema, NULL, &w, &err));
  CHECK(pt_ipc_writer_write_stream(w, &s, &err));
  CHECK(pt_ipc_writer_close(w, &err));
  CHECK(pt_ipc_writer_take_buffer(w, &data, &size, &err));
  assert_int_equal(size, b.size);
  assert_memory_equal(data, b.data, (size_t)size);
  free(data);
  pt_ipc_writer_free(w);
  s.release(&s);
  batch.release(&batch);
  schema.release(&schema);
  bytes_free(&b);
}

/* A writer into the caller's pt_buf writes the same bytes as one into a
 * fresh buffer, after what the buffer held; reused from len = 0, it writes
 * into the same memory without growing it. */
static void test_writer_into_callers_buffer(void **state) {
  pt_error err;
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray batch;
  make_all_batch(&schema, 40, 3, &batch);
  pt_ipc_write_options opts[3];
  for (int k = 0; k < 3; k++) pt_ipc_write_options_init(&opts[k]);
  opts[1].format = PT_IPC_FILE;
  opts[2].compression = PT_COMPRESSION_ZSTD;
  pt_buf buf = {0};
  for (int k = 0; k < 3; k++) {
    bytes want = write_batches(&schema, &batch, 1, &opts[k]);
    pt_ipc_writer *w;
    /* Appends after what is there (a prefix of 5 bytes). */
    buf.len = 0;
    CHECK(pt__buf_reserve(&buf, 5));
    memcpy(buf.data, "head:", 5);
    buf.len = 5;
    CHECK(pt_ipc_writer_open_buf(&buf, &schema, &opts[k], &w, &err));
    CHECK(pt_ipc_writer_write(w, &batch, &err));
    CHECK(pt_ipc_writer_close(w, &err));
    void *data;
    int64_t size;
    assert_int_equal(pt_ipc_writer_take_buffer(w, &data, &size, &err), PT_ESTATE);
    assert_string_equal(err.message, "ipc: this writer appends to your pt_buf: the bytes are "
                                     "there, nothing to take");
    pt_ipc_writer_free(w); /* leaves buf alone */
    assert_int_equal(buf.len, 5 + (size_t)want.size);
    assert_memory_equal(buf.data, "head:", 5);
    assert_memory_equal(buf.data + 5, want.data, (size_t)want.size);
    /* The same stream again from len = 0: same memory, same bytes. */
    char *memory = buf.data;
    size_t cap = buf.cap;
    buf.len = 0;
    CHECK(pt_ipc_writer_open_buf(&buf, &schema, &opts[k], &w, &err));
    CHECK(pt_ipc_writer_write(w, &batch, &err));
    CHECK(pt_ipc_writer_close(w, &err));
    pt_ipc_writer_free(w);
    assert_ptr_equal(buf.data, memory);
    assert_int_equal(buf.cap, cap);
    assert_int_equal(buf.len, (size_t)want.size);
    assert_memory_equal(buf.data, want.data, (size_t)want.size);
    /* pyarrow-independent check: it reads back. */
    struct ArrowArrayStream s;
    CHECK(pt_ipc_read_buffer(buf.data, (int64_t)buf.len, NULL, NULL, &s, &err));
    struct ArrowArray got;
    assert_int_equal(s.get_next(&s, &got), 0);
    assert_int_equal(got.length, 40);
    got.release(&got);
    s.release(&s);
    bytes_free(&want);
  }
  /* Misuse. */
  pt_ipc_writer *w = (pt_ipc_writer *)&buf; /* must be set to NULL on failure */
  assert_int_equal(pt_ipc_writer_open_buf(NULL, &schema, NULL, &w, &err), PT_EINVAL);
  assert_null(w);
  pt_buf bad = {NULL, 0, 16};
  assert_int_equal(pt_ipc_writer_open_buf(&bad, &schema, NULL, &w, &err), PT_EINVAL);
  assert_string_equal(err.message, "ipc: the pt_buf is not valid (len 0, cap 16, no data); start "
                                   "from one zeroed or made by protium");
  /* A failed open leaves the buffer as it was. */
  size_t len = buf.len;
  assert_int_equal(pt_ipc_writer_open_buf(&buf, schema.children[1], NULL, &w, &err), PT_EINVAL);
  assert_int_equal(buf.len, len);
  pt_buf_free(&buf);
  assert_null(buf.data);
  batch.release(&batch);
  schema.release(&schema);
}

/* A buffer compressed in parts (as the writer does for a big column on
 * several threads) decompresses to the whole: ZSTD frames one after another,
 * LZ4 one frame of independent blocks (checked by liblz4's own decoder,
 * header checksum included). Compressible and incompressible parts (the
 * latter stored as they are), fast, accelerated and HC levels of LZ4. */
static void test_compress_in_parts(void **state) {
  pt_error err;
  const int64_t total = 2 * PT__COMPRESS_PART + 12345;
  uint8_t *src = malloc((size_t)total);
  uint32_t x = 12345;
  for (int64_t i = 0; i < total; i++) {
    x = x * 1103515245u + 12345u;
    /* First part: text-like; second: noise; third: mixed. */
    int64_t part = i / PT__COMPRESS_PART;
    src[i] = part == 0 ? (uint8_t)("protium "[i % 8]) : part == 1 ? (uint8_t)(x >> 24)
                                                                  : (uint8_t)(i % 7 ? 'a' : x >> 24);
  }
  struct {
    pt_compression codec;
    int level;
  } cases[] = {{PT_COMPRESSION_LZ4_FRAME, 0}, {PT_COMPRESSION_LZ4_FRAME, -5},
               {PT_COMPRESSION_LZ4_FRAME, 9}, {PT_COMPRESSION_ZSTD, 1},
               {PT_COMPRESSION_ZSTD, 0}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int64_t parts = (total + PT__COMPRESS_PART - 1) / PT__COMPRESS_PART, cap = 0;
    for (int64_t k = 0; k < parts; k++)
      cap += pt__compress_part_bound(cases[c].codec, PT__COMPRESS_PART);
    uint8_t *z = malloc((size_t)cap);
    int64_t zlen = 0;
    for (int64_t k = 0; k < parts; k++) {
      int64_t n = k + 1 < parts ? PT__COMPRESS_PART : total - k * PT__COMPRESS_PART, w;
      CHECK(pt__compress_part(cases[c].codec, cases[c].level, src + k * PT__COMPRESS_PART, n,
                              total, k == 0, k + 1 == parts, z + zlen,
                              pt__compress_part_bound(cases[c].codec, n), &w, &err));
      zlen += w;
    }
    uint8_t *out;
    CHECK(pt__decompress(cases[c].codec, z, zlen, total, &out, &err));
    assert_memory_equal(out, src, (size_t)total);
    pt__free(out);
    /* Cut short: an error, not a shorter result. */
    assert_int_equal(pt__decompress(cases[c].codec, z, zlen - 5, total, &out, &err), PT_EFORMAT);
    if (cases[c].codec == PT_COMPRESSION_LZ4_FRAME) {
      /* A wrong header checksum is refused by liblz4. */
      z[14] ^= 1;
      assert_int_equal(pt__decompress(cases[c].codec, z, zlen, total, &out, &err), PT_EFORMAT);
      assert_non_null(strstr(err.message, "lz4 data is corrupt"));
      z[14] ^= 1;
      /* The noise part was stored as it is: smaller than its bound. */
      assert_true(zlen < 2 * total);
    }
    free(z);
  }
  /* Parts so compressible that decompression grows its output as it goes
   * (streaming, from one frame into the next). */
  memset(src, 0, (size_t)total);
  for (int codec = 0; codec < 2; codec++) {
    pt_compression cc = codec ? PT_COMPRESSION_ZSTD : PT_COMPRESSION_LZ4_FRAME;
    int64_t parts = (total + PT__COMPRESS_PART - 1) / PT__COMPRESS_PART, zlen = 0;
    uint8_t *z = malloc((size_t)(parts * pt__compress_part_bound(cc, PT__COMPRESS_PART)));
    for (int64_t k = 0; k < parts; k++) {
      int64_t n = k + 1 < parts ? PT__COMPRESS_PART : total - k * PT__COMPRESS_PART, w;
      CHECK(pt__compress_part(cc, 1, src, n, total, k == 0, k + 1 == parts, z + zlen,
                              pt__compress_part_bound(cc, n), &w, &err));
      zlen += w;
    }
    assert_true(pt__decompress_first_cap(zlen, total) < total);
    uint8_t *out;
    CHECK(pt__decompress(cc, z, zlen, total, &out, &err));
    assert_memory_equal(out, src, (size_t)total);
    pt__free(out);
    free(z);
  }
  /* Misuse of the LZ4 part API is an internal error, not an overflow. */
  uint8_t small[64];
  int64_t w;
  assert_int_equal(pt__compress_part(PT_COMPRESSION_LZ4_FRAME, 0, src, PT__COMPRESS_PART + 1,
                                     total, true, true, small, sizeof small, &w, &err),
                   PT_EINTERNAL);
  free(src);
}

/* The default ZSTD level is Arrow C++'s, 1: the same bytes as level 1, and
 * not those of libzstd's own default, 3. */
static void test_zstd_default_level(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray batch;
  make_all_batch(&schema, 2000, 5, &batch);
  pt_ipc_write_options o;
  bytes b[3];
  for (int level = 0; level < 3; level++) {
    pt_ipc_write_options_init(&o);
    o.compression = PT_COMPRESSION_ZSTD;
    o.compression_level = level == 2 ? 3 : level;
    b[level] = write_batches(&schema, &batch, 1, &o);
  }
  assert_int_equal(b[0].size, b[1].size);
  assert_memory_equal(b[0].data, b[1].data, (size_t)b[0].size);
  assert_true(b[2].size != b[1].size || memcmp(b[2].data, b[1].data, (size_t)b[1].size) != 0);
  for (int k = 0; k < 3; k++) bytes_free(&b[k]);
  batch.release(&batch);
  schema.release(&schema);
}

/* Every allocation failure reports PT_ENOMEM and leaks nothing (the ASan
 * build checks the leaks). */
static void test_allocation_failures(void **state) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray batch;
  make_all_batch(&schema, 20, 1, &batch);
  pt_ipc_write_options o;
  opts_init(&o, PT_IPC_FILE, PT_COMPRESSION_ZSTD);
  bytes good = write_batches(&schema, &batch, 1, &o);
  int write_ok = 0, read_ok = 0;
  for (int64_t n = 0; n < 2000 && !(write_ok && read_ok); n++) {
    pt_error err;
    pt_ipc_writer *w = NULL;
    pt__alloc_fail_after(n);
    int rc = pt_ipc_writer_open_buffer(&schema, &o, &w, &err);
    if (rc == PT_OK) rc = pt_ipc_writer_write(w, &batch, &err);
    if (rc == PT_OK) rc = pt_ipc_writer_close(w, &err);
    pt__alloc_fail_after(-1);
    if (rc != PT_OK) assert_int_equal(rc, PT_ENOMEM);
    else write_ok = 1;
    pt_ipc_writer_free(w);

    struct ArrowArrayStream s;
    pt__alloc_fail_after(n);
    rc = pt_ipc_read_buffer(good.data, good.size, NULL, NULL, &s, &err);
    struct ArrowArray a = {0};
    int e = 0;
    if (rc == PT_OK) {
      e = s.get_next(&s, &a);
      if (e == 0 && a.release) a.release(&a);
      s.release(&s);
    }
    pt__alloc_fail_after(-1);
    if (rc != PT_OK) assert_int_equal(rc, PT_ENOMEM);
    else if (e != 0) assert_int_equal(e, ENOMEM);
    else read_ok = 1;
  }
  assert_true(write_ok && read_ok);
  bytes_free(&good);
  batch.release(&batch);
  schema.release(&schema);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_stream),
      cmocka_unit_test(test_roundtrip_file),
      cmocka_unit_test(test_roundtrip_lz4),
      cmocka_unit_test(test_roundtrip_zstd),
      cmocka_unit_test(test_slices),
      cmocka_unit_test(test_null_count_unknown),
      cmocka_unit_test(test_zero_batches),
      cmocka_unit_test(test_dictionary_deltas_and_replacements),
      cmocka_unit_test(test_dictionary_shared_by_slices),
      cmocka_unit_test(test_nested_dictionaries),
      cmocka_unit_test(test_zero_copy_and_lifetime),
      cmocka_unit_test(test_unaligned_input),
      cmocka_unit_test(test_path_and_fd),
      cmocka_unit_test(test_pipe),
      cmocka_unit_test(test_legacy_framing_v4),
      cmocka_unit_test(test_stream_contract),
      cmocka_unit_test(test_writer_into_callers_buffer),
      cmocka_unit_test(test_compress_in_parts),
      cmocka_unit_test(test_zstd_default_level),
      cmocka_unit_test(test_allocation_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
