/* fuzz_pgcopy.c — libFuzzer target for the binary COPY decoder of src/sql:
 * the input is decoded as a stream of a table of every mapped kind, fed in
 * two pieces split where its first byte says. Whatever decodes must give a
 * valid Arrow array; a failed validation is a bug: abort.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sql.h"

static const pt__pg_kind k_kinds[] = {
    PT__PG_BOOL,   PT__PG_INT2,    PT__PG_INT4,      PT__PG_INT8,
    PT__PG_FLOAT8, PT__PG_TEXT,    PT__PG_JSONB,     PT__PG_BYTEA,
    PT__PG_DATE,   PT__PG_TIMESTAMP, PT__PG_TIMESTAMPTZ, PT__PG_UUID,
    PT__PG_FLOAT4, PT__PG_NUMERIC, PT__PG_TIME,      PT__PG_INTERVAL,
    PT__PG_ARRAY_OF(PT__PG_INT4), PT__PG_ARRAY_OF(PT__PG_TEXT),
    PT__PG_ARRAY_OF(PT__PG_NUMERIC), PT__PG_ARRAY_OF(PT__PG_INTERVAL)};
#define NKINDS ((int)(sizeof k_kinds / sizeof k_kinds[0]))
static const char *const k_names[NKINDS] = {"b",  "i2",   "i4", "i8", "f8", "t",  "jb",
                                            "by", "d",    "ts", "tstz", "u", "f4", "n",
                                            "tm", "iv",   "ai4", "at", "an", "aiv"};
/* numeric(38, 6) for the numeric column and numeric[]; the others have none. */
static const int32_t k_typmods[NKINDS] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, ((38 << 16) | 6) + 4,
    -1, -1, -1, -1, ((38 << 16) | 6) + 4, -1};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  /* The first byte picks the column count (1..NKINDS), the second the split. */
  int64_t ncol = 1 + data[0] % NKINDS;
  size_t split = size > 1 ? data[1] : 0;
  data += size > 1 ? 2 : 1;
  size -= size > 1 ? 2 : 1;
  if (split > size) split = size;
  /* Private copies, so reads past either piece's end hit ASan's redzone. */
  uint8_t *a = malloc(split ? split : 1), *b = malloc(size - split ? size - split : 1);
  if (a == NULL || b == NULL) return free(a), free(b), 0;
  memcpy(a, data, split);
  memcpy(b, data + split, size - split);
  pt_error err;
  struct ArrowSchema schema;
  pt_builder *builder = NULL;
  if (pt__pg_schema(ncol, k_names, k_kinds, k_typmods, &schema, &err) != PT_OK) goto free_bytes;
  if (pt_builder_new(&schema, &builder, &err) != PT_OK) goto free_schema;
  pt__pgcopy d;
  pt__pgcopy_init(&d, ncol, k_kinds, builder);
  if (pt__pgcopy_feed(&d, a, (int64_t)split, &err) == PT_OK &&
      pt__pgcopy_feed(&d, b, (int64_t)(size - split), &err) == PT_OK &&
      pt__pgcopy_finish(&d, &err) == PT_OK) {
    struct ArrowArray out;
    if (pt_builder_finish(builder, &out, &err) == PT_OK) {
      if (out.length != d.rows || pt_array_validate(&schema, &out, &err) != PT_OK) {
        fprintf(stderr, "decoded array is invalid: %s\n", err.message);
        abort();
      }
      out.release(&out);
    }
  }
  pt_builder_free(builder);
free_schema:
  schema.release(&schema);
free_bytes:
  free(a);
  free(b);
  return 0;
}
