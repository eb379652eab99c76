/* test_kafka_decode.c — the Kafka value decoders (JSON objects, Arrow IPC
 * streams) under each malformed-record policy, exact error texts, and
 * garbage: random and mutated values must give a clean error or a dead
 * letter, never a crash or an invalid array. And the JSON encoder: decoded
 * rows encoded back, exact texts, and what JSON cannot hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protium.h"

static void values_of(const char *const *v, const int *lens, int n, struct ArrowSchema *s,
                      struct ArrowArray *a) {
  pt_error err;
  assert_int_equal(pt_schema_init(s, "z", "value", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  pt_builder *b;
  assert_int_equal(pt_builder_new(s, &b, &err), PT_OK);
  for (int i = 0; i < n; i++) {
    if (!v[i]) assert_int_equal(pt_builder_append_null(b, 1), PT_OK);
    else assert_int_equal(pt_builder_append_bytes(b, v[i], lens ? lens[i] : (int64_t)strlen(v[i])), PT_OK);
  }
  assert_int_equal(pt_builder_finish(b, a, &err), PT_OK);
  pt_builder_free(b);
}

/* struct<id int64, x double, name utf8, ok bool> */
static void event_schema(struct ArrowSchema *s) {
  pt_error err;
  pt_schema_init(s, "+s", "", 0, 4, &err);
  pt_schema_init(s->children[0], "l", "id", ARROW_FLAG_NULLABLE, 0, &err);
  pt_schema_init(s->children[1], "g", "x", ARROW_FLAG_NULLABLE, 0, &err);
  pt_schema_init(s->children[2], "u", "name", ARROW_FLAG_NULLABLE, 0, &err);
  pt_schema_init(s->children[3], "b", "ok", ARROW_FLAG_NULLABLE, 0, &err);
}

static const char *const k_json[] = {
    "{\"id\": 1, \"x\": 2.5, \"name\": \"a\\u00e9\\n\", \"ok\": true}",
    "not json",
    "{\"id\": \"seven\"}",
    "{\"id\": 3, \"extra\": {\"deep\": [1, 2, {\"k\": null}]}, \"name\": null}",
    NULL,
    "{\"id\": 1.5}",
    "{\"id\": 99999999999999999999}",
    "{\"id\": 4,",
    "{\"name\": \"\\ud83d\\ude00\", \"x\": -1e3} ",
    "{\"id\": 5} trailing",
};
#define N_JSON 10

