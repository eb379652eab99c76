/* test_ipc_corrupt.c — the IPC reader on bad input: every truncation of
 * valid streams and files, deterministic byte flips, hand-made metadata
 * (big-endian, unsupported types, old versions), buffers past the body and
 * out-of-range dictionary indices, with their exact error messages. Each
 * read must fail cleanly or give arrays that validate; the ASan build checks
 * that no byte outside the input is read.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test_ipc_util.h"
#include "arrow/flatbuf.h"
#include "arrow/ipc_int.h"

/* Reads everything from a private copy of data[0, size) (so that ASan sees
 * reads past its end); returns the first failure status or PT_OK. */
static int read_all_copy(const uint8_t *data, int64_t size, pt_error *err) {
  uint8_t *copy = malloc((size_t)(size ? size : 1));
  memcpy(copy, data, (size_t)size);
  struct ArrowArrayStream s;
  int rc = pt_ipc_read_buffer(copy, size, NULL, NULL, &s, err);
  if (rc != PT_OK) {
    assert_true(rc == PT_EFORMAT || rc == PT_ENOTSUP);
    free(copy);
    return rc;
  }
  struct ArrowSchema schema;
  assert_int_equal(s.get_schema(&s, &schema), 0);
  for (;;) {
    struct ArrowArray a;
    int e = s.get_next(&s, &a);
    if (e != 0) {
      assert_true(e == EINVAL || e == ENOSYS);
      assert_non_null(s.get_last_error(&s));
      snprintf(err->message, sizeof err->message, "%s", s.get_last_error(&s));
      rc = e == EINVAL ? PT_EFORMAT : PT_ENOTSUP;
      break;
    }
    if (a.release == NULL) break;
    pt_error verr;
    if (pt_array_validate(&schema, &a, &verr) != PT_OK)
      fail_msg("the reader returned an invalid batch: %s", verr.message);
    /* Touch every value through a JSON rendering (unless a null-type
     * column made a huge batch out of nothing). */
    if (a.length <= 4096) {
      pt_buf out = {0};
      pt_json_write_batch(&schema, &a, &out, &verr);
      pt_buf_free(&out);
    }
    a.release(&a);
  }
  schema.release(&schema);
  s.release(&s);
  free(copy);
  return rc;
}

/* A few small valid inputs of every type, with dictionaries. */
static bytes sample(pt_ipc_format f, pt_compression c, int rows) {
  struct ArrowSchema schema;
  make_all_schema(&schema);
  struct ArrowArray b[2];
  make_all_batch(&schema, rows, 1, &b[0]);
  make_all_batch(&schema, rows / 2 + 1, 2, &b[1]);
  pt_ipc_write_options o;
  opts_init(&o, f, c);
  bytes out = write_batches(&schema, b, 2, &o);
  b[0].release(&b[0]);
  b[1].release(&b[1]);
  schema.release(&schema);
  return out;
}

static void test_truncations(void **state) {
  struct {
    pt_ipc_format f;
    pt_compression c;
  } cases[] = {{PT_IPC_STREAM, PT_COMPRESSION_NONE},
               {PT_IPC_FILE, PT_COMPRESSION_NONE},
               {PT_IPC_STREAM, PT_COMPRESSION_ZSTD},
               {PT_IPC_FILE, PT_COMPRESSION_LZ4_FRAME}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    bytes b = sample(cases[k].f, cases[k].c, 6);
    pt_error err;
    assert_int_equal(read_all_copy(b.data, b.size, &err), PT_OK);
    int failures = 0;
    for (int64_t n = 0; n < b.size; n++) {
      if (read_all_copy(b.data, n, &err) != PT_OK) failures++;
    }
    /* A stream cut at a message boundary is a shorter valid stream; a file
     * without its footer is always an error. */
    if (cases[k].f == PT_IPC_FILE) assert_int_equal(failures, b.size);
    else assert_true(failures > b.size / 2);
    bytes_free(&b);
  }
}

