/* produce.c — one sink partition's rows produced exactly once per batch id.
 * A transactional producer ("<prefix>-<p>") fences every earlier producer
 * of the partition (a zombie of a killed attempt cannot commit any more),
 * then the marker is read: the committed offset of consumer group
 * "<prefix>-<p>" on partition 0 of the topic, which each commit sets to
 * batch_id + 1 in the same transaction as the records. A marker above
 * batch_id means this batch (or a later one) is in: nothing is written.
 * The producer (initialized) and the marker's consumer are kept in the
 * process's pool after a clean commit, for the next batch of the same id.
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "arrow/arrow.h"
#include "kafka/kafka.h"

struct pt__kafka_writer {
  pt__kafka_client c;
  rd_kafka_t *rk;                /* owned: the transactional producer */
  rd_kafka_t *mrk;               /* owned: the marker's consumer (group txid) */
  char *key;                     /* owned: the pool key of rk and mrk */
  int64_t known;                 /* the highest batch id known to be committed for
                                    txid (marker - 1, or our own commit); -1: none */
  int clean;                     /* committed or skipped: rk may go back to the pool */
  /* The broker work of opening (a producer from the pool or a new one, the
   * marker, the transaction begun) runs on `opener` while the task reads
   * and transforms its input: it is a micro-batch's longest wait otherwise.
   * Fields above are the opener's until it is joined. */
  pthread_t opener;
  int opening;                   /* opener started, not joined yet */
  int skip;                      /* the batch is in: nothing to write (after the join) */
  int open_rc;                   /* the opener's result, and its message */
  pt_error open_err;
  char *topic;                   /* owned */
  char *txid;                    /* owned: "<prefix>-<p>", also the marker's group */
  int64_t batch_id;
  int in_txn;                    /* a transaction is open */
  int c_key, c_value, c_partition, c_headers; /* column indices, -1 = absent */
  int json;                      /* values are the rows encoded (pt_kafka_encode_json) */
  const struct ArrowSchema *schema; /* borrowed */
  int64_t produced;
  int64_t made;                  /* producers made (init_transactions) */
  _Atomic int64_t failed;        /* deliveries that failed (delivery callback) */
  char delivery_error[256];      /* the first such failure (callback thread) */
};

void pt__kafka_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  (void)opaque;
  pt__kafka_writer *w = m->_private;
  if (!w || m->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
  if (w->failed++ == 0)
    snprintf(w->delivery_error, sizeof w->delivery_error, "%s", rd_kafka_err2str(m->err));
}

/* A librdkafka transactional error as a pt_error; frees e. */
static int txn_error(pt__kafka_writer *w, rd_kafka_error_t *e, const char *doing, pt_error *err) {
  int fenced = rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR__FENCED ||
               rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
               rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
  int rc = pt__errorf(err, fenced ? PT_ESTATE : PT_EIO,
                      "write_kafka: transactional id '%s': %s: %s%s", w->txid, doing,
                      rd_kafka_error_string(e),
                      fenced ? " (a newer attempt of this partition took over; this one "
                               "stops without writing)" : "");
  rd_kafka_error_destroy(e);
  return rc;
}

/* Runs a transactional call until it succeeds, fails for good, or the
 * brokers stay away past max_retry_ms. */
#define TXN_RETRY(w, call, doing, err)                                                   \
  do {                                                                                   \
    int64_t deadline_ = pt__kafka_now_ms() + (w)->c.max_retry_ms;                        \
    for (;;) {                                                                           \
      rd_kafka_error_t *e_ = (call);                                                     \
      if (!e_) break;                                                                    \
      if ((rd_kafka_error_is_retriable(e_) ||                                            \
           rd_kafka_error_code(e_) == RD_KAFKA_RESP_ERR__TIMED_OUT) &&                   \
          pt__kafka_now_ms() < deadline_) {                                              \
        rd_kafka_error_destroy(e_);                                                      \
        continue;                                                                        \
      }                                                                                  \
      if (rd_kafka_error_code(e_) == RD_KAFKA_RESP_ERR__TIMED_OUT ||                     \
          rd_kafka_error_is_retriable(e_)) {                                             \
        rd_kafka_error_destroy(e_);                                                      \
        return pt__kafka_unreachable(&(w)->c, (w)->rk, "write_kafka", doing, err);       \
      }                                                                                  \
      return txn_error((w), e_, doing, err);                                             \
    }                                                                                    \
  } while (0)