static void test_json_policies(void **state) {
  (void)state;
  struct ArrowSchema vs, es, outs, deads;
  struct ArrowArray va, out, dead;
  pt_error err;
  values_of(k_json, NULL, N_JSON, &vs, &va);
  event_schema(&es);
  /* fail: the first malformed record names itself */
  assert_int_equal(pt_kafka_decode_json(&vs, &va, &es, PT_KAFKA_BAD_FAIL, &out, NULL, &err),
                   PT_EFORMAT);
  assert_string_equal(err.message, "decode_json: record 1: not a JSON object; drop or "
                                   "dead-letter malformed records to go on");
  /* drop */
  assert_int_equal(pt_kafka_decode_json(&vs, &va, &es, PT_KAFKA_BAD_DROP, &out, NULL, &err), PT_OK);
  assert_int_equal(out.length, 3);
  assert_int_equal(pt_array_validate(&es, &out, &err), PT_OK);
  const int64_t *ids = out.children[0]->buffers[1];
  assert_int_equal(ids[0], 1);
  assert_int_equal(ids[1], 3);
  const double *xs = out.children[1]->buffers[1];
  assert_true(xs[0] == 2.5 && xs[2] == -1000.0);
  const int32_t *no = out.children[2]->buffers[1];
  const char *nd = out.children[2]->buffers[2];
  assert_int_equal(no[1] - no[0], 4); /* "a", U+00E9 (2 bytes), "\n" */
  assert_memory_equal(nd, "a\xc3\xa9\n", 4);
  assert_int_equal(no[3] - no[2], 4); /* U+1F600 from a surrogate pair */
  assert_memory_equal(nd + no[2], "\xf0\x9f\x98\x80", 4);
  out.release(&out);
  /* dead letter: the bad ones come back with their index and why */
  assert_int_equal(pt_kafka_decode_json(&vs, &va, &es, PT_KAFKA_BAD_DEAD_LETTER, &out, &dead, &err),
                   PT_OK);
  assert_int_equal(out.length, 3);
  assert_int_equal(dead.length, 7);
  assert_int_equal(pt_kafka_dead_letter_schema(&deads, &err), PT_OK);
  assert_int_equal(pt_array_validate(&deads, &dead, &err), PT_OK);
  const int64_t *rows = dead.children[0]->buffers[1];
  int64_t want[] = {1, 2, 4, 5, 6, 7, 9};
  for (int i = 0; i < 7; i++) assert_int_equal(rows[i], want[i]);
  const int32_t *eo = dead.children[2]->buffers[1];
  const char *ed = dead.children[2]->buffers[2];
  assert_memory_equal(ed + eo[1], "field 'id' is not a number", (size_t)(eo[2] - eo[1]));
  assert_memory_equal(ed + eo[2], "the value is null", (size_t)(eo[3] - eo[2]));
  assert_memory_equal(ed + eo[3], "field 'id' is not an integer", (size_t)(eo[4] - eo[3]));
  assert_memory_equal(ed + eo[4], "field 'id' is out of range", (size_t)(eo[5] - eo[4]));
  assert_memory_equal(ed + eo[6], "text after the object", (size_t)(eo[7] - eo[6]));
  /* the dead letter keeps the original bytes */
  const int32_t *dvo = dead.children[1]->buffers[1];
  assert_memory_equal((const char *)dead.children[1]->buffers[2] + dvo[0], "not json", 8);
  out.release(&out);
  dead.release(&dead);
  deads.release(&deads);
  /* An unsupported column type is refused before any record. */
  pt_schema_init(&outs, "+s", "", 0, 1, &err);
  pt_schema_init(outs.children[0], "+l", "xs", 0, 1, &err);
  pt_schema_init(outs.children[0]->children[0], "l", "item", 0, 0, &err);
  assert_int_equal(pt_kafka_decode_json(&vs, &va, &outs, PT_KAFKA_BAD_DROP, &out, NULL, &err),
                   PT_ENOTSUP);
  assert_non_null(strstr(err.message, "column 'xs'"));
  outs.release(&outs);
  es.release(&es);
  vs.release(&vs);
  va.release(&va);
}

static void ipc_of(const struct ArrowSchema *s, int64_t first, int64_t n, pt_buf *buf) {
  pt_error err;
  pt_builder *b;
  assert_int_equal(pt_builder_new(s, &b, &err), PT_OK);
  for (int64_t i = 0; i < n; i++) {
    pt_builder_append_int(pt_builder_child(b, 0), first + i);
    pt_builder_append_double(pt_builder_child(b, 1), (double)i / 2);
    pt_builder_append_bytes(pt_builder_child(b, 2), "n", 1);
    pt_builder_append_int(pt_builder_child(b, 3), i & 1);
    pt_builder_append_row(b);
  }
  struct ArrowArray a;
  assert_int_equal(pt_builder_finish(b, &a, &err), PT_OK);
  pt_builder_free(b);
  pt_ipc_writer *w;
  assert_int_equal(pt_ipc_writer_open_buf(buf, s, NULL, &w, &err), PT_OK);
  assert_int_equal(pt_ipc_writer_write(w, &a, &err), PT_OK);
  assert_int_equal(pt_ipc_writer_close(w, &err), PT_OK);
  pt_ipc_writer_free(w);
  a.release(&a);
}