/* The same through a file descriptor (the message-by-message reader). */
static int read_all_fd(const uint8_t *data, int64_t size) {
  int fd = memfd_create("pt_test_ipc", 0);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, (size_t)size), size);
  lseek(fd, 0, SEEK_SET);
  struct ArrowArrayStream s;
  pt_error err;
  int rc = pt_ipc_read_fd(fd, &s, &err);
  if (rc == PT_OK) {
    struct ArrowSchema schema;
    assert_int_equal(s.get_schema(&s, &schema), 0);
    for (;;) {
      struct ArrowArray a;
      int e = s.get_next(&s, &a);
      if (e != 0) {
        rc = PT_EFORMAT;
        break;
      }
      if (a.release == NULL) break;
      if (pt_array_validate(&schema, &a, &err) != PT_OK)
        fail_msg("the reader returned an invalid batch: %s", err.message);
      a.release(&a);
    }
    schema.release(&schema);
    s.release(&s);
  }
  close(fd);
  return rc;
}

static void test_truncations_fd(void **state) {
  bytes b = sample(PT_IPC_STREAM, PT_COMPRESSION_LZ4_FRAME, 5);
  assert_int_equal(read_all_fd(b.data, b.size), PT_OK);
  int failures = 0;
  for (int64_t n = 0; n < b.size; n++) failures += read_all_fd(b.data, n) != PT_OK;
  assert_true(failures > b.size / 2);
  bytes_free(&b);
  /* A file through a descriptor: the stream inside it is read. */
  b = sample(PT_IPC_FILE, PT_COMPRESSION_NONE, 5);
  assert_int_equal(read_all_fd(b.data, b.size), PT_OK);
  bytes_free(&b);
}

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void test_byte_flips(void **state) {
  pt_ipc_format fs[2] = {PT_IPC_STREAM, PT_IPC_FILE};
  pt_compression cs[3] = {PT_COMPRESSION_NONE, PT_COMPRESSION_LZ4_FRAME, PT_COMPRESSION_ZSTD};
  for (int k = 0; k < 6; k++) {
    bytes b = sample(fs[k % 2], cs[k % 3], 9);
    uint8_t *m = malloc((size_t)b.size);
    int failures = 0;
    for (int iter = 0; iter < 1500; iter++) {
      memcpy(m, b.data, (size_t)b.size);
      int flips = 1 + (int)(rng() % 3);
      for (int j = 0; j < flips; j++) {
        int64_t at = (int64_t)(rng() % (uint64_t)b.size);
        uint64_t r = rng();
        /* Mostly single bits, sometimes whole bytes set to extremes. */
        if (r % 4 == 0) m[at] = (r >> 8) % 2 ? 0xFF : 0x00;
        else if (r % 4 == 1) m[at] = (uint8_t)(r >> 16);
        else m[at] ^= (uint8_t)(1u << ((r >> 8) % 8));
      }
      pt_error err;
      if (read_all_copy(m, b.size, &err) != PT_OK) failures++;
    }
    assert_true(failures > 0);
    free(m);
    bytes_free(&b);
  }
}

/* The seeds of dictionary deltas that join parts of unions, views, list
 * views and run-end encoded arrays (tests/python/ipc_delta_streams.py):
 * each reads whole (its joined dictionary validated), and every truncation
 * and a few hundred byte flips of it fail cleanly or give valid arrays. */
