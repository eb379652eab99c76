/* kafka.h — the Kafka module (librdkafka) as the rest of protium uses it:
 * topic offsets for the driver, a partition reader for the executors'
 * Kafka source, a transactional writer for their Kafka sink, and the
 * decoders of record values. Client settings travel as pt__kafka_client,
 * whose strings are borrowed from the caller (pt_kafka_options on the
 * driver, the stage's KafkaClient message on an executor).
 */
#ifndef PT_KAFKA_H
#define PT_KAFKA_H

#include <stdint.h>

#include "core/core.h"
#include "protium.h"

typedef struct pt__kafka_client {
  const char *bootstrap;           /* "host:port,..." */
  size_t n_props;                  /* extra librdkafka properties */
  const char *const *keys;
  const char *const *values;
  int64_t timeout_ms;              /* one request; > 0 */
  int64_t max_retry_ms;            /* brokers away: retried with backoff this long */
} pt__kafka_client;

/* The defaults of pt_kafka_options applied to the zeros of c. */
void pt__kafka_client_defaults(pt__kafka_client *c);

/* pt_kafka_topic_offsets over c. On PT_OK the caller owns *out (free()). */
int pt__kafka_offsets(const pt__kafka_client *c, const char *topic,
                      pt_kafka_partition_offsets **out, int32_t *n, pt_error *err);

/* A client for pt__kafka_offsets kept across calls (the streaming source
 * asks at every trigger): its connection and metadata stay warm. */
typedef struct pt__kafka_offsets_client pt__kafka_offsets_client;
/* c is copied (its strings are borrowed while the client lives). On PT_OK
 * the caller owns *out (pt__kafka_offsets_client_free). */
int pt__kafka_offsets_client_new(const pt__kafka_client *c, pt__kafka_offsets_client **out,
                                 pt_error *err);
/* pt__kafka_offsets on oc's handle. On PT_OK the caller owns *out (free()). */
int pt__kafka_offsets_get(pt__kafka_offsets_client *oc, const char *topic,
                          pt_kafka_partition_offsets **out, int32_t *n, pt_error *err);
/* NULL is fine. */
void pt__kafka_offsets_client_free(pt__kafka_offsets_client *oc);
/* Waits (at most wait_ms) until read_committed readers of topic see every
 * partition up to its present high watermark: commit markers land after a
 * transaction's commit returns. Best effort; never fails. */
void pt__kafka_wait_committed_visible(const pt__kafka_client *c, const char *topic,
                                      int64_t wait_ms);

/* The schema of pt_read_kafka's batches. On PT_OK the caller owns *out. */
int pt__kafka_schema(struct ArrowSchema *out, pt_error *err);

/* Reads one topic partition's records at offsets [start, end) with
 * isolation.level=read_committed, assigned (no consumer group). */
typedef struct pt__kafka_reader pt__kafka_reader;

/* On PT_OK the caller owns *out (pt__kafka_reader_free). topic is copied. */
int pt__kafka_reader_open(const pt__kafka_client *c, const char *topic, int32_t partition,
                          int64_t start, int64_t end, pt__kafka_reader **out, pt_error *err);
/* The next batch of at most max_rows records (<= 0: 8,192; fewer, not
 * below 1,024, when no more have arrived yet) (caller owns *out);
 * out->release is NULL once the reader's position reached end. */
int pt__kafka_reader_next(pt__kafka_reader *r, int64_t max_rows, struct ArrowArray *out,
                          pt_error *err);
/* Bytes of keys and values read so far. */
int64_t pt__kafka_reader_bytes(const pt__kafka_reader *r);
/* The oldest timestamp (ms since the epoch) of the records read so far;
 * -1 when none had one. */
int64_t pt__kafka_reader_oldest_ms(const pt__kafka_reader *r);
void pt__kafka_reader_free(pt__kafka_reader *r);

/* Produces one sink partition's rows in one transaction (the exactly-once
 * rule of docs/kafka.md). */
typedef struct pt__kafka_writer pt__kafka_writer;

