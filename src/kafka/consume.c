/* consume.c — one topic partition's records at offsets [start, end) as
 * Arrow batches with Spark's Kafka columns. The consumer is assigned to the
 * exact start offset (no group, nothing committed) and reads with
 * isolation.level=read_committed, so records of aborted transactions and
 * the transaction markers take offsets but never arrive: the range is done
 * when the position reaches end, not after end - start records.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "kafka/kafka.h"

/* Rows of a batch when the caller gives no limit. A streaming task's
 * function and sink work on a batch while librdkafka fetches the next in
 * the background: smaller batches overlap them (a micro-batch's read,
 * transform and produce in sequence would add up), larger ones spread a
 * batch's fixed cost (a Python function's call, a DataFrame). */
#define BATCH_ROWS 8192
/* With at least this many rows and nothing more received yet, the batch
 * goes on as it is rather than waiting for the next fetch. */
#define EARLY_ROWS 1024

/* Columns of the schema, in order. */
enum { C_KEY, C_VALUE, C_TOPIC, C_PARTITION, C_OFFSET, C_TIMESTAMP, C_TSTYPE, C_HEADERS, N_COLS };

struct pt__kafka_reader {
  pt__kafka_client c;          /* borrowed strings (the stage's message) */
  rd_kafka_t *rk;              /* owned; from the pool or new */
  char *key;                   /* owned: rk's pool key */
  int failed;                  /* a call failed: rk is not given back */
  int heard;                   /* a record or EOF of this assignment came: from then on
                                  rd_kafka_position is this assignment's, not a pooled
                                  consumer's earlier one */
  char *topic;                 /* owned */
  int32_t partition;
  int64_t start, end;
  int64_t next;                /* offset after the last record seen (or start) */
  int done;
  struct ArrowSchema schema;   /* owned */
  pt_builder *b;               /* owned: the batch being built */
  int64_t bytes;
  int64_t oldest_ms;           /* the oldest record timestamp read; -1: none */
};

int pt__kafka_schema(struct ArrowSchema *out, pt_error *err) {
  PT_RETURN_NOT_OK(pt_schema_init(out, "+s", "", 0, N_COLS, err));
  struct ArrowSchema **ch = out->children;
  int rc = pt_schema_init(ch[C_KEY], "z", "key", ARROW_FLAG_NULLABLE, 0, err);
  if (rc == PT_OK) rc = pt_schema_init(ch[C_VALUE], "z", "value", ARROW_FLAG_NULLABLE, 0, err);
  if (rc == PT_OK) rc = pt_schema_init(ch[C_TOPIC], "u", "topic", 0, 0, err);
  if (rc == PT_OK) rc = pt_schema_init(ch[C_PARTITION], "i", "partition", 0, 0, err);
  if (rc == PT_OK) rc = pt_schema_init(ch[C_OFFSET], "l", "offset", 0, 0, err);
  if (rc == PT_OK)
    rc = pt_schema_init(ch[C_TIMESTAMP], "tsm:UTC", "timestamp", ARROW_FLAG_NULLABLE, 0, err);
  if (rc == PT_OK)
    rc = pt_schema_init(ch[C_TSTYPE], "i", "timestamp_type", ARROW_FLAG_NULLABLE, 0, err);
  if (rc == PT_OK) rc = pt_schema_init(ch[C_HEADERS], "+l", "headers", ARROW_FLAG_NULLABLE, 1, err);
  if (rc == PT_OK) rc = pt_schema_init(ch[C_HEADERS]->children[0], "+s", "item", 0, 2, err);
  if (rc == PT_OK)
    rc = pt_schema_init(ch[C_HEADERS]->children[0]->children[0], "u", "key", 0, 0, err);
  if (rc == PT_OK)
    rc = pt_schema_init(ch[C_HEADERS]->children[0]->children[1], "z", "value",
                        ARROW_FLAG_NULLABLE, 0, err);
  if (rc != PT_OK) out->release(out);
  return rc;
}

static int user_set(const pt__kafka_client *c, const char *key) {
  for (size_t i = 0; i < c->n_props; i++)
    if (strcmp(c->keys[i], key) == 0) return 1;
  return 0;
}

