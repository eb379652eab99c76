/* fuzz_parquet.c — libFuzzer target for the whole Parquet reader: the input
 * is opened with pt_parquet_read_buffer, every batch is pulled, validated and
 * (when small) rendered as JSON to touch every value, then released, on
 * three threads, or one reading the next row group ahead on a second, or
 * one alone. Seeds:
 * tests/data/parquet (tests/fuzz/corpus/parquet).
 * A batch the reader returns that does not validate is a bug: abort.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protium.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A private copy, so reads past the input's end hit ASan's redzone. */
  uint8_t *copy = malloc(size ? size : 1);
  if (copy == NULL) return 0;
  memcpy(copy, data, size);
  struct ArrowArrayStream s;
  pt_error err;
  pt_parquet_read_options opts;
  pt_parquet_read_options_init(&opts);
  opts.batch_size = 1000;
  /* Half the inputs decoded on several threads, a quarter on one without
   * reading ahead (by the last byte, so that a crash reproduces from its
   * input alone). */
  uint8_t last = size > 0 ? data[size - 1] : 0;
  opts.threads = last & 1 ? 3 : 1;
  opts.no_readahead = (last & 3) == 2;
  if (pt_parquet_read_buffer(copy, (int64_t)size, NULL, NULL, &opts, &s, &err) != PT_OK) {
    free(copy);
    return 0;
  }
  struct ArrowSchema schema;
  if (s.get_schema(&s, &schema) == 0) {
    for (int n = 0; n < 1000; n++) {
      struct ArrowArray a;
      if (s.get_next(&s, &a) != 0 || a.release == NULL) break;
      if (pt_array_validate(&schema, &a, &err) != PT_OK) {
        fprintf(stderr, "reader returned an invalid batch: %s\n", err.message);
        abort();
      }
      if (a.length <= 4096) {
        pt_buf out = {0};
        pt_json_write_batch(&schema, &a, &out, &err);
        pt_buf_free(&out);
      }
      a.release(&a);
    }
    schema.release(&schema);
  }
  s.release(&s);
  free(copy);
  return 0;
}
