/* parquet.h — what other modules (the engine's Parquet source) may use of
 * src/parquet beyond include/protium.h: planning a read, row group by row
 * group, without decoding any data.
 */
#ifndef PT_PARQUET_H
#define PT_PARQUET_H

#include "core/core.h"

typedef struct pt__parquet_rg {
  int64_t index;  /* in the file */
  int64_t rows;
  int64_t bytes;  /* uncompressed size of its column chunks, as the file says */
} pt__parquet_rg;

/* Reads the footer of the Parquet file at path: the Arrow schema of what
 * opts selects (columns), and the row groups (within opts' range) that may
 * hold rows matching opts->filter (all of them without one). On PT_OK the
 * caller owns *schema and *rgs (pt__free), *n entries. */
int pt__parquet_plan(const char *path, const pt_parquet_read_options *opts,
                     struct ArrowSchema *schema, pt__parquet_rg **rgs, int64_t *n,
                     pt_error *err);

#endif /* PT_PARQUET_H */
