/* client.c — librdkafka handles made from pt__kafka_client settings, with
 * librdkafka's own log kept (not printed) so that errors can quote its last
 * word, and the topic offsets the driver plans Kafka reads from.
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka/kafka.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_RETRY_MS 30000

void pt_kafka_options_init(pt_kafka_options *o) {
  if (o) memset(o, 0, sizeof *o);
}

void pt__kafka_client_defaults(pt__kafka_client *c) {
  if (c->timeout_ms <= 0) c->timeout_ms = DEFAULT_TIMEOUT_MS;
  if (c->max_retry_ms <= 0) c->max_retry_ms = DEFAULT_MAX_RETRY_MS;
}

int64_t pt__kafka_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What a handle keeps beside librdkafka: its last logged problem. The log
 * callback runs on librdkafka's threads, hence the lock. */
struct pt__kafka_log {
  pthread_mutex_t mu;
  char last[512]; /* guarded by mu */
};

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  (void)fac;
  pt__kafka_log *lg = rd_kafka_opaque(rk);
  if (!lg || level > 4) return; /* errors and warnings only */
  pthread_mutex_lock(&lg->mu);
  snprintf(lg->last, sizeof lg->last, "%s", buf);
  pthread_mutex_unlock(&lg->mu);
}

static void error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque) {
  (void)code;
  pt__kafka_log *lg = opaque;
  (void)rk;
  if (!lg) return;
  pthread_mutex_lock(&lg->mu);
  snprintf(lg->last, sizeof lg->last, "%s", reason);
  pthread_mutex_unlock(&lg->mu);
}

void pt__kafka_log_clear(rd_kafka_t *rk) {
  pt__kafka_log *lg = rk ? rd_kafka_opaque(rk) : NULL;
  if (!lg) return;
  pthread_mutex_lock(&lg->mu);
  lg->last[0] = '\0';
  pthread_mutex_unlock(&lg->mu);
}

void pt__kafka_last_log(rd_kafka_t *rk, char *buf, size_t size) {
  pt__kafka_log *lg = rk ? rd_kafka_opaque(rk) : NULL;
  if (size == 0) return;
  buf[0] = '\0';
  if (!lg) return;
  pthread_mutex_lock(&lg->mu);
  snprintf(buf, size, "%s", lg->last);
  pthread_mutex_unlock(&lg->mu);
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, int user,
                    const char *what, pt_error *err) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr) == RD_KAFKA_CONF_OK)
    return PT_OK;
  if (user)
    return pt__errorf(err, PT_EINVAL, "%s: Kafka property '%s': %s; fix or remove the option",
                      what, key, errstr);
  return pt__errorf(err, PT_EINTERNAL, "%s: Kafka property '%s': %s", what, key, errstr);
}

int pt__kafka_new(const pt__kafka_client *c, int type, const char *const *keys,
                  const char *const *values, size_t n, const char *what, rd_kafka_t **out,
                  pt_error *err) {
  *out = NULL;
  if (!c->bootstrap || !*c->bootstrap)
    return pt__errorf(err, PT_EINVAL, "%s: no bootstrap servers; give host:port of a broker",
                      what);
  pt__kafka_log *lg = pt__calloc(1, sizeof *lg);
  if (!lg) return pt__errorf(err, PT_ENOMEM, "%s: out of memory", what);
  pthread_mutex_init(&lg->mu, NULL);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  int rc = conf_set(conf, "bootstrap.servers", c->bootstrap, 1, what, err);
  /* Brokers that are away are ours to report, by deadline, not the log's. */
  if (rc == PT_OK) rc = conf_set(conf, "reconnect.backoff.max.ms", "1000", 0, what, err);
  for (size_t i = 0; rc == PT_OK && i < c->n_props; i++)
    rc = conf_set(conf, c->keys[i], c->values[i], 1, what, err);
  for (size_t i = 0; rc == PT_OK && i < n; i++)
    rc = conf_set(conf, keys[i], values[i], 0, what, err);
  if (rc != PT_OK) {
    rd_kafka_conf_destroy(conf);
    pthread_mutex_destroy(&lg->mu);
    pt__free(lg);
    return rc;
  }
  rd_kafka_conf_set_opaque(conf, lg);
  rd_kafka_conf_set_log_cb(conf, log_cb);
  rd_kafka_conf_set_error_cb(conf, error_cb);
  if (type == RD_KAFKA_PRODUCER) rd_kafka_conf_set_dr_msg_cb(conf, pt__kafka_delivery);
  char errstr[512];
  rd_kafka_t *rk = rd_kafka_new((rd_kafka_type_t)type, conf, errstr, sizeof errstr);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    pthread_mutex_destroy(&lg->mu);
    pt__free(lg);
    return pt__errorf(err, PT_EINVAL, "%s: cannot make a Kafka client: %s; check the options",
                      what, errstr);
  }
  *out = rk;
  return PT_OK;
}