static void test_ipc_policies(void **state) {
  (void)state;
  struct ArrowSchema es, other, vs;
  struct ArrowArray va, out, dead;
  pt_error err;
  event_schema(&es);
  pt_schema_init(&other, "+s", "", 0, 4, &err);
  pt_schema_init(other.children[0], "l", "id", ARROW_FLAG_NULLABLE, 0, &err);
  pt_schema_init(other.children[1], "g", "x", ARROW_FLAG_NULLABLE, 0, &err);
  pt_schema_init(other.children[2], "u", "label", ARROW_FLAG_NULLABLE, 0, &err);
  pt_schema_init(other.children[3], "b", "ok", ARROW_FLAG_NULLABLE, 0, &err);
  pt_buf good1 = {0}, good2 = {0}, wrong = {0};
  ipc_of(&es, 0, 3, &good1);
  ipc_of(&es, 10, 2, &good2);
  ipc_of(&other, 20, 2, &wrong);
  const char *v[] = {good1.data, "garbage", wrong.data, good1.data, good2.data};
  int lens[] = {(int)good1.len, 7, (int)wrong.len, (int)good1.len / 2, (int)good2.len};
  values_of(v, lens, 5, &vs, &va);
  assert_int_equal(pt_kafka_decode_ipc(&vs, &va, &es, PT_KAFKA_BAD_FAIL, &out, NULL, &err),
                   PT_EFORMAT);
  assert_non_null(strstr(err.message, "decode_ipc: record 1: "));
  assert_int_equal(pt_kafka_decode_ipc(&vs, &va, &es, PT_KAFKA_BAD_DEAD_LETTER, &out, &dead, &err),
                   PT_OK);
  assert_int_equal(out.length, 5);
  assert_int_equal(pt_array_validate(&es, &out, &err), PT_OK);
  const int64_t *ids = out.children[0]->buffers[1];
  assert_int_equal(ids[3], 10);
  assert_int_equal(dead.length, 3);
  const int32_t *eo = dead.children[2]->buffers[1];
  const char *ed = dead.children[2]->buffers[2];
  assert_memory_equal(ed + eo[1], "the stream's schema is not the one expected",
                      (size_t)(eo[2] - eo[1]));
  out.release(&out);
  dead.release(&dead);
  pt_buf_free(&good1);
  pt_buf_free(&good2);
  pt_buf_free(&wrong);
  va.release(&va);
  vs.release(&vs);
  other.release(&other);
  es.release(&es);
}

/* Random bytes, and valid values with bytes flipped or cut: every call
 * returns, and what it returns validates. */
static void test_garbage(void **state) {
  (void)state;
  struct ArrowSchema es, vs, deads;
  pt_error err;
  event_schema(&es);
  pt_kafka_dead_letter_schema(&deads, &err);
  pt_buf ipc = {0};
  ipc_of(&es, 0, 4, &ipc);
  const char *json = k_json[0];
  uint64_t x = 88172645463325252ull;
  enum { N = 64 };
  char *bufs[N];
  int lens[N];
  for (int round = 0; round < 300; round++) {
    for (int i = 0; i < N; i++) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      int kind = (int)(x % 3);
      const char *base = kind == 0 ? json : ipc.data;
      int blen = kind == 0 ? (int)strlen(json) : (int)ipc.len;
      int len = kind == 2 ? (int)((x >> 8) % 200) : (int)((x >> 8) % (uint64_t)(blen + 1));
      bufs[i] = malloc((size_t)len + 1);
      for (int j = 0; j < len; j++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        bufs[i][j] = kind == 2 ? (char)x : base[j];
        if (kind != 2 && x % 17 == 0) bufs[i][j] = (char)(x >> 24);
      }
      lens[i] = len;
    }
    struct ArrowArray va, out, dead;
    values_of((const char *const *)bufs, lens, N, &vs, &va);
    for (int dec = 0; dec < 2; dec++) {
      int rc = dec == 0
                   ? pt_kafka_decode_json(&vs, &va, &es, PT_KAFKA_BAD_DEAD_LETTER, &out, &dead, &err)
                   : pt_kafka_decode_ipc(&vs, &va, &es, PT_KAFKA_BAD_DEAD_LETTER, &out, &dead, &err);
      assert_int_equal(rc, PT_OK);
      assert_int_equal(pt_array_validate(&es, &out, &err), PT_OK);
      assert_int_equal(pt_array_validate(&deads, &dead, &err), PT_OK);
      assert_true(dead.length <= N);
      out.release(&out);
      dead.release(&dead);
      rc = dec == 0 ? pt_kafka_decode_json(&vs, &va, &es, PT_KAFKA_BAD_FAIL, &out, NULL, &err)
                    : pt_kafka_decode_ipc(&vs, &va, &es, PT_KAFKA_BAD_FAIL, &out, NULL, &err);
      assert_true(rc == PT_OK || rc == PT_EFORMAT);
      if (rc == PT_OK) out.release(&out);
    }
    va.release(&va);
    vs.release(&vs);
    for (int i = 0; i < N; i++) free(bufs[i]);
  }
  pt_buf_free(&ipc);
  deads.release(&deads);
  es.release(&es);
}