int pt__kafka_reader_open(const pt__kafka_client *c, const char *topic, int32_t partition,
                          int64_t start, int64_t end, pt__kafka_reader **out, pt_error *err) {
  *out = NULL;
  if (start < 0 || end < start)
    return pt__errorf(err, PT_EINVAL, "read_kafka: topic '%s' partition %d: bad offset range [%lld, %lld)",
                      topic, (int)partition, (long long)start, (long long)end);
  pt__kafka_reader *r = pt__calloc(1, sizeof *r);
  if (!r) return pt__errorf(err, PT_ENOMEM, "read_kafka: out of memory");
  r->c = *c;
  pt__kafka_client_defaults(&r->c);
  r->partition = partition;
  r->start = r->next = start;
  r->oldest_ms = -1;
  r->end = end;
  r->topic = pt__strdup(topic);
  int rc = r->topic ? PT_OK : pt__errorf(err, PT_ENOMEM, "read_kafka: out of memory");
  if (rc == PT_OK) rc = pt__kafka_schema(&r->schema, err);
  if (rc == PT_OK) rc = pt_builder_new(&r->schema, &r->b, err);
  if (rc == PT_OK && start == end) r->done = 1;
  if (rc == PT_OK && !r->done) {
    /* librdkafka's assign() wants a group id; the group is never joined
     * and nothing is committed to it. */
    const char *keys[8] = {"isolation.level", "enable.auto.commit", "enable.partition.eof",
                           "auto.offset.reset", "enable.auto.offset.store", "group.id"};
    const char *values[8] = {"read_committed", "false", "true", "error", "false",
                             "protium-read-kafka"};
    size_t n_keys = 6;
    /* Tuning the user may set otherwise: a micro-batch's range in a few
     * fetches (librdkafka's 1 MiB per partition is ~5,000 records of 200
     * bytes, a round trip each), and a fetch that waits at the end of the
     * log (librdkafka's 500 ms) not holding up the next assignment of a
     * pooled consumer. */
    if (!user_set(&r->c, "max.partition.fetch.bytes")) {
      keys[n_keys] = "max.partition.fetch.bytes";
      values[n_keys++] = "8388608";
    }
    if (!user_set(&r->c, "fetch.wait.max.ms")) {
      keys[n_keys] = "fetch.wait.max.ms";
      values[n_keys++] = "50";
    }
    rc = pt__kafka_pool_key(&r->c, "reader", &r->key) == PT_OK
             ? PT_OK
             : pt__errorf(err, PT_ENOMEM, "read_kafka: out of memory");
    /* A consumer of an earlier task with the same settings: its broker
     * connections and metadata are warm. */
    if (rc == PT_OK) r->rk = pt__kafka_pool_take(PT__KAFKA_POOL_READER, r->key);
    if (r->rk) pt__kafka_log_clear(r->rk);
    else if (rc == PT_OK)
      rc = pt__kafka_new(&r->c, RD_KAFKA_CONSUMER, keys, values, n_keys, "read_kafka", &r->rk,
                         err);
  }
  if (rc == PT_OK && !r->done) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = start;
    rd_kafka_resp_err_t e = rd_kafka_assign(r->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) rc = pt__errorf(err, PT_EIO, "read_kafka: topic '%s' partition %d: assign: %s", topic,
                           (int)partition, rd_kafka_err2str(e));
  }
  if (rc != PT_OK) {
    r->failed = 1;
    pt__kafka_reader_free(r);
    return rc;
  }
  *out = r;
  return PT_OK;
}