static void test_delta_parts_seeds(void **state) {
  static const char *const names[] = {
      "list_sparse_union", "list_dense_union", "list_string_view", "list_binary_view",
      "list_list_view", "list_large_list_view", "list_ree16", "list_ree32", "list_ree64",
      "map_dense_union", "large_list_string_view"};
  const char *src = getenv("PT_SOURCE_DIR");
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/ipc/dict_delta_parts_%s_stream.arrow",
             src ? src : ".", names[k]);
    FILE *f = fopen(path, "rb");
    if (f == NULL) fail_msg("cannot open %s", path);
    uint8_t data[8192];
    int64_t size = (int64_t)fread(data, 1, sizeof data, f);
    fclose(f);
    assert_true(size > 0 && size < (int64_t)sizeof data);
    pt_error err;
    if (read_all_copy(data, size, &err) != PT_OK) fail_msg("%s: %s", names[k], err.message);
    int failures = 0;
    for (int64_t n = 0; n < size; n++) failures += read_all_copy(data, n, &err) != PT_OK;
    assert_true(failures > size / 2);
    uint8_t m[8192];
    for (int iter = 0; iter < 300; iter++) {
      memcpy(m, data, (size_t)size);
      for (int j = 0; j < 2; j++) m[rng() % (uint64_t)size] ^= (uint8_t)(1u << (rng() % 8));
      read_all_copy(m, size, &err);
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Hand-made metadata */

/* Appends one framed message (metadata of b at root, then body) to out. */
static void frame(bytes *out, pt__fb_builder *b, pt__fb_ref root, const void *body,
                  int64_t body_len) {
  const uint8_t *fb;
  uint32_t size;
  assert_int_equal(pt__fb_builder_finish(b, root, &fb, &size), PT_OK);
  uint32_t padded = (size + 7) & ~7u;
  int64_t add = 8 + padded + body_len;
  out->data = realloc(out->data, (size_t)(out->size + add + 8));
  uint8_t *p = out->data + out->size;
  memset(p, 0, (size_t)add + 8);
  pt__store_u32(p, PT_IPC_CONTINUATION);
  pt__store_i32(p + 4, (int32_t)padded);
  memcpy(p + 8, fb, size);
  if (body_len) memcpy(p + 8 + padded, body, (size_t)body_len);
  out->size += add;
}

static pt__fb_ref message(pt__fb_builder *b, int16_t version, uint8_t type, pt__fb_ref header,
                          int64_t body_len) {
  pt__fb_table_start(b);
  pt__fb_add_i16_always(b, MSG_VERSION, version);
  pt__fb_add_u8(b, MSG_HEADER_TYPE, type, 0);
  pt__fb_add_ref(b, MSG_HEADER, header);
  pt__fb_add_i64(b, MSG_BODY_LENGTH, body_len, 0);
  return pt__fb_table_end(b);
}

/* A stream of one schema message with one field of the given type. */
static bytes schema_stream(int16_t version, int16_t endianness, uint8_t type_tag,
                           const char *name) {
  pt__fb_builder b;
  pt__fb_builder_init(&b);
  pt__fb_ref kids = pt__fb_create_ref_vector(&b, NULL, 0);
  pt__fb_ref nm = pt__fb_create_string(&b, name, strlen(name));
  pt__fb_table_start(&b);
  if (type_tag == PT_FBT_INT) {
    pt__fb_add_i32(&b, 0, 32, 0);
    pt__fb_add_bool(&b, 1, true, false);
  }
  pt__fb_ref type = pt__fb_table_end(&b);
  pt__fb_table_start(&b);
  pt__fb_add_ref(&b, FIELD_NAME, nm);
  pt__fb_add_u8(&b, FIELD_TYPE_TYPE, type_tag, 0);
  pt__fb_add_ref(&b, FIELD_TYPE, type);
  pt__fb_add_ref(&b, FIELD_CHILDREN, kids);
  pt__fb_ref field = pt__fb_table_end(&b);
  pt__fb_ref fields = pt__fb_create_ref_vector(&b, &field, 1);
  pt__fb_table_start(&b);
  pt__fb_add_i16(&b, SCHEMA_ENDIANNESS, endianness, 0);
  pt__fb_add_ref(&b, SCHEMA_FIELDS, fields);
  pt__fb_ref schema = pt__fb_table_end(&b);
  bytes out = {NULL, 0};
  frame(&out, &b, message(&b, version, PT_IPC_HDR_SCHEMA, schema, 0), NULL, 0);
  pt__fb_builder_reset(&b);
  return out;
}

static void expect_open_error(const bytes *in, int code, const char *msg) {
  struct ArrowArrayStream s;
  pt_error err;
  assert_int_equal(pt_ipc_read_buffer(in->data, in->size, NULL, NULL, &s, &err), code);
  assert_string_equal(err.message, msg);
  assert_int_equal(err.code, code);
}

static void test_schema_errors(void **state) {
  bytes b = schema_stream(PT_IPC_V5, 1, PT_FBT_INT, "x");
  expect_open_error(&b, PT_ENOTSUP, "ipc: schema: big-endian IPC data is not supported");
  bytes_free(&b);

  b = schema_stream(PT_IPC_V5, 0, PT_FBT_MAP, "m");
  expect_open_error(&b, PT_EFORMAT,
                    "ipc: schema: column 'm': type '+m' needs 1 children, the field has 0");
  bytes_free(&b);
  b = schema_stream(PT_IPC_V5, 0, PT_FBT_RUN_END_ENCODED, "c");
  expect_open_error(&b, PT_EFORMAT,
                    "ipc: schema: column 'c': type '+r' needs 2 children, the field has 0");
  bytes_free(&b);
  /* Type tables left empty take the format's defaults: Time is time32[ms],
   * Interval YEAR_MONTH, Date MILLISECOND. */
  const struct {
    uint8_t tag;
    const char *format;
  } defaults[] = {{PT_FBT_TIME, "ttm"}, {PT_FBT_INTERVAL, "tiM"}, {PT_FBT_DATE, "tdm"},
                  {PT_FBT_UNION, "+us:"}, {PT_FBT_UTF8_VIEW, "vu"}, {PT_FBT_BINARY_VIEW, "vz"}};
  for (size_t k = 0; k < sizeof defaults / sizeof defaults[0]; k++) {
    b = schema_stream(PT_IPC_V5, 0, defaults[k].tag, "c");
    struct ArrowArrayStream s;
    struct ArrowSchema got;
    pt_error err;
    assert_int_equal(pt_ipc_read_buffer(b.data, b.size, NULL, NULL, &s, &err), PT_OK);
    assert_int_equal(s.get_schema(&s, &got), 0);
    assert_string_equal(got.children[0]->format, defaults[k].format);
    got.release(&got);
    s.release(&s);
    bytes_free(&b);
  }
  b = schema_stream(PT_IPC_V3, 0, PT_FBT_INT, "x");
  expect_open_error(&b, PT_ENOTSUP,
                    "ipc: message 0: metadata version V3 is not supported (only V4 and V5, "
                    "written by Arrow 0.8 and later)");
  bytes_free(&b);
  b = schema_stream(PT_IPC_V5, 0, 99, "x");
  expect_open_error(&b, PT_EFORMAT, "ipc: schema: column 'x': unknown type tag 99");
  bytes_free(&b);

  bytes empty = {NULL, 0};
  expect_open_error(&empty, PT_EFORMAT, "ipc: empty input: no schema message");
  uint8_t junk[12] = {0xFF, 0xFF, 0xFF, 0xFF, 0x40, 0, 0, 0, 1, 2, 3, 4};
  bytes j = {junk, sizeof junk};
  expect_open_error(&j, PT_EFORMAT,
                    "ipc: message 0: truncated: metadata of 64 bytes but only 4 bytes left");
}

/* Finds the n-th message of a stream: position of its metadata and body. */
static void find_message(const bytes *b, int n, int64_t *meta, int32_t *meta_len, int64_t *body) {
  int64_t pos = 0;
  for (int k = 0;; k++) {
    int32_t len = pt__load_i32(b->data + pos + 4);
    pt__fb_reader r;
    pt__fb_table msg;
    assert_true(pt__fb_reader_init(&r, b->data + pos + 8, len, &msg));
    if (k == n) {
      *meta = pos + 8;
      *meta_len = len;
      *body = pos + 8 + len;
      return;
    }
    pos += 8 + len + pt__fb_i64(&msg, MSG_BODY_LENGTH, 0);
  }
}

/* Pointer to Buffer i of the RecordBatch of message n (mutable). */
static uint8_t *buffer_entry(bytes *b, int n, uint32_t i, int dictionary) {
  int64_t meta, body;
  int32_t len;
  find_message(b, n, &meta, &len, &body);
  pt__fb_reader r;
  pt__fb_table msg, hdr, rb;
  pt__fb_vec bufs;
  assert_true(pt__fb_reader_init(&r, b->data + meta, len, &msg));
  assert_true(pt__fb_table_get(&msg, MSG_HEADER, &hdr));
  if (dictionary) assert_true(pt__fb_table_get(&hdr, DB_DATA, &rb));
  else rb = hdr;
  assert_true(pt__fb_vector(&rb, RB_BUFFERS, 16, &bufs));
  return (uint8_t *)pt__fb_vec_elem(&bufs, i);
}

static void expect_batch_error(const bytes *in, int code, const char *msg) {
  struct ArrowArrayStream s;
  CHECK(pt_ipc_read_buffer(in->data, in->size, NULL, NULL, &s, &err));
  struct ArrowArray a;
  int e = s.get_next(&s, &a);
  assert_int_equal(e, code == PT_ENOTSUP ? ENOSYS : EINVAL);
  assert_string_equal(s.get_last_error(&s), msg);
  /* Errors stick. */
  assert_int_equal(s.get_next(&s, &a), e);
  s.release(&s);
}

static void test_batch_errors(void **state) {
  struct ArrowSchema schema;
  schema_node(&schema, "+s", "", 2);
  schema_node(schema.children[0], "u", "x", 0);
  schema_dict(schema.children[1], "i", "u", "d");
  pt_builder *root;
  CHECK(pt_builder_new(&schema, &root, &err));
  pt_builder *dv = pt_builder_dictionary(pt_builder_child(root, 1));
  assert_int_equal(pt_builder_append_bytes(dv, "a", 1), PT_OK);
  assert_int_equal(pt_builder_append_bytes(dv, "b", 1), PT_OK);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(pt_builder_append_bytes(pt_builder_child(root, 0), "hello", 5), PT_OK);
    assert_int_equal(pt_builder_append_int(pt_builder_child(root, 1), i % 2), PT_OK);
    assert_int_equal(pt_builder_append_row(root), PT_OK);
  }
  struct ArrowArray batch;
  CHECK(pt_builder_finish(root, &batch, &err));
  pt_builder_free(root);
  bytes good = write_batches(&schema, &batch, 1, NULL);
  /* messages: 0 schema, 1 dictionary, 2 record batch (buffers: 0 x validity,
   * 1 x offsets, 2 x data, 3 d validity, 4 d indices) */
  bytes b = {malloc((size_t)good.size), good.size};
  memcpy(b.data, good.data, (size_t)good.size);
  int64_t meta, body;
  int32_t len;
  find_message(&b, 2, &meta, &len, &body);
  int64_t body_size = b.size - 8 - body;
  pt__store_i64(buffer_entry(&b, 2, 1, 0) + 8, 4096);
  char want[256];
  snprintf(want, sizeof want,
           "ipc: record batch 0: column 'x': buffer 1 (offsets) ends at byte %lld past the "
           "body of %lld bytes",
           (long long)(pt__load_i64(buffer_entry(&b, 2, 1, 0)) + 4096), (long long)body_size);
  expect_batch_error(&b, PT_EFORMAT, want);

  /* Offsets that go backwards. */
  memcpy(b.data, good.data, (size_t)good.size);
  int64_t off = pt__load_i64(buffer_entry(&b, 2, 1, 0));
  pt__store_i32(b.data + body + off + 8, 1);
  expect_batch_error(&b, PT_EFORMAT,
                     "ipc: record batch 0: column 'x': offset 2 (1) is smaller than offset 1 (5)");

  /* A dictionary index out of range. */
  memcpy(b.data, good.data, (size_t)good.size);
  off = pt__load_i64(buffer_entry(&b, 2, 4, 0));
  pt__store_i32(b.data + body + off + 4, 7);
  expect_batch_error(&b, PT_EFORMAT,
                     "ipc: record batch 0: column 'd': dictionary index 7 at row 1 is out of "
                     "range for a dictionary of 2 values");

  /* A batch whose dictionary never came. */
  int64_t dmeta, dbody;
  int32_t dlen;
  find_message(&good, 1, &dmeta, &dlen, &dbody);
  int64_t dict_start = dmeta - 8, dict_end = body - len - 8;
  memcpy(b.data, good.data, (size_t)dict_start);
  memcpy(b.data + dict_start, good.data + dict_end, (size_t)(good.size - dict_end));
  b.size = good.size - (dict_end - dict_start);
  expect_batch_error(&b, PT_EFORMAT,
                     "ipc: record batch 0: column 'd': dictionary 0 is used before any "
                     "dictionary batch for it");

  /* A file cut short. */
  pt_ipc_write_options o;
  opts_init(&o, PT_IPC_FILE, PT_COMPRESSION_NONE);
  bytes file = write_batches(&schema, &batch, 1, &o);
  file.size -= 3;
  expect_open_error(&file, PT_EFORMAT,
                    "ipc: truncated Arrow IPC file: the footer and closing magic are missing");
  bytes_free(&file);

  /* Compressed data that lies about its length. */
  opts_init(&o, PT_IPC_STREAM, PT_COMPRESSION_ZSTD);
  bytes z = write_batches(&schema, &batch, 1, &o);
  find_message(&z, 2, &meta, &len, &body);
  off = pt__load_i64(buffer_entry(&z, 2, 1, 0));
  int64_t ulen = pt__load_i64(z.data + body + off);
  assert_int_equal(ulen, -1); /* 5 offsets don't compress: stored as is */
  off = pt__load_i64(buffer_entry(&z, 2, 2, 0));
  pt__store_i64(z.data + body + off, INT64_C(1) << 40);
  expect_batch_error(&z, PT_EFORMAT,
                     "ipc: record batch 0: column 'x': buffer 2 (data): zstd data is corrupt: "
                     "Unknown frame descriptor");
  bytes_free(&z);

  free(b.data);
  bytes_free(&good);
  batch.release(&batch);
  schema.release(&schema);
}

