/* partition.c — Spark JDBC's way of splitting one table read into
 * num_partitions queries on a numeric column: equal strides between
 * lower_bound and upper_bound, the first range open below (and holding the
 * column's NULLs), the last open above, so every row lands in exactly one
 * partition whatever the bounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "sql/sql.h"

int pt__sql_partition_predicates(const char *column, int64_t lower, int64_t upper,
                                 int64_t num_partitions, char ***out, int64_t *n_out,
                                 pt_error *err) {
  *out = NULL;
  *n_out = 0;
  if (column == NULL || column[0] == 0)
    return pt__errorf(err, PT_EINVAL, "sql: partition_column is empty; name a numeric column");
  if (num_partitions < 1)
    return pt__errorf(err, PT_EINVAL, "sql: num_partitions is %lld; it must be at least 1",
                      (long long)num_partitions);
  if (lower > upper)
    return pt__errorf(err, PT_EINVAL,
                      "sql: lower_bound %lld is above upper_bound %lld; swap them",
                      (long long)lower, (long long)upper);
  /* Fewer partitions when the range holds fewer values than partitions, as
   * Spark does; the width is computed in 128 bits so extreme bounds cannot
   * overflow. */
  __int128 width = (__int128)upper - lower;
  int64_t n = num_partitions;
  if (width < n) n = width > 0 ? (int64_t)width : 1;
  int64_t stride = (int64_t)(upper / n - lower / n);
  char **preds = calloc((size_t)n, sizeof *preds);
  if (preds == NULL) return pt__errorf(err, PT_ENOMEM, "sql: out of memory for predicates");
  size_t cap = 2 * strlen(column) + 96;
  __int128 cur = lower;
  for (int64_t i = 0; i < n; i++) {
    preds[i] = malloc(cap);
    if (preds[i] == NULL) {
      pt__sql_predicates_free(preds, n);
      return pt__errorf(err, PT_ENOMEM, "sql: out of memory for predicates");
    }
    long long lo = (long long)cur;
    cur += stride;
    long long hi = (long long)cur;
    if (n == 1)
      snprintf(preds[i], cap, "1=1");
    else if (i == 0)
      snprintf(preds[i], cap, "%s < %lld OR %s IS NULL", column, hi, column);
    else if (i == n - 1)
      snprintf(preds[i], cap, "%s >= %lld", column, lo);
    else
      snprintf(preds[i], cap, "%s >= %lld AND %s < %lld", column, lo, column, hi);
  }
  *out = preds;
  *n_out = n;
  return PT_OK;
}

void pt__sql_predicates_free(char **preds, int64_t n) {
  for (int64_t i = 0; preds != NULL && i < n; i++) free(preds[i]);
  free(preds);
}