static int find_col(const struct ArrowSchema *s, const char *name) {
  for (int64_t i = 0; i < s->n_children; i++)
    if (s->children[i]->name && strcmp(s->children[i]->name, name) == 0) return (int)i;
  return -1;
}

static int is_bytes(const char *f) { return strcmp(f, "z") == 0 || strcmp(f, "u") == 0; }

static int check_schema(pt__kafka_writer *w, const struct ArrowSchema *s, pt_error *err) {
  if (w->json) {
    w->c_key = w->c_value = w->c_partition = w->c_headers = -1;
    int rc = pt__kafka_json_encodable(s, err);
    return rc == PT_OK ? PT_OK : pt__error_prefix(err, rc, "write_kafka: ");
  }
  w->c_key = find_col(s, "key");
  w->c_value = find_col(s, "value");
  w->c_partition = find_col(s, "partition");
  w->c_headers = find_col(s, "headers");
  if (w->c_value < 0)
    return pt__errorf(err, PT_EINVAL, "write_kafka: the data has no 'value' column; add one "
                                      "(binary or string)");
  if (!is_bytes(s->children[w->c_value]->format))
    return pt__errorf(err, PT_EINVAL, "write_kafka: column 'value' is '%s'; it must be binary "
                                      "or string", s->children[w->c_value]->format);
  if (w->c_key >= 0 && !is_bytes(s->children[w->c_key]->format))
    return pt__errorf(err, PT_EINVAL, "write_kafka: column 'key' is '%s'; it must be binary "
                                      "or string", s->children[w->c_key]->format);
  if (w->c_partition >= 0 && strcmp(s->children[w->c_partition]->format, "i") != 0)
    return pt__errorf(err, PT_EINVAL, "write_kafka: column 'partition' is '%s'; it must be int32",
                      s->children[w->c_partition]->format);
  if (w->c_headers >= 0) {
    const struct ArrowSchema *h = s->children[w->c_headers];
    const struct ArrowSchema *it = h->n_children == 1 ? h->children[0] : NULL;
    if (strcmp(h->format, "+l") != 0 || !it || strcmp(it->format, "+s") != 0 ||
        it->n_children != 2 || !is_bytes(it->children[0]->format) ||
        !is_bytes(it->children[1]->format))
      return pt__errorf(err, PT_EINVAL, "write_kafka: column 'headers' must be "
                                        "list<struct<key string, value binary>>");
  }
  return PT_OK;
}

/* The marker: the offset committed for group txid on partition 0 of the
 * topic (read committed: a transaction still open is waited for). */
static int read_marker(pt__kafka_writer *w, int64_t *marker, pt_error *err) {
  if (!w->mrk) {
    const char *keys[] = {"group.id", "isolation.level", "enable.auto.commit"};
    const char *values[] = {w->txid, "read_committed", "false"};
    PT_RETURN_NOT_OK(
        pt__kafka_new(&w->c, RD_KAFKA_CONSUMER, keys, values, 3, "write_kafka", &w->mrk, err));
  }
  int rc = PT_OK;
  int64_t deadline = pt__kafka_now_ms() + w->c.max_retry_ms;
  for (;;) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, w->topic, 0);
    rd_kafka_resp_err_t e = rd_kafka_committed(w->mrk, l, (int)w->c.timeout_ms);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) e = l->elems[0].err;
    int64_t off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
      *marker = off; /* RD_KAFKA_OFFSET_INVALID (< 0) when none */
      break;
    }
    if (pt__kafka_now_ms() >= deadline) {
      rc = pt__kafka_unreachable(&w->c, w->mrk, "write_kafka", "the batch marker's offset fetch",
                                 err);
      break;
    }
  }
  return rc;
}