/* outer: dictionary<int16 -> struct<inner: dictionary<int8 -> utf8>>> */
static void nested_schema(struct ArrowSchema *schema) {
  schema_node(schema, "+s", "", 1);
  schema_node(schema->children[0], "s", "outer", 0);
  struct ArrowSchema values;
  schema_node(&values, "+s", NULL, 1);
  schema_dict(values.children[0], "c", "u", "inner");
  CHECK(pt_schema_set_dictionary(schema->children[0], &values, &err));
}

/* A batch whose inner dictionary is words[0..n_words) and whose outer
 * dictionary values use inner indices inner_idx[0..n_outer); rows use outer
 * value 0. */
static void nested_batch(const struct ArrowSchema *schema, const char *const *words, int n_words,
                         const int *inner_idx, int n_outer, struct ArrowArray *out) {
  pt_builder *root;
  CHECK(pt_builder_new(schema, &root, &err));
  pt_builder *outer = pt_builder_child(root, 0);
  pt_builder *ov = pt_builder_dictionary(outer);
  pt_builder *inner = pt_builder_child(ov, 0);
  for (int j = 0; j < n_words; j++)
    assert_int_equal(pt_builder_append_bytes(pt_builder_dictionary(inner), words[j],
                                             (int64_t)strlen(words[j])), PT_OK);
  for (int j = 0; j < n_outer; j++) {
    assert_int_equal(pt_builder_append_int(inner, inner_idx[j]), PT_OK);
    assert_int_equal(pt_builder_append_row(ov), PT_OK);
  }
  assert_int_equal(pt_builder_append_int(outer, 0), PT_OK);
  assert_int_equal(pt_builder_append_row(root), PT_OK);
  CHECK(pt_builder_finish(root, out, &err));
  pt_builder_free(root);
}