void pt__kafka_destroy(rd_kafka_t *rk) {
  if (!rk) return;
  pt__kafka_log *lg = rd_kafka_opaque(rk);
  rd_kafka_destroy(rk);
  if (lg) {
    pthread_mutex_destroy(&lg->mu);
    pt__free(lg);
  }
}

int pt__kafka_unreachable(const pt__kafka_client *c, rd_kafka_t *rk, const char *what,
                          const char *doing, pt_error *err) {
  char last[512];
  pt__kafka_last_log(rk, last, sizeof last);
  return pt__errorf(err, PT_ETIMEDOUT,
                    "%s: Kafka brokers at '%s' did not answer %s within %lld ms%s%s; check "
                    "that they run and that the bootstrap servers are right, or allow more "
                    "time (max_retry_ms)",
                    what, c->bootstrap, doing, (long long)c->max_retry_ms, last[0] ? ": " : "",
                    last);
}

/* Sleeps the backoff before the next try (100 ms doubling to 1 s), but not
 * past the deadline; 0 when the deadline has passed. */
static int backoff(int64_t deadline, int64_t *delay) {
  int64_t now = pt__kafka_now_ms();
  if (now >= deadline) return 0;
  int64_t d = *delay < deadline - now ? *delay : deadline - now;
  usleep((useconds_t)d * 1000);
  *delay = *delay * 2 > 1000 ? 1000 : *delay * 2;
  return 1;
}

static int cmp_offsets(const void *a, const void *b) {
  const pt_kafka_partition_offsets *x = a, *y = b;
  return (x->partition > y->partition) - (x->partition < y->partition);
}

struct pt__kafka_offsets_client {
  pt__kafka_client c;   /* defaults applied; strings borrowed */
  rd_kafka_t *rk;       /* owned: a consumer that never joins a group */
};

int pt__kafka_offsets_client_new(const pt__kafka_client *c, pt__kafka_offsets_client **out,
                                 pt_error *err) {
  *out = NULL;
  pt__kafka_offsets_client *oc = pt__calloc(1, sizeof *oc);
  if (!oc) return pt__errorf(err, PT_ENOMEM, "kafka offsets: out of memory");
  oc->c = *c;
  pt__kafka_client_defaults(&oc->c);
  static const char *const keys[] = {"isolation.level", "enable.auto.commit"};
  static const char *const values[] = {"read_committed", "false"};
  int rc = pt__kafka_new(&oc->c, RD_KAFKA_CONSUMER, keys, values, 2, "kafka offsets", &oc->rk, err);
  if (rc != PT_OK) {
    pt__free(oc);
    return rc;
  }
  *out = oc;
  return PT_OK;
}

void pt__kafka_offsets_client_free(pt__kafka_offsets_client *oc) {
  if (!oc) return;
  pt__kafka_destroy(oc->rk);
  pt__free(oc);
}

