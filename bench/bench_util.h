/* bench_util.h — what the C benchmark drivers share: a monotonic clock in
 * seconds and percentiles of a sample. Header-only, so that each driver
 * stays one program.
 */
#ifndef PT_BENCH_UTIL_H
#define PT_BENCH_UTIL_H

#include <math.h>
#include <stdlib.h>
#include <time.h>

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The p-th percentile (nearest rank) of v[0..n); sorts v in place. */
static inline double percentile(double *v, int n, double p) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  int i = (int)ceil(p / 100.0 * n) - 1;
  if (i < 0) i = 0;
  if (i >= n) i = n - 1;
  return v[i];
}

#endif