static void message_span(const bytes *b, int n, int64_t *start, int64_t *end) {
  int64_t meta, body;
  int32_t len;
  find_message(b, n, &meta, &len, &body);
  pt__fb_reader r;
  pt__fb_table msg;
  assert_true(pt__fb_reader_init(&r, b->data + meta, len, &msg));
  *start = meta - 8;
  *end = body + pt__fb_i64(&msg, MSG_BODY_LENGTH, 0);
}

static void append_span(bytes *out, const bytes *from, int n) {
  int64_t a, e;
  message_span(from, n, &a, &e);
  out->data = realloc(out->data, (size_t)(out->size + e - a));
  memcpy(out->data + out->size, from->data + a, (size_t)(e - a));
  out->size += e - a;
}

/* An outer dictionary delta read after its inner dictionary was replaced by
 * a shorter one: the old outer values now point past the inner dictionary,
 * which the reader must notice. */
static void test_nested_delta_after_inner_replacement(void **state) {
  struct ArrowSchema schema;
  nested_schema(&schema);
  const char *abc[] = {"a", "b", "c"}, *z[] = {"z"};
  int i1[] = {2}, i2[] = {2, 0}, i3[] = {0};
  struct ArrowArray b[3];
  nested_batch(&schema, abc, 3, i1, 1, &b[0]);
  nested_batch(&schema, abc, 3, i2, 2, &b[1]); /* outer grows: delta */
  nested_batch(&schema, z, 1, i3, 1, &b[2]);
  bytes s1 = write_batches(&schema, b, 2, NULL);
  bytes s2 = write_batches(&schema, &b[2], 1, NULL);
  /* s1: schema, inner, outer, batch, outer delta, batch; s2: schema, inner
   * [z], outer, batch. Splice s2's inner in before s1's delta. */
  bytes spliced = {NULL, 0};
  for (int k = 0; k < 4; k++) append_span(&spliced, &s1, k);
  append_span(&spliced, &s2, 1);
  append_span(&spliced, &s1, 4);
  append_span(&spliced, &s1, 5);
  struct ArrowArrayStream s;
  CHECK(pt_ipc_read_buffer(spliced.data, spliced.size, NULL, NULL, &s, &err));
  struct ArrowArray a;
  assert_int_equal(s.get_next(&s, &a), 0);
  a.release(&a);
  assert_int_equal(s.get_next(&s, &a), EINVAL);
  assert_string_equal(s.get_last_error(&s),
                      "ipc: dictionary batch (id 1, delta): column 'inner': dictionary index 2 at row 0 "
                      "is out of range for a dictionary of 1 values");
  s.release(&s);
  free(spliced.data);
  bytes_free(&s1);
  bytes_free(&s2);
  for (int k = 0; k < 3; k++) b[k].release(&b[k]);
  schema.release(&schema);
}

