/* split.c — how the file sources (pt_read_parquet, pt_read_delta,
 * pt_read_csv) size their partitions, in one place: how many a read of
 * some bytes gets, from the session's task slots and the read's cap, and
 * which partition each piece of it (a row group, a byte range) goes to.
 */
#include "api/api_int.h"

/* No partition is planned under this many bytes: they decode or parse in a
 * few ms, which would not pay for a task of their own. Spark's
 * openCostInBytes (4 MiB) plays the same part in maxSplitBytes. */
#define SPLIT_FLOOR ((int64_t)4 << 20)

/* The task slots of the session's live executors; 0 when the driver cannot
 * tell. */
static int64_t session_slots(pt_session *s) {
  enum { LOOK = 16 }; /* executors looked at; the rest are taken alike */
  pt_executor_info *infos = pt__calloc(LOOK, sizeof *infos); /* owned, freed here */
  int64_t ne = 0, slots = 0;
  if (!infos || pt__driver_executors(s->driver, infos, LOOK, &ne) != PT_OK) ne = 0;
  for (int64_t i = 0; i < ne && i < LOOK; i++) slots += infos[i].alive ? infos[i].slots : 0;
  if (ne > LOOK) slots = slots * ne / LOOK;
  pt__free(infos);
  return slots;
}

int64_t pt__split_parts(pt_session *s, int64_t total, int64_t cap) {
  int64_t slots = session_slots(s);
  int64_t parts = cap > 0 && total > 0 ? (total - 1) / cap + 1 : 1;
  if (slots <= 0) return parts;
  /* Over the cap: a multiple of the slots, so that no slot reads a short
   * last partition alone while the others wait (270 MB on 2 slots under a
   * 128 MiB cap: 4 partitions of 68 MB, not 128 + 128 + 14). */
  if (parts > 1) return (parts + slots - 1) / slots * slots;
  /* Under it: one per slot, as long as each keeps the floor. */
  int64_t fit = total / SPLIT_FLOOR;
  return fit < 1 ? 1 : fit < slots ? fit : slots;
}

void pt__deal_init(pt__deal *d, int64_t total, int64_t parts, int64_t cap) {
  *d = (pt__deal){.total = total, .parts = parts > 0 ? parts : 1, .cap = cap};
}

int64_t pt__deal_next(pt__deal *d, int64_t bytes) {
  /* A piece goes to the share of the total its middle byte falls in, so
   * equal pieces split evenly whatever their number; a piece that would
   * take its partition past the cap starts the next one all the same. */
  int64_t mid = d->before + bytes / 2;
  int64_t want = d->total > 0 ? (int64_t)((double)mid / (double)d->total * (double)d->parts) : 0;
  d->before += bytes;
  if (d->acc > 0 && (want > d->share || (d->cap > 0 && d->acc + bytes > d->cap))) {
    d->partition++;
    d->acc = 0;
  }
  if (want > d->share) d->share = want;
  d->acc += bytes;
  return d->partition;
}