static int append_record(pt__kafka_reader *r, const rd_kafka_message_t *m, pt_error *err) {
  pt_builder *b = r->b;
  int rc = PT_OK;
  pt_builder *kb = pt_builder_child(b, C_KEY), *vb = pt_builder_child(b, C_VALUE);
  rc = m->key ? pt_builder_append_bytes(kb, m->key, (int64_t)m->key_len)
              : pt_builder_append_null(kb, 1);
  if (rc == PT_OK)
    rc = m->payload ? pt_builder_append_bytes(vb, m->payload, (int64_t)m->len)
                    : pt_builder_append_null(vb, 1);
  if (rc == PT_OK)
    rc = pt_builder_append_bytes(pt_builder_child(b, C_TOPIC), r->topic, (int64_t)strlen(r->topic));
  if (rc == PT_OK) rc = pt_builder_append_int(pt_builder_child(b, C_PARTITION), m->partition);
  if (rc == PT_OK) rc = pt_builder_append_int(pt_builder_child(b, C_OFFSET), m->offset);
  rd_kafka_timestamp_type_t tst;
  int64_t ts = rd_kafka_message_timestamp(m, &tst);
  if (rc == PT_OK) {
    if (tst == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) {
      rc = pt_builder_append_null(pt_builder_child(b, C_TIMESTAMP), 1);
      if (rc == PT_OK) rc = pt_builder_append_null(pt_builder_child(b, C_TSTYPE), 1);
    } else {
      rc = pt_builder_append_int(pt_builder_child(b, C_TIMESTAMP), ts);
      if (ts >= 0 && (r->oldest_ms < 0 || ts < r->oldest_ms)) r->oldest_ms = ts;
      /* Spark's numbering: 0 create time, 1 log append time. */
      if (rc == PT_OK)
        rc = pt_builder_append_int(pt_builder_child(b, C_TSTYPE),
                                   tst == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? 1 : 0);
    }
  }
  pt_builder *hb = pt_builder_child(b, C_HEADERS);
  rd_kafka_headers_t *hdrs = NULL;
  if (rc == PT_OK) {
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) hdrs = NULL;
    pt_builder *item = pt_builder_child(hb, 0);
    const char *name;
    const void *val;
    size_t size;
    for (size_t i = 0; hdrs && rc == PT_OK &&
                       rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
      rc = pt_builder_append_bytes(pt_builder_child(item, 0), name, (int64_t)strlen(name));
      if (rc == PT_OK)
        rc = val ? pt_builder_append_bytes(pt_builder_child(item, 1), val, (int64_t)size)
                 : pt_builder_append_null(pt_builder_child(item, 1), 1);
      if (rc == PT_OK) rc = pt_builder_append_row(item);
    }
    if (rc == PT_OK) rc = pt_builder_append_row(hb);
  }
  if (rc == PT_OK) rc = pt_builder_append_row(b);
  if (rc != PT_OK)
    return pt__errorf(err, rc, "read_kafka: topic '%s' partition %d offset %lld: %s", r->topic,
                      (int)r->partition, (long long)m->offset, pt_builder_last_error(b));
  r->bytes += (int64_t)(m->key_len + m->len);
  return PT_OK;
}

static int reader_next(pt__kafka_reader *r, int64_t max_rows, struct ArrowArray *out,
                       pt_error *err);

int pt__kafka_reader_next(pt__kafka_reader *r, int64_t max_rows, struct ArrowArray *out,
                          pt_error *err) {
  int rc = reader_next(r, max_rows, out, err);
  if (rc != PT_OK) r->failed = 1;
  return rc;
}