/* Sets the dictionary id of column `field` (with child >= 0: of that child
 * of it) in the schema message (message 0) of b, which must have one
 * written (ids other than 0 are). */
static void set_dictionary_id(bytes *b, uint32_t field, int child, int64_t id) {
  int64_t meta, body;
  int32_t len;
  find_message(b, 0, &meta, &len, &body);
  pt__fb_reader r;
  pt__fb_table msg, schema, f, dict;
  pt__fb_vec fields;
  assert_true(pt__fb_reader_init(&r, b->data + meta, len, &msg));
  assert_true(pt__fb_table_get(&msg, MSG_HEADER, &schema));
  assert_true(pt__fb_vector(&schema, SCHEMA_FIELDS, 4, &fields));
  assert_true(pt__fb_vec_table(&fields, field, &f));
  if (child >= 0) {
    pt__fb_vec kids;
    assert_true(pt__fb_vector(&f, FIELD_CHILDREN, 4, &kids));
    assert_true(pt__fb_vec_table(&kids, (uint32_t)child, &f));
  }
  assert_true(pt__fb_table_get(&f, FIELD_DICTIONARY, &dict));
  uint8_t *at = (uint8_t *)pt__fb_struct(&dict, DICTENC_ID, 8);
  assert_non_null(at);
  pt__store_i64(at, id);
}