/* The topic's metadata (its partitions and their leaders) asked for up
 * front. librdkafka 2.0 otherwise holds the first records of a new producer
 * until a periodic refresh learns them: about one second per transaction,
 * measured, the whole latency budget of a micro-batch. Not fatal: producing
 * asks again. */
static void warm_metadata(pt__kafka_writer *w) {
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(w->rk, w->topic, NULL);
  const struct rd_kafka_metadata *md = NULL;
  if (rkt && rd_kafka_metadata(w->rk, 0, rkt, &md, (int)w->c.timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR)
    rd_kafka_metadata_destroy(md);
  if (rkt) rd_kafka_topic_destroy(rkt);
}

static int txn_init(pt__kafka_writer *w, pt_error *err) {
  /* Fencing: earlier producers of this id are cut off, their open
   * transaction aborted. */
  TXN_RETRY(w, rd_kafka_init_transactions(w->rk, (int)w->c.timeout_ms),
            "initializing transactions (fencing earlier attempts)", err);
  return PT_OK;
}

static int txn_begin(pt__kafka_writer *w, pt_error *err) {
  rd_kafka_error_t *e = rd_kafka_begin_transaction(w->rk);
  return e ? txn_error(w, e, "begin transaction", err) : PT_OK;
}

static int txn_send_marker(pt__kafka_writer *w, pt_error *err) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, w->topic, 0)->offset = w->batch_id + 1;
  rd_kafka_consumer_group_metadata_t *g = rd_kafka_consumer_group_metadata_new(w->txid);
  int rc = PT_OK;
  {
    int64_t deadline = pt__kafka_now_ms() + w->c.max_retry_ms;
    for (;;) {
      rd_kafka_error_t *e = rd_kafka_send_offsets_to_transaction(w->rk, l, g, (int)w->c.timeout_ms);
      if (!e) break;
      if (rd_kafka_error_is_retriable(e) && pt__kafka_now_ms() < deadline) {
        rd_kafka_error_destroy(e);
        continue;
      }
      rc = txn_error(w, e, "committing the batch marker", err);
      break;
    }
  }
  rd_kafka_consumer_group_metadata_destroy(g);
  rd_kafka_topic_partition_list_destroy(l);
  return rc;
}

static int txn_commit(pt__kafka_writer *w, pt_error *err) {
  TXN_RETRY(w, rd_kafka_commit_transaction(w->rk, (int)w->c.timeout_ms), "commit transaction", err);
  return PT_OK;
}

/* What the pool keeps of a writer: the initialized producer and the
 * marker's consumer of one transactional id. */
typedef struct kept {
  rd_kafka_t *rk, *mrk;
  int64_t known;                 /* the writer's known */
} kept;

static void handles_destroy(rd_kafka_t *rk, rd_kafka_t *mrk) {
  if (mrk) {
    rd_kafka_consumer_close(mrk);
    pt__kafka_destroy(mrk);
  }
  pt__kafka_destroy(rk);
}

static void kept_destroy(void *p) {
  kept *k = p;
  handles_destroy(k->rk, k->mrk);
  pt__free(k);
}

/* A fresh producer of w->txid, fencing every earlier one. */
static int producer_new(pt__kafka_writer *w, pt_error *err) {
  char tmo[32];
  snprintf(tmo, sizeof tmo, "%lld", (long long)(w->c.max_retry_ms > 60000 ? w->c.max_retry_ms : 60000));
  const char *keys[] = {"transactional.id", "enable.idempotence", "transaction.timeout.ms",
                        "linger.ms"};
  const char *values[] = {w->txid, "true", tmo, "5"};
  PT_RETURN_NOT_OK(pt__kafka_new(&w->c, RD_KAFKA_PRODUCER, keys, values, 4, "write_kafka", &w->rk, err));
  w->made++;
  PT_RETURN_NOT_OK(txn_init(w, err));
  warm_metadata(w);
  return PT_OK;
}

