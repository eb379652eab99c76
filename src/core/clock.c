/* clock.c — the monotonic clock in milliseconds, for deadlines (connects,
 * discovery scripts, idle connections) that wall-clock jumps must not move.
 */
#include <time.h>

#include "core/core.h"

int64_t pt__mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