static int reader_next(pt__kafka_reader *r, int64_t max_rows, struct ArrowArray *out,
                       pt_error *err) {
  memset(out, 0, sizeof *out);
  if (max_rows <= 0) max_rows = BATCH_ROWS;
  int64_t rows = 0;
  int64_t last_progress = pt__kafka_now_ms();
  int64_t eof_at = -1; /* the partition's end as last reported, or -1 */
  while (!r->done && rows < max_rows) {
    int early = rows >= EARLY_ROWS;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, early ? 0 : 100);
    if (!m && early) break; /* these go on while the rest arrives */
    if (!m) {
      /* Markers and aborted records move the position without a message. */
      rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(l, r->topic, r->partition);
      if (r->heard && rd_kafka_position(r->rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR &&
          l->elems[0].offset >= 0 && l->elems[0].offset > r->next) {
        r->next = l->elems[0].offset;
        last_progress = pt__kafka_now_ms();
      }
      rd_kafka_topic_partition_list_destroy(l);
      if (r->next >= r->end) {
        r->done = 1;
        break;
      }
      if (pt__kafka_now_ms() - last_progress > r->c.max_retry_ms) {
        if (eof_at >= 0)
          return pt__errorf(err, PT_ETIMEDOUT,
                            "read_kafka: topic '%s' partition %d has committed records only "
                            "up to offset %lld, but the range ends at %lld (waited %lld ms); "
                            "ask for offsets below the latest (pt_kafka_topic_offsets)",
                            r->topic, (int)r->partition, (long long)eof_at, (long long)r->end,
                            (long long)r->c.max_retry_ms);
        return pt__kafka_unreachable(&r->c, r->rk, "read_kafka", "a fetch", err);
      }
      continue;
    }
    rd_kafka_resp_err_t e = m->err;
    int64_t off = m->offset;
    if (m->rkt && (m->partition != r->partition || strcmp(rd_kafka_topic_name(m->rkt), r->topic))) {
      /* left from an earlier assignment of a pooled consumer */
      rd_kafka_message_destroy(m);
      continue;
    }
    if (m->rkt) r->heard = 1;
    if (e == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      rd_kafka_message_destroy(m);
      if (off > r->next) r->next = off;
      eof_at = off;
      if (r->next >= r->end) r->done = 1;
      continue;
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      char what[256];
      snprintf(what, sizeof what, "%s", rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      if (e == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE || e == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)
        return pt__errorf(err, PT_EINVAL,
                          "read_kafka: topic '%s' partition %d: offset %lld is no longer (or "
                          "not yet) in the log (%s); records were deleted by retention: read "
                          "from the earliest offset (pt_kafka_topic_offsets)",
                          r->topic, (int)r->partition, (long long)r->next, what);
      if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
          e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
        return pt__errorf(err, PT_EINVAL, "read_kafka: topic '%s' partition %d does not exist: %s",
                          r->topic, (int)r->partition, what);
      if (e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
          e == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED)
        return pt__errorf(err, PT_EINVAL,
                          "read_kafka: topic '%s': not authorized (%s); check the security "
                          "options", r->topic, what);
      /* Transport errors: librdkafka reconnects; the deadline above bounds it. */
      if (pt__kafka_now_ms() - last_progress > r->c.max_retry_ms)
        return pt__kafka_unreachable(&r->c, r->rk, "read_kafka", "a fetch", err);
      continue;
    }
    last_progress = pt__kafka_now_ms();
    if (off >= r->end) { /* past the range: it is complete */
      rd_kafka_message_destroy(m);
      r->done = 1;
      break;
    }
    int rc = off >= r->next ? append_record(r, m, err) : PT_OK;
    rd_kafka_message_destroy(m);
    if (rc != PT_OK) return rc;
    if (off >= r->next) {
      rows++;
      r->next = off + 1;
    }
    if (r->next >= r->end) r->done = 1;
  }
  if (rows == 0) return PT_OK;
  int rc = pt_builder_finish(r->b, out, err);
  if (rc != PT_OK) return pt__error_prefix(err, rc, "read_kafka: ");
  return PT_OK;
}

int64_t pt__kafka_reader_bytes(const pt__kafka_reader *r) { return r->bytes; }

int64_t pt__kafka_reader_oldest_ms(const pt__kafka_reader *r) { return r->oldest_ms; }

static void consumer_destroy(void *rk) {
  rd_kafka_consumer_close(rk);
  pt__kafka_destroy(rk);
}

void pt__kafka_reader_free(pt__kafka_reader *r) {
  if (!r) return;
  if (r->rk) {
    /* unassigned, it fetches nothing while idle */
    int clean = rd_kafka_assign(r->rk, NULL) == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (clean && r->done && !r->failed && r->key) {
      pt__kafka_pool_put(PT__KAFKA_POOL_READER, r->key, r->rk, consumer_destroy);
    } else {
      consumer_destroy(r->rk);
    }
  }
  pt__free(r->key);
  pt_builder_free(r->b);
  if (r->schema.release) r->schema.release(&r->schema);
  pt__free(r->topic);
  pt__free(r);
}