int pt__kafka_offsets_get(pt__kafka_offsets_client *oc, const char *topic,
                          pt_kafka_partition_offsets **out, int32_t *n, pt_error *err) {
  *out = NULL;
  *n = 0;
  const pt__kafka_client *cp = &oc->c;
  rd_kafka_t *rk = oc->rk;
  if (!topic || !*topic) return pt__errorf(err, PT_EINVAL, "kafka offsets: no topic given");
  int rc = PT_OK;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  const struct rd_kafka_metadata *md = NULL;
  int64_t deadline = pt__kafka_now_ms() + cp->max_retry_ms, delay = 100;
  if (!rkt) {
    rc = pt__errorf(err, PT_EINVAL, "kafka offsets: topic '%s': %s", topic,
                    rd_kafka_err2str(rd_kafka_last_error()));
    goto done;
  }
  for (;;) {
    int64_t left = deadline - pt__kafka_now_ms();
    int tmo = (int)(left < cp->timeout_ms ? (left > 100 ? left : 100) : cp->timeout_ms);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, tmo);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1) {
      rd_kafka_resp_err_t te = md->topics[0].err;
      if (te == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt > 0) break;
      if (te == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        rc = pt__errorf(err, PT_EINVAL,
                        "kafka offsets: topic '%s' does not exist on '%s'; create it first",
                        topic, cp->bootstrap);
        goto free_md;
      }
    }
    if (md) rd_kafka_metadata_destroy(md);
    md = NULL;
    if (!backoff(deadline, &delay)) {
      rc = pt__kafka_unreachable(cp, rk, "kafka offsets", "a metadata request", err);
      goto done;
    }
  }
  {
    const rd_kafka_metadata_topic_t *t = &md->topics[0];
    pt_kafka_partition_offsets *po = calloc((size_t)t->partition_cnt, sizeof *po);
    if (!po) {
      rc = pt__errorf(err, PT_ENOMEM, "kafka offsets: out of memory");
      goto free_md;
    }
    for (int i = 0; i < t->partition_cnt; i++) {
      po[i].partition = t->partitions[i].id;
      for (;;) {
        int64_t lo, hi;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
            rk, topic, po[i].partition, &lo, &hi, (int)cp->timeout_ms);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
          po[i].earliest = lo;
          po[i].latest = hi;
          break;
        }
        if (!backoff(deadline, &delay)) {
          free(po);
          rc = pt__kafka_unreachable(cp, rk, "kafka offsets", "an offsets request", err);
          goto free_md;
        }
      }
    }
    qsort(po, (size_t)t->partition_cnt, sizeof *po, cmp_offsets);
    *out = po;
    *n = t->partition_cnt;
  }
free_md:
  if (md) rd_kafka_metadata_destroy(md);
done:
  if (rkt) rd_kafka_topic_destroy(rkt);
  return rc;
}

/* Commit markers reach the partitions after commitTransaction returns, so
 * a read_committed reader may still see a partition's last stable offset
 * short of records the writer has just committed. Waits, at most wait_ms,
 * until every partition's stable offset reaches its high watermark as it
 * stood on entry. Never fails: the records are committed either way. */
void pt__kafka_wait_committed_visible(const pt__kafka_client *c, const char *topic,
                                      int64_t wait_ms) {
  pt__kafka_client q = *c;
  pt__kafka_client_defaults(&q);
  q.max_retry_ms = wait_ms;
  if (q.timeout_ms > wait_ms) q.timeout_ms = wait_ms;
  pt__kafka_offsets_client *uc = NULL, *cc = NULL;
  pt_kafka_partition_offsets *hw = NULL, *lso = NULL;
  int32_t n_hw = 0, n_lso = 0;
  pt_error ignored = {0};
  static const char *const keys[] = {"isolation.level", "enable.auto.commit"};
  static const char *const values[] = {"read_uncommitted", "false"};
  uc = pt__calloc(1, sizeof *uc);
  if (!uc) return;
  uc->c = q;
  if (pt__kafka_new(&uc->c, RD_KAFKA_CONSUMER, keys, values, 2, "kafka offsets", &uc->rk,
                    &ignored) != PT_OK) {
    pt__free(uc);
    return;
  }
  int64_t deadline = pt__kafka_now_ms() + wait_ms;
  if (pt__kafka_offsets_get(uc, topic, &hw, &n_hw, &ignored) != PT_OK) goto done;
  if (pt__kafka_offsets_client_new(&q, &cc, &ignored) != PT_OK) goto done;
  for (;;) {
    if (pt__kafka_offsets_get(cc, topic, &lso, &n_lso, &ignored) != PT_OK) goto done;
    int behind = n_lso != n_hw;
    for (int32_t i = 0; !behind && i < n_lso; i++) behind = lso[i].latest < hw[i].latest;
    free(lso);
    lso = NULL;
    if (!behind || pt__kafka_now_ms() >= deadline) break;
    usleep(5000);
  }
done:
  free(hw);
  pt__kafka_offsets_client_free(cc);
  pt__kafka_offsets_client_free(uc);
}

int pt__kafka_offsets(const pt__kafka_client *c, const char *topic,
                      pt_kafka_partition_offsets **out, int32_t *n, pt_error *err) {
  *out = NULL;
  *n = 0;
  if (!topic || !*topic) return pt__errorf(err, PT_EINVAL, "kafka offsets: no topic given");
  pt__kafka_offsets_client *oc;
  PT_RETURN_NOT_OK(pt__kafka_offsets_client_new(c, &oc, err));
  int rc = pt__kafka_offsets_get(oc, topic, out, n, err);
  pt__kafka_offsets_client_free(oc);
  return rc;
}