/* Reads the marker; unless the batch is in, opens the transaction with the
 * marker in it. Sending the marker first is what makes a pooled producer
 * safe: a producer of this id made elsewhere since (an executor that ran
 * the partition in between) fenced it, and the broker says so here, before
 * any record is produced. */
static int start(pt__kafka_writer *w, int reused, int *skip, pt_error *err) {
  if (!reused) { /* a pooled producer knows: had anyone committed since, it is fenced */
    int64_t marker = -1;
    PT_RETURN_NOT_OK(read_marker(w, &marker, err));
    w->known = marker - 1;
  }
  if (w->known >= w->batch_id) {
    *skip = 1;
    return PT_OK;
  }
  PT_RETURN_NOT_OK(txn_begin(w, err));
  w->in_txn = 1;
  return txn_send_marker(w, err);
}

/* The opener thread: the broker work of pt__kafka_writer_open. */
static void *open_main(void *arg) {
  pt__kafka_writer *w = arg;
  pt_error *err = &w->open_err;
  int rc = PT_OK;
  kept *k = pt__kafka_pool_take(PT__KAFKA_POOL_WRITER, w->key);
  if (k) {
    w->rk = k->rk;
    w->mrk = k->mrk;
    w->known = k->known;
    pt__free(k);
    pt__kafka_log_clear(w->rk);
    if (w->mrk) pt__kafka_log_clear(w->mrk);
    pt_error first = {0};
    rc = start(w, 1, &w->skip, &first);
    if (rc != PT_OK) {
      /* fenced, or its connections broke while idle: a fresh producer
       * (which fences whoever took over) and the marker read again */
      if (w->in_txn) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(w->rk, (int)w->c.timeout_ms);
        if (e) rd_kafka_error_destroy(e);
        w->in_txn = 0;
      }
      handles_destroy(w->rk, w->mrk);
      w->rk = w->mrk = NULL;
      w->skip = 0;
    }
  }
  if (!w->rk) {
    rc = producer_new(w, err);
    if (rc == PT_OK) rc = start(w, 0, &w->skip, err);
    if (rc != PT_OK) goto fail;
  }
  if (w->skip) w->clean = 1;
  w->open_rc = PT_OK;
  return NULL;
fail:
  w->open_rc = rc;
  return NULL;
}

int pt__kafka_writer_open(const pt__kafka_client *c, const char *topic, const char *prefix,
                          int64_t sink_partition, int64_t batch_id, int value_format,
                          const struct ArrowSchema *schema, pt__kafka_writer **out,
                          pt_error *err) {
  *out = NULL;
  if (!topic || !*topic || !prefix || !*prefix)
    return pt__errorf(err, PT_EINVAL, "write_kafka: a topic and a transactional prefix are needed");
  if (batch_id < 0 || batch_id == INT64_MAX)
    return pt__errorf(err, PT_EINVAL, "write_kafka: batch id %lld out of range (0 and up)",
                      (long long)batch_id);
  pt__kafka_writer *w = pt__calloc(1, sizeof *w);
  if (!w) return pt__errorf(err, PT_ENOMEM, "write_kafka: out of memory");
  w->c = *c;
  pt__kafka_client_defaults(&w->c);
  w->batch_id = batch_id;
  w->schema = schema;
  w->json = value_format == PT_KAFKA_VALUE_JSON;
  size_t n = strlen(prefix) + 32;
  w->txid = pt__malloc(n);
  w->topic = pt__strdup(topic);
  int rc = PT_OK;
  if (!w->txid || !w->topic) {
    rc = pt__errorf(err, PT_ENOMEM, "write_kafka: out of memory");
    goto fail;
  }
  snprintf(w->txid, n, "%s-%lld", prefix, (long long)sink_partition);
  rc = check_schema(w, schema, err);
  if (rc != PT_OK) goto fail;
  {
    size_t en = strlen(w->txid) + 8;
    char *extra = pt__malloc(en);
    if (extra) snprintf(extra, en, "writer\x1f%s", w->txid);
    rc = extra && pt__kafka_pool_key(&w->c, extra, &w->key) == PT_OK
             ? PT_OK
             : pt__errorf(err, PT_ENOMEM, "write_kafka: out of memory");
    pt__free(extra);
    if (rc != PT_OK) goto fail;
  }
  if (pthread_create(&w->opener, NULL, open_main, w) != 0) {
    rc = pt__errorf(err, PT_EINTERNAL, "write_kafka: cannot start a thread");
    goto fail;
  }
  w->opening = 1;
  *out = w;
  return PT_OK;
fail:
  pt__kafka_writer_free(w);
  return rc;
}