/* A writer for "<prefix>-<sink_partition>": checks the schema now, and
 * starts the broker work on a thread of its own (a producer from the pool,
 * or a new one that fences earlier producers of the id; the marker; the
 * transaction begun), which the first write or the commit waits for and
 * whose failure they return. schema (borrowed while the writer lives) must
 * hold "value" and may hold "key", "partition", "headers"; with
 * value_format PT_KAFKA_VALUE_JSON every column of a row is encoded into
 * its value instead (pt_kafka_encode_json; no key, the producer's
 * partitioner). c's strings are borrowed while the writer lives. On PT_OK
 * the caller owns *out. */
int pt__kafka_writer_open(const pt__kafka_client *c, const char *topic, const char *prefix,
                          int64_t sink_partition, int64_t batch_id, int value_format,
                          const struct ArrowSchema *schema, pt__kafka_writer **out,
                          pt_error *err);
/* 1 when batch_id (or a later batch) was found committed and nothing was
 * written (waits for the opener). */
int pt__kafka_writer_skipped(pt__kafka_writer *w);
/* Produces the rows of batch (a struct array of the schema) in the
 * transaction. The batch stays the caller's. */
int pt__kafka_writer_write(pt__kafka_writer *w, const struct ArrowArray *batch, pt_error *err);
/* Commits the records and the marker together; *produced = records sent. */
int pt__kafka_writer_commit(pt__kafka_writer *w, int64_t *produced, pt_error *err);
/* Producers the writer made (0: its executor's pool had one, 1 or 2: a new
 * one, after a pooled one found itself fenced), after the commit. */
int64_t pt__kafka_writer_made(pt__kafka_writer *w);
/* Aborts a transaction left open, frees. NULL is fine. */
void pt__kafka_writer_free(pt__kafka_writer *w);

/* PT_OK when pt_kafka_encode_json can encode rows of schema (a struct);
 * otherwise its error for them. */
int pt__kafka_json_encodable(const struct ArrowSchema *schema, pt_error *err);

/* Idle handles kept for the next task of this process (pool.c). kind is
 * the caller's (a handle type); key says which settings the handle was
 * made with (pt__kafka_pool_key). */
enum { PT__KAFKA_POOL_READER = 1, PT__KAFKA_POOL_WRITER = 2 };
/* On PT_OK the caller owns *out (pt__free): c's bootstrap and properties
 * with extra after them. */
int pt__kafka_pool_key(const pt__kafka_client *c, const char *extra, char **out);
/* An idle item of kind and key, now the caller's, or NULL. */
void *pt__kafka_pool_take(int kind, const char *key);
/* Gives item to the pool (key is copied); destroy frees it when the pool
 * lets it go, possibly at once. */
void pt__kafka_pool_put(int kind, const char *key, void *item, void (*destroy)(void *));
/* Destroys every idle item. */
void pt__kafka_pool_clear(void);

/* Client internals shared by the files of this module. */
typedef struct rd_kafka_s rd_kafka_t;
typedef struct pt__kafka_log pt__kafka_log;
/* A handle of type (RD_KAFKA_PRODUCER / _CONSUMER) with c's settings, the
 * extra properties (n pairs of keys/values) after the user's, and a log
 * kept for error messages. what names the caller in errors. On PT_OK the
 * caller owns *out (pt__kafka_destroy). */
int pt__kafka_new(const pt__kafka_client *c, int type, const char *const *keys,
                  const char *const *values, size_t n, const char *what, rd_kafka_t **out,
                  pt_error *err);
void pt__kafka_destroy(rd_kafka_t *rk);
/* The delivery report of producers (produce.c): counts a record that failed
 * against its writer (the record's opaque). */
typedef struct rd_kafka_message_s rd_kafka_message_t;
void pt__kafka_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
/* The last warning or error librdkafka logged on rk ("" if none), for
 * messages. Copied into buf. */
void pt__kafka_last_log(rd_kafka_t *rk, char *buf, size_t size);
/* Forgets rk's last logged problem (a handle taken from the pool). */
void pt__kafka_log_clear(rd_kafka_t *rk);
/* Milliseconds of a monotonic clock. */
int64_t pt__kafka_now_ms(void);
/* The message of brokers that stayed away: names them and says what to do. */
int pt__kafka_unreachable(const pt__kafka_client *c, rd_kafka_t *rk, const char *what,
                          const char *doing, pt_error *err);

#endif /* PT_KAFKA_H */