/* Two fields may share one dictionary (one id, one dictionary batch), as
 * Arrow Java writes: both decode to its values. Value types must agree. */
static void test_shared_dictionary_id(void **state) {
  struct ArrowSchema schema;
  schema_node(&schema, "+s", "", 2);
  schema_dict(schema.children[0], "i", "u", "a");
  schema_dict(schema.children[1], "i", "u", "b");
  pt_builder *root;
  CHECK(pt_builder_new(&schema, &root, &err));
  const char *words[] = {"x", "yy", "zzz"};
  for (int c = 0; c < 2; c++)
    for (int k = 0; k < 3; k++)
      assert_int_equal(pt_builder_append_bytes(pt_builder_dictionary(pt_builder_child(root, c)),
                                               words[k], strlen(words[k])),
                       PT_OK);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(pt_builder_append_int(pt_builder_child(root, 0), i % 3), PT_OK);
    assert_int_equal(pt_builder_append_int(pt_builder_child(root, 1), 2 - i % 3), PT_OK);
    assert_int_equal(pt_builder_append_row(root), PT_OK);
  }
  struct ArrowArray batch;
  CHECK(pt_builder_finish(root, &batch, &err));
  pt_builder_free(root);
  bytes good = write_batches(&schema, &batch, 1, NULL);
  /* messages: 0 schema, 1 dictionary id 0, 2 dictionary id 1, 3 batch.
   * Shared: b uses id 0 as well, and the dictionary of id 1 goes. */
  bytes shared = {NULL, 0};
  for (int k = 0; k < 4; k++)
    if (k != 2) append_span(&shared, &good, k);
  set_dictionary_id(&shared, 1, -1, 0);
  struct ArrowArrayStream s;
  CHECK(pt_ipc_read_buffer(shared.data, shared.size, NULL, NULL, &s, &err));
  struct ArrowArray got;
  assert_int_equal(s.get_next(&s, &got), 0);
  assert_non_null(got.release);
  assert_batches_equal(&schema, &batch, &got);
  got.release(&got);
  s.release(&s);

  /* Another value type under the same id: refused, saying which. */
  struct ArrowSchema mixed;
  schema_node(&mixed, "+s", "", 2);
  schema_dict(mixed.children[0], "i", "u", "a");
  schema_dict(mixed.children[1], "i", "l", "b");
  struct ArrowArray empty;
  CHECK(pt_builder_new(&mixed, &root, &err));
  CHECK(pt_builder_finish(root, &empty, &err));
  pt_builder_free(root);
  bytes m = write_batches(&mixed, &empty, 1, NULL);
  set_dictionary_id(&m, 1, -1, 0);
  expect_open_error(&m, PT_EFORMAT,
                    "ipc: schema: column 'b': dictionary id 0 is shared with field 'a' of values "
                    "utf8, but these values are int64");
  bytes_free(&m);
  empty.release(&empty);
  mixed.release(&mixed);

  /* A dictionary inside its own values: refused. */
  struct ArrowSchema nested;
  nested_schema(&nested);
  const char *abc[] = {"a", "b", "c"};
  int idx[] = {2};
  struct ArrowArray nb;
  nested_batch(&nested, abc, 3, idx, 1, &nb);
  bytes n = write_batches(&nested, &nb, 1, NULL);
  set_dictionary_id(&n, 0, -1, 0); /* outer (id 1) takes inner's id, 0 */
  expect_open_error(&n, PT_EFORMAT,
                    "ipc: schema: column 'outer': field 'inner': dictionary id 0 is used inside "
                    "its own values");
  bytes_free(&n);
  nb.release(&nb);
  nested.release(&nested);
  free(shared.data);
  bytes_free(&good);
  batch.release(&batch);
  schema.release(&schema);
}