/* Waits for the opener; its failure becomes the caller's. */
static int joined(pt__kafka_writer *w, pt_error *err) {
  if (w->opening) {
    pthread_join(w->opener, NULL);
    w->opening = 0;
  }
  if (w->open_rc != PT_OK) {
    if (err) *err = w->open_err;
    return w->open_rc;
  }
  return PT_OK;
}

int pt__kafka_writer_skipped(pt__kafka_writer *w) { return joined(w, NULL) == PT_OK && w->skip; }

static const uint8_t *cell_bytes(const pt__view *v, int64_t i, int64_t *len) {
  if (!pt__view_is_valid(v, i)) return NULL;
  const uint8_t *p = pt__view_get_bytes(v, i, len);
  return p ? p : (const uint8_t *)"";
}

/* One row as a record, its value from values (a view of bytes); retries
 * while the local queue is full. */
static int produce_row(pt__kafka_writer *w, const pt__view *row, const pt__view *values,
                       int64_t i, pt_error *err) {
  int64_t vlen = 0, klen = 0;
  const uint8_t *val = cell_bytes(values, i, &vlen);
  const uint8_t *key = w->c_key >= 0 ? cell_bytes(&row->children[w->c_key], i, &klen) : NULL;
  int32_t part = RD_KAFKA_PARTITION_UA;
  if (w->c_partition >= 0 && pt__view_is_valid(&row->children[w->c_partition], i))
    part = (int32_t)pt__view_get_int(&row->children[w->c_partition], i);
  rd_kafka_headers_t *hdrs = NULL;
  if (w->c_headers >= 0 && pt__view_is_valid(&row->children[w->c_headers], i)) {
    const pt__view *hv = &row->children[w->c_headers];
    int64_t s, e;
    pt__view_list_range(hv, i, &s, &e);
    const pt__view *item = &hv->children[0];
    hdrs = rd_kafka_headers_new((size_t)(e - s));
    for (int64_t j = s; j < e; j++) {
      int64_t nl = 0, hl = 0;
      const uint8_t *name = cell_bytes(&item->children[0], j, &nl);
      const uint8_t *hval = cell_bytes(&item->children[1], j, &hl);
      if (!name) continue; /* a header needs a name */
      rd_kafka_header_add(hdrs, (const char *)name, (ssize_t)nl, hval, hval ? (ssize_t)hl : 0);
    }
  }
  int64_t deadline = pt__kafka_now_ms() + w->c.max_retry_ms;
  for (;;) {
    rd_kafka_resp_err_t e = rd_kafka_producev(
        w->rk, RD_KAFKA_V_TOPIC(w->topic), RD_KAFKA_V_PARTITION(part),
        RD_KAFKA_V_VALUE((void *)val, val ? (size_t)vlen : 0),
        RD_KAFKA_V_KEY((void *)key, key ? (size_t)klen : 0), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break; /* the headers belong to the record now */
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && pt__kafka_now_ms() < deadline) {
      rd_kafka_poll(w->rk, 50);
      continue;
    }
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      return pt__kafka_unreachable(&w->c, w->rk, "write_kafka", "while records queued", err);
    if (e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
      return pt__errorf(err, PT_EINVAL, "write_kafka: row %lld: topic '%s' has no partition %d",
                        (long long)i, w->topic, (int)part);
    if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
      return pt__errorf(err, PT_EINVAL, "write_kafka: row %lld: the record (%lld bytes) is larger "
                        "than message.max.bytes; raise it on the producer and the broker",
                        (long long)i, (long long)(vlen + klen));
    return pt__errorf(err, PT_EIO, "write_kafka: row %lld: %s", (long long)i, rd_kafka_err2str(e));
  }
  w->produced++;
  return PT_OK;
}

int pt__kafka_writer_write(pt__kafka_writer *w, const struct ArrowArray *batch, pt_error *err) {
  PT_RETURN_NOT_OK(joined(w, err));
  if (!w->in_txn) return PT_OK; /* skipped: the batch is already in */
  pt__view v, ev;
  struct ArrowArray enc = {0};  /* owned: the encoded values (json) */
  struct ArrowSchema enc_schema = {0}; /* owned: enc's */
  int have_ev = 0;
  PT_RETURN_NOT_OK(pt__view_init(&v, w->schema, batch, err));
  int rc = PT_OK;
  if (w->json) {
    rc = pt_kafka_encode_json(w->schema, batch, &enc, err);
    if (rc == PT_OK) rc = pt_schema_init(&enc_schema, "z", "value", 0, 0, err);
    if (rc == PT_OK) rc = pt__view_init(&ev, &enc_schema, &enc, err);
    if (rc == PT_OK) have_ev = 1;
    else rc = pt__error_prefix(err, rc, "write_kafka: ");
  }
  const pt__view *values = w->json ? &ev : &v.children[w->c_value];
  for (int64_t i = 0; i < v.length && rc == PT_OK; i++) {
    rc = produce_row(w, &v, values, i, err);
    if ((i & 1023) == 1023) rd_kafka_poll(w->rk, 0); /* serve delivery reports */
  }
  if (have_ev) pt__view_reset(&ev);
  if (enc.release) enc.release(&enc);
  if (enc_schema.release) enc_schema.release(&enc_schema);
  pt__view_reset(&v);
  return rc;
}

int pt__kafka_writer_commit(pt__kafka_writer *w, int64_t *produced, pt_error *err) {
  *produced = 0;
  PT_RETURN_NOT_OK(joined(w, err));
  if (!w->in_txn) return PT_OK;
  PT_RETURN_NOT_OK(txn_commit(w, err));
  w->in_txn = 0;
  if (w->failed > 0)
    return pt__errorf(err, PT_EINTERNAL,
                      "write_kafka: transactional id '%s': %lld records failed (%s) yet the "
                      "transaction committed", w->txid, (long long)w->failed, w->delivery_error);
  *produced = w->produced;
  w->known = w->batch_id;
  w->clean = 1;
  return PT_OK;
}

int64_t pt__kafka_writer_made(pt__kafka_writer *w) { return joined(w, NULL) == PT_OK ? w->made : 0; }

void pt__kafka_writer_free(pt__kafka_writer *w) {
  if (!w) return;
  joined(w, NULL);
  kept *k = w->clean && !w->in_txn && w->key ? pt__malloc(sizeof *k) : NULL;
  if (k) {
    k->rk = w->rk;
    k->mrk = w->mrk;
    k->known = w->known;
    pt__kafka_pool_put(PT__KAFKA_POOL_WRITER, w->key, k, kept_destroy);
  } else if (w->rk || w->mrk) {
    if (w->rk && w->in_txn) {
      rd_kafka_error_t *e = rd_kafka_abort_transaction(w->rk, (int)w->c.timeout_ms);
      if (e) rd_kafka_error_destroy(e); /* the next producer of the id aborts it anyway */
    }
    handles_destroy(w->rk, w->mrk);
  }
  pt__free(w->key);
  pt__free(w->txid);
  pt__free(w->topic);
  pt__free(w);
}
