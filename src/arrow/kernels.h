/* kernels.h — row selection and hashing over record batches: take (gather
 * rows by index), filter (by a bitmap), concatenation of batches, and a
 * stable row hash of key columns (what hash partitioning uses). Results are
 * compact protium-owned arrays (pt__array_init); inputs stay the caller's.
 */
#ifndef PT_ARROW_KERNELS_H
#define PT_ARROW_KERNELS_H

#include "arrow/arrow.h"

/* *out = rows indices[0..n) of array (any type of pt_type_id, nested and
 * dictionary-encoded included; a dictionary is kept as it is and only the
 * indices are taken). indices are relative to the array (its offset is
 * added inside) and must lie in [0, length): PT_ERANGE otherwise. array need
 * not be a struct. On PT_OK the caller owns *out; on failure *out is
 * released. */
int pt__array_take(const struct ArrowSchema *schema, const struct ArrowArray *array,
                   const int64_t *indices, int64_t n, struct ArrowArray *out, pt_error *err);

/* *out = the rows i of array whose bit i (LSB-first, from bit 0) of
 * keep_bits is set. */
int pt__array_filter(const struct ArrowSchema *schema, const struct ArrowArray *array,
                     const uint8_t *keep_bits, struct ArrowArray *out, pt_error *err);

/* *out = the rows of arrays[0..n) one after the other. Dictionary-encoded
 * columns must share one dictionary (the same buffers): PT_ENOTSUP
 * otherwise, so that a caller can fall back to keeping the arrays apart. */
int pt__array_concat(const struct ArrowSchema *schema, const struct ArrowArray *const *arrays,
                     int64_t n, struct ArrowArray *out, pt_error *err);

/* pt__array_concat of rows [starts[i], starts[i] + lengths[i]) of each
 * arrays[i] (relative to the array; NULL starts: 0, NULL lengths: to the
 * end): PT_ERANGE when a range is not within its array. With flags
 * PT__CONCAT_NO_DICTIONARIES, dictionary-encoded nodes get their indices
 * only, whatever their dictionaries, and their out->dictionary is left
 * released (release == NULL) for the caller to fill: what a reader does
 * that attaches its own current dictionaries. On PT_OK the caller owns
 * *out; on failure *out is released. */
#define PT__CONCAT_NO_DICTIONARIES 1
int pt__array_concat_ranges(const struct ArrowSchema *schema,
                            const struct ArrowArray *const *arrays, const int64_t *starts,
                            const int64_t *lengths, int64_t n, int flags,
                            struct ArrowArray *out, pt_error *err);

/* hashes[i] = hash of row i's values in the key columns key_cols[0..n_keys)
 * (indices of children of the struct batch). Stable across processes and
 * runs: equal values give equal hashes whatever the batch, its offset or
 * its dictionary (dictionary columns hash their values, not indices); nulls
 * hash to a constant; -0.0 hashes as 0.0 and every NaN alike. hashes holds
 * batch->length values. */
int pt__hash_rows(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                  const int *key_cols, int n_keys, uint64_t *hashes, pt_error *err);

#endif /* PT_ARROW_KERNELS_H */