/* Batches of one compressed column are decompressed several at a time, the
 * later ones ahead of their turn: a corrupt later batch must still fail at
 * its own turn, with its own number, after the ones before it came out
 * whole; and stopping early frees what was done ahead (ASan checks). */
static void test_corrupt_batch_read_ahead(void **state) {
  struct ArrowSchema schema;
  schema_node(&schema, "+s", "", 1);
  schema_node(schema.children[0], "l", "x", 0);
  enum { N = 6, ROWS = 50000 };
  struct ArrowArray batches[N];
  for (int b = 0; b < N; b++) {
    pt_builder *root;
    CHECK(pt_builder_new(&schema, &root, &err));
    for (int i = 0; i < ROWS; i++) {
      assert_int_equal(pt_builder_append_int(pt_builder_child(root, 0), (i * 7 + b) % 1000), PT_OK);
      assert_int_equal(pt_builder_append_row(root), PT_OK);
    }
    CHECK(pt_builder_finish(root, &batches[b], &err));
    pt_builder_free(root);
  }
  for (int codec = 0; codec < 2; codec++) {
    pt_ipc_write_options o;
    opts_init(&o, PT_IPC_STREAM, codec ? PT_COMPRESSION_ZSTD : PT_COMPRESSION_LZ4_FRAME);
    bytes b = write_batches(&schema, batches, N, &o);
    /* messages: 0 schema, 1.. batches. Batch 3's values declare 8 bytes
     * fewer than they decompress to (codecs have no checksum here to
     * catch garbage inside the frame). */
    int64_t meta, body;
    int32_t len;
    find_message(&b, 4, &meta, &len, &body);
    uint8_t *e = buffer_entry(&b, 4, 1, 0);
    int64_t off = pt__load_i64(e);
    assert_int_equal(pt__load_i64(b.data + body + off), ROWS * 8);
    pt__store_i64(b.data + body + off, ROWS * 8 - 8);
    struct ArrowArrayStream s;
    CHECK(pt_ipc_read_buffer(b.data, b.size, NULL, NULL, &s, &err));
    struct ArrowArray got;
    for (int k = 0; k < 3; k++) {
      assert_int_equal(s.get_next(&s, &got), 0);
      assert_batches_equal(&schema, &batches[k], &got);
      got.release(&got);
    }
    assert_int_equal(s.get_next(&s, &got), EINVAL);
    const char *msg = s.get_last_error(&s);
    assert_non_null(strstr(msg, "ipc: record batch 3: column 'x': buffer 1 (values): "));
    assert_true(strstr(msg, "than the declared 399992 bytes") != NULL ||
                strstr(msg, "not the declared 399992") != NULL);
    s.release(&s);
    /* Stopping after the first batch, with later ones done ahead. */
    CHECK(pt_ipc_read_buffer(b.data, b.size, NULL, NULL, &s, &err));
    assert_int_equal(s.get_next(&s, &got), 0);
    s.release(&s);
    assert_batches_equal(&schema, &batches[0], &got); /* outlives its reader */
    got.release(&got);
    bytes_free(&b);
  }
  for (int k = 0; k < N; k++) batches[k].release(&batches[k]);
  schema.release(&schema);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_schema_errors),
      cmocka_unit_test(test_batch_errors),
      cmocka_unit_test(test_nested_delta_after_inner_replacement),
      cmocka_unit_test(test_shared_dictionary_id),
      cmocka_unit_test(test_corrupt_batch_read_ahead),
      cmocka_unit_test(test_truncations),
      cmocka_unit_test(test_truncations_fd),
      cmocka_unit_test(test_byte_flips),
      cmocka_unit_test(test_delta_parts_seeds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