/* Decoded rows encoded again give the same objects (text compared), and
 * what JSON cannot hold is refused with the row and column named. */
static void test_encode_json(void **state) {
  (void)state;
  static const char *const in[] = {
      "{\"id\":1,\"x\":2.5,\"name\":\"a\\u00e9\\n\\\"\\u001f\",\"ok\":true}",
      "{\"name\":\"\\ud83d\\ude00\",\"x\":0.1}",
      "{\"id\":-9223372036854775808,\"x\":1e300,\"ok\":false}",
  };
  static const char *const want[] = {
      "{\"id\":1,\"x\":2.5,\"name\":\"a\xc3\xa9\\n\\\"\\u001f\",\"ok\":true}",
      "{\"id\":null,\"x\":0.1,\"name\":\"\xf0\x9f\x98\x80\",\"ok\":null}",
      "{\"id\":-9223372036854775808,\"x\":1e+300,\"name\":null,\"ok\":false}",
  };
  struct ArrowSchema vs, es;
  struct ArrowArray va, rows, enc;
  pt_error err;
  values_of(in, NULL, 3, &vs, &va);
  event_schema(&es);
  assert_int_equal(pt_kafka_decode_json(&vs, &va, &es, PT_KAFKA_BAD_FAIL, &rows, NULL, &err),
                   PT_OK);
  assert_int_equal(pt_kafka_encode_json(&es, &rows, &enc, &err), PT_OK);
  assert_int_equal(enc.length, 3);
  const int32_t *off = enc.buffers[1];
  const char *data = enc.buffers[2];
  for (int i = 0; i < 3; i++) {
    assert_int_equal(off[i + 1] - off[i], (int32_t)strlen(want[i]));
    assert_memory_equal(data + off[i], want[i], strlen(want[i]));
  }
  enc.release(&enc);
  rows.release(&rows);
  va.release(&va);
  vs.release(&vs);

  /* NaN */
  static const char *const nan_in[] = {"{\"x\":1}", "{\"x\":2}"};
  values_of(nan_in, NULL, 2, &vs, &va);
  assert_int_equal(pt_kafka_decode_json(&vs, &va, &es, PT_KAFKA_BAD_FAIL, &rows, NULL, &err),
                   PT_OK);
  double *x = (double *)rows.children[1]->buffers[1];
  x[1] = 0.0 / 0.0;
  assert_int_equal(pt_kafka_encode_json(&es, &rows, &enc, &err), PT_EINVAL);
  assert_string_equal(err.message, "encode_json: row 1: column 'x' is NaN, which JSON cannot "
                                   "hold; replace it (or make it null) before encoding");
  assert_null(enc.release);
  rows.release(&rows);
  va.release(&va);
  es.release(&es);
  vs.release(&vs);

  /* a type JSON values do not hold */
  struct ArrowSchema ls;
  pt_schema_init(&ls, "+s", "", 0, 1, &err);
  pt_schema_init(ls.children[0], "tdD", "day", ARROW_FLAG_NULLABLE, 0, &err);
  pt_builder *b;
  assert_int_equal(pt_builder_new(&ls, &b, &err), PT_OK);
  assert_int_equal(pt_builder_finish(b, &rows, &err), PT_OK);
  pt_builder_free(b);
  assert_int_equal(pt_kafka_encode_json(&ls, &rows, &enc, &err), PT_ENOTSUP);
  assert_string_equal(err.message, "encode_json: column 'day' has type 'tdD'; JSON values "
                                   "encode booleans, integers, floats, strings, binary (UTF-8 "
                                   "text) and timestamps (epoch numbers in the column's unit); "
                                   "cast it first");
  rows.release(&rows);
  ls.release(&ls);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_policies),
      cmocka_unit_test(test_encode_json),
      cmocka_unit_test(test_ipc_policies),
      cmocka_unit_test(test_garbage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
