/* fuzz_kafka_decode.c — libFuzzer target for the Kafka value decoders of
 * src/kafka: the input is cut into values at each 0xFF byte and decoded
 * both as JSON objects and as Arrow IPC streams of a fixed schema, under
 * the dead-letter policy (every value decoded or dead-lettered) and the
 * fail policy. Whatever comes back must validate; a crash, a leak or an
 * invalid array is a bug.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protium.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pt_error err;
  struct ArrowSchema es, vs, ds;
  pt_schema_init(&es, "+s", "", 0, 5, &err);
  pt_schema_init(es.children[0], "l", "id", ARROW_FLAG_NULLABLE, 0, &err);
  pt_schema_init(es.children[1], "g", "x", ARROW_FLAG_NULLABLE, 0, &err);
  pt_schema_init(es.children[2], "u", "name", ARROW_FLAG_NULLABLE, 0, &err);
  pt_schema_init(es.children[3], "b", "ok", ARROW_FLAG_NULLABLE, 0, &err);
  pt_schema_init(es.children[4], "tsm:UTC", "ts", ARROW_FLAG_NULLABLE, 0, &err);
  pt_schema_init(&vs, "z", "value", ARROW_FLAG_NULLABLE, 0, &err);
  pt_kafka_dead_letter_schema(&ds, &err);
  pt_builder *b;
  if (pt_builder_new(&vs, &b, &err) != PT_OK) abort();
  size_t at = 0;
  while (at < size) {
    size_t len = size - at >= 2 ? (size_t)(data[at] | data[at + 1] << 8) : 0;
    at += size - at >= 2 ? 2 : size - at;
    if (len > size - at) len = size - at;
    /* A private copy, so that reads past a value's end hit ASan's redzone. */
    uint8_t *v = malloc(len ? len : 1);
    memcpy(v, data + at, len);
    pt_builder_append_bytes(b, v, (int64_t)len);
    free(v);
    at += len;
  }
  struct ArrowArray va;
  if (pt_builder_finish(b, &va, &err) != PT_OK) abort();
  pt_builder_free(b);
  for (int dec = 0; dec < 2; dec++) {
    struct ArrowArray out, dead;
    int rc = dec == 0 ? pt_kafka_decode_json(&vs, &va, &es, PT_KAFKA_BAD_DEAD_LETTER, &out, &dead, &err)
                      : pt_kafka_decode_ipc(&vs, &va, &es, PT_KAFKA_BAD_DEAD_LETTER, &out, &dead, &err);
    if (rc != PT_OK) abort(); /* dead-lettering never fails on bad input */
    if (pt_array_validate(&es, &out, &err) != PT_OK) abort();
    if (pt_array_validate(&ds, &dead, &err) != PT_OK) abort();
    /* Every JSON value is a row or a dead letter (an IPC value may hold
     * any number of rows, but each bad one is a dead letter). */
    if (dec == 0 && out.length + dead.length != va.length) abort();
    if (dead.length > va.length) abort();
    out.release(&out);
    dead.release(&dead);
    rc = dec == 0 ? pt_kafka_decode_json(&vs, &va, &es, PT_KAFKA_BAD_FAIL, &out, NULL, &err)
                  : pt_kafka_decode_ipc(&vs, &va, &es, PT_KAFKA_BAD_FAIL, &out, NULL, &err);
    if (rc == PT_OK) {
      if (pt_array_validate(&es, &out, &err) != PT_OK) abort();
      out.release(&out);
    } else if (rc != PT_EFORMAT) {
      abort();
    }
  }
  va.release(&va);
  ds.release(&ds);
  vs.release(&vs);
  es.release(&es);
  return 0;
}
