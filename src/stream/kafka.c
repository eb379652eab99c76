/* kafka.c — the Kafka source and sink of streaming queries, on the batch
 * pieces of src/kafka: the source's offsets are per-partition positions
 * ({"<topic>":{"0":120,"1":98}}, as Spark writes them) read with
 * pt_kafka_topic_offsets and planned with pt_read_kafka; the sink is
 * pt_write_kafka with the query's transactional prefix and batch id.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "kafka/kafka.h"
#include "stream/stream_int.h"

/* Kafka options with their strings owned. */
typedef struct kopts {
  pt_kafka_options o;
  char *bootstrap;
  char **keys, **values;   /* n_properties each */
} kopts;

static void kopts_free(kopts *k) {
  pt__free(k->bootstrap);
  for (int32_t i = 0; i < k->o.n_properties; i++) {
    pt__free(k->keys[i]);
    pt__free(k->values[i]);
  }
  pt__free(k->keys);
  pt__free(k->values);
}

static int kopts_copy(const pt_kafka_options *o, kopts *k, pt_error *err) {
  memset(k, 0, sizeof *k);
  if (!o || !o->bootstrap_servers || !*o->bootstrap_servers)
    return pt__errorf(err, PT_EINVAL, "stream kafka: bootstrap servers are required");
  if (o->n_properties < 0 || (o->n_properties > 0 && (!o->property_keys || !o->property_values)))
    return pt__errorf(err, PT_EINVAL, "stream kafka: property keys and values must be given");
  k->o = *o;
  k->bootstrap = pt__strdup(o->bootstrap_servers);
  int32_t n = o->n_properties;
  k->keys = pt__calloc((size_t)(n ? n : 1), sizeof *k->keys);
  k->values = pt__calloc((size_t)(n ? n : 1), sizeof *k->values);
  int ok = k->bootstrap && k->keys && k->values;
  for (int32_t i = 0; ok && i < n; i++) {
    k->keys[i] = pt__strdup(o->property_keys[i]);
    k->values[i] = pt__strdup(o->property_values[i]);
    ok = k->keys[i] && k->values[i];
  }
  k->o.n_properties = ok ? n : 0; /* what kopts_free may free */
  if (!ok) {
    for (int32_t i = 0; k->keys && k->values && i < n; i++) {
      pt__free(k->keys[i]);
      pt__free(k->values[i]);
    }
    kopts_free(k);
    memset(k, 0, sizeof *k);
    return pt__errorf(err, PT_ENOMEM, "stream kafka: out of memory");
  }
  k->o.bootstrap_servers = k->bootstrap;
  k->o.property_keys = (const char *const *)k->keys;
  k->o.property_values = (const char *const *)k->values;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Offsets text */

typedef struct poffs {
  int32_t *part;
  int64_t *off;
  int32_t n, cap;
} poffs;

static void poffs_free(poffs *p) {
  pt__free(p->part);
  pt__free(p->off);
  memset(p, 0, sizeof *p);
}

static int poffs_set(poffs *p, int32_t part, int64_t off) {
  for (int32_t i = 0; i < p->n; i++)
    if (p->part[i] == part) {
      p->off[i] = off;
      return PT_OK;
    }
  if (p->n == p->cap) {
    int32_t cap = p->cap ? p->cap * 2 : 8;
    int32_t *np = pt__realloc(p->part, (size_t)cap * sizeof *np);
    if (!np) return PT_ENOMEM;
    p->part = np;
    int64_t *no = pt__realloc(p->off, (size_t)cap * sizeof *no);
    if (!no) return PT_ENOMEM;
    p->off = no;
    p->cap = cap;
  }
  /* kept in partition order */
  int32_t i = p->n;
  while (i > 0 && p->part[i - 1] > part) {
    p->part[i] = p->part[i - 1];
    p->off[i] = p->off[i - 1];
    i--;
  }
  p->part[i] = part;
  p->off[i] = off;
  p->n++;
  return PT_OK;
}

/* -1 when absent. */
static int64_t poffs_get(const poffs *p, int32_t part) {
  for (int32_t i = 0; i < p->n; i++)
    if (p->part[i] == part) return p->off[i];
  return -1;
}

static const char *skip_ws(const char *s) {
  while (*s == ' ' || *s == '\t') s++;
  return s;
}

/* Parses {"<topic>":{"<p>":<off>,...}}; the topic must be `topic`. */
static int parse_offsets(const char *text, const char *topic, poffs *out, pt_error *err) {
  memset(out, 0, sizeof *out);
  const char *s = skip_ws(text);
  size_t tl = strlen(topic);
  if (*s != '{') goto bad;
  s = skip_ws(s + 1);
  if (*s != '"' || strncmp(s + 1, topic, tl) != 0 || s[1 + tl] != '"') {
    poffs_free(out);
    return pt__errorf(err, PT_EFORMAT,
                      "stream kafka: offsets '%.200s' are not of topic '%s'; the checkpoint "
                      "belongs to another query", text, topic);
  }
  s = skip_ws(s + 2 + tl);
  if (*s != ':') goto bad;
  s = skip_ws(s + 1);
  if (*s != '{') goto bad;
  s = skip_ws(s + 1);
  while (*s != '}') {
    char *end;
    if (*s != '"') goto bad;
    long p = strtol(s + 1, &end, 10);
    if (end == s + 1 || *end != '"' || p < 0 || p > INT32_MAX) goto bad;
    s = skip_ws(end + 1);
    if (*s != ':') goto bad;
    s = skip_ws(s + 1);
    long long off = strtoll(s, &end, 10);
    if (end == s || off < 0) goto bad;
    if (poffs_set(out, (int32_t)p, off) != PT_OK) {
      poffs_free(out);
      return pt__errorf(err, PT_ENOMEM, "stream kafka: out of memory");
    }
    s = skip_ws(end);
    if (*s == ',') s = skip_ws(s + 1);
    else if (*s != '}') goto bad;
  }
  s = skip_ws(s + 1);
  if (*s != '}' || *skip_ws(s + 1) != 0) goto bad;
  return PT_OK;
bad:
  poffs_free(out);
  return pt__errorf(err, PT_EFORMAT,
                    "stream kafka: offsets '%.200s' are not {\"%s\":{\"<partition>\":<offset>,"
                    "...}}", text, topic);
}

/* malloc'd text (the engine frees offsets with free()). */
static int format_offsets(const char *topic, const poffs *p, char **out, pt_error *err) {
  pt_buf b = {0};
  int ok = pt__buf_printf(&b, "{\"%s\":{", topic) == PT_OK;
  for (int32_t i = 0; ok && i < p->n; i++)
    ok = pt__buf_printf(&b, "%s\"%" PRId32 "\":%" PRId64, i ? "," : "", p->part[i], p->off[i]) ==
         PT_OK;
  ok = ok && pt__buf_printf(&b, "}}") == PT_OK;
  *out = ok ? malloc(b.len + 1) : NULL;
  if (*out) {
    memcpy(*out, b.data, b.len);
    (*out)[b.len] = 0;
  }
  pt_buf_free(&b);
  return *out ? PT_OK : pt__errorf(err, PT_ENOMEM, "stream kafka: out of memory");
}

/* ------------------------------------------------------------------------ */
/* The source */

typedef struct kafka_src {
  kopts k;
  char *topic;               /* owned */
  char *starting;            /* owned: "earliest", "latest" or offsets text */
  int64_t max_per_trigger;   /* 0: none */
  poffs earliest;            /* of the last look at the topic, for new partitions */
  pt__kafka_client client;   /* ks->k's settings; strings borrowed from k */
  pt__kafka_offsets_client *oc; /* owned; kept across triggers, NULL after a failure */
} kafka_src;

/* The topic's partitions now; brokers away -> PT_ETIMEDOUT (retried by the
 * query with its own backoff). The client lives across triggers: a new one
 * per look cost a connection and a metadata round trip every time. */
static int look(kafka_src *ks, poffs *latest, pt_error *err) {
  pt_kafka_partition_offsets *o = NULL;
  int32_t n = 0;
  int rc = ks->oc ? PT_OK : pt__kafka_offsets_client_new(&ks->client, &ks->oc, err);
  if (rc == PT_OK) rc = pt__kafka_offsets_get(ks->oc, ks->topic, &o, &n, err);
  if (rc != PT_OK) {
    /* a fresh client next time: nothing of a failed one is trusted */
    pt__kafka_offsets_client_free(ks->oc);
    ks->oc = NULL;
    return rc;
  }
  memset(latest, 0, sizeof *latest);
  for (int32_t i = 0; i < n && rc == PT_OK; i++)
    if (poffs_set(latest, o[i].partition, o[i].latest) != PT_OK ||
        poffs_set(&ks->earliest, o[i].partition, o[i].earliest) != PT_OK)
      rc = pt__errorf(err, PT_ENOMEM, "stream kafka: out of memory");
  free(o);
  if (rc != PT_OK) poffs_free(latest);
  return rc;
}

static int ks_initial(void *state, char **start, pt_error *err) {
  kafka_src *ks = state;
  if (ks->starting[0] == '{') {
    poffs p;
    PT_RETURN_NOT_OK(parse_offsets(ks->starting, ks->topic, &p, err));
    int rc = format_offsets(ks->topic, &p, start, err);
    poffs_free(&p);
    return rc;
  }
  poffs latest;
  PT_RETURN_NOT_OK(look(ks, &latest, err));
  const poffs *from = strcmp(ks->starting, "earliest") == 0 ? &ks->earliest : &latest;
  int rc = format_offsets(ks->topic, from, start, err);
  poffs_free(&latest);
  return rc;
}

static int ks_latest(void *state, char **latest, pt_error *err) {
  kafka_src *ks = state;
  poffs p;
  PT_RETURN_NOT_OK(look(ks, &p, err));
  int rc = format_offsets(ks->topic, &p, latest, err);
  poffs_free(&p);
  return rc;
}

static int ks_next(void *state, const char *start, const char *latest, char **end,
                   pt_error *err) {
  kafka_src *ks = state;
  poffs s, l, e = {0};
  PT_RETURN_NOT_OK(parse_offsets(start, ks->topic, &s, err));
  int rc = parse_offsets(latest, ks->topic, &l, err);
  if (rc != PT_OK) {
    poffs_free(&s);
    return rc;
  }
  /* where each partition stands, and what it has waiting */
  int64_t total = 0;
  int64_t *lag = pt__calloc((size_t)(l.n ? l.n : 1), sizeof *lag);
  if (!lag) rc = pt__errorf(err, PT_ENOMEM, "stream kafka: out of memory");
  for (int32_t i = 0; rc == PT_OK && i < s.n; i++)
    if (poffs_set(&e, s.part[i], s.off[i]) != PT_OK)
      rc = pt__errorf(err, PT_ENOMEM, "stream kafka: out of memory");
  for (int32_t i = 0; rc == PT_OK && i < l.n; i++) {
    int64_t from = poffs_get(&s, l.part[i]);
    if (from < 0) { /* a new partition: from its earliest */
      from = poffs_get(&ks->earliest, l.part[i]);
      if (from < 0) from = 0;
      if (poffs_set(&e, l.part[i], from) != PT_OK)
        rc = pt__errorf(err, PT_ENOMEM, "stream kafka: out of memory");
    }
    lag[i] = l.off[i] > from ? l.off[i] - from : 0;
    total += lag[i];
  }
  if (rc == PT_OK) {
    /* back-pressure: max_offsets_per_trigger shared in proportion to lag */
    int64_t budget = ks->max_per_trigger > 0 && total > ks->max_per_trigger ? ks->max_per_trigger
                                                                            : total;
    int64_t given = 0;
    int64_t *take = pt__calloc((size_t)(l.n ? l.n : 1), sizeof *take);
    if (!take) rc = pt__errorf(err, PT_ENOMEM, "stream kafka: out of memory");
    for (int32_t i = 0; rc == PT_OK && i < l.n; i++) {
      take[i] = total ? (int64_t)((double)lag[i] * (double)budget / (double)total) : 0;
      if (take[i] > lag[i]) take[i] = lag[i];
      given += take[i];
    }
    for (int32_t i = 0; rc == PT_OK && i < l.n && given < budget; i++) {
      int64_t more = lag[i] - take[i];
      if (more > budget - given) more = budget - given;
      take[i] += more;
      given += more;
    }
    for (int32_t i = 0; rc == PT_OK && i < l.n; i++)
      if (take[i] > 0 && poffs_set(&e, l.part[i], poffs_get(&e, l.part[i]) + take[i]) != PT_OK)
        rc = pt__errorf(err, PT_ENOMEM, "stream kafka: out of memory");
    pt__free(take);
  }
  /* unchanged partitions are written as they were, so "nothing new" is
   * the start's text again */
  if (rc == PT_OK) rc = total == 0 ? format_offsets(ks->topic, &s, end, err)
                                   : format_offsets(ks->topic, &e, end, err);
  pt__free(lag);
  poffs_free(&s);
  poffs_free(&l);
  poffs_free(&e);
  return rc;
}

static int ks_plan(void *state, pt_session *s, const char *start, const char *end,
                   pt_stream_batch *batch, pt_dataset **out, pt_error *err) {
  kafka_src *ks = state;
  poffs a, b;
  PT_RETURN_NOT_OK(parse_offsets(start, ks->topic, &a, err));
  int rc = parse_offsets(end, ks->topic, &b, err);
  if (rc != PT_OK) {
    poffs_free(&a);
    return rc;
  }
  int32_t *parts = pt__calloc((size_t)(b.n ? b.n : 1), sizeof *parts);
  int64_t *from = pt__calloc((size_t)(b.n ? b.n : 1), sizeof *from);
  int64_t *to = pt__calloc((size_t)(b.n ? b.n : 1), sizeof *to);
  int32_t n = 0;
  int64_t records = 0;
  if (!parts || !from || !to) rc = pt__errorf(err, PT_ENOMEM, "stream kafka: out of memory");
  for (int32_t i = 0; rc == PT_OK && i < b.n; i++) {
    int64_t f = poffs_get(&a, b.part[i]);
    if (f < 0) f = poffs_get(&ks->earliest, b.part[i]);
    if (f < 0) f = 0;
    if (b.off[i] <= f) continue;
    parts[n] = b.part[i];
    from[n] = f;
    to[n] = b.off[i];
    records += to[n] - from[n];
    n++;
  }
  if (rc == PT_OK && n == 0)
    rc = pt__errorf(err, PT_EINVAL, "stream kafka: batch %" PRId64 " from %.200s to %.200s "
                    "covers no records", batch->batch_id, start, end);
  if (rc == PT_OK) {
    rc = pt_read_kafka(s, &ks->k.o, ks->topic, parts, from, to, n, out, err);
    if (rc != PT_OK) pt__error_prefix(err, rc, "stream kafka, batch %" PRId64 ": ", batch->batch_id);
  }
  batch->records = records;
  pt__free(parts);
  pt__free(from);
  pt__free(to);
  poffs_free(&a);
  poffs_free(&b);
  return rc;
}

static void ks_free(void *state) {
  kafka_src *ks = state;
  if (!ks) return;
  kopts_free(&ks->k);
  pt__free(ks->topic);
  pt__free(ks->starting);
  poffs_free(&ks->earliest);
  pt__kafka_offsets_client_free(ks->oc);
  pt__free(ks);
}

int pt_stream_kafka_source(const pt_kafka_options *o, const char *topic,
                           const char *starting_offsets, int64_t max_offsets_per_trigger,
                           pt_stream_source *out, pt_error *err) {
  if (!out) return pt__errorf(err, PT_EINVAL, "stream kafka source: out must not be NULL");
  memset(out, 0, sizeof *out);
  if (!topic || !*topic || strchr(topic, '"'))
    return pt__errorf(err, PT_EINVAL, "stream kafka source: a topic name is required");
  const char *st = starting_offsets ? starting_offsets : "latest";
  if (strcmp(st, "earliest") != 0 && strcmp(st, "latest") != 0 && st[0] != '{')
    return pt__errorf(err, PT_EINVAL,
                      "stream kafka source: starting_offsets '%.100s' is not \"earliest\", "
                      "\"latest\" or {\"%s\":{\"<partition>\":<offset>,...}}", st, topic);
  if (max_offsets_per_trigger < 0)
    return pt__errorf(err, PT_EINVAL,
                      "stream kafka source: max_offsets_per_trigger must be >= 0 (0: no limit)");
  kafka_src *ks = pt__calloc(1, sizeof *ks);
  if (!ks) return pt__errorf(err, PT_ENOMEM, "stream kafka source: out of memory");
  int rc = kopts_copy(o, &ks->k, err);
  if (rc != PT_OK) {
    pt__free(ks);
    return rc;
  }
  /* the query backs off itself (stream.max_retry_time): one look is short */
  if (ks->k.o.max_retry_ms == 0) ks->k.o.max_retry_ms = 1000;
  if (ks->k.o.n_properties > 64) {
    ks_free(ks);
    return pt__errorf(err, PT_EINVAL, "stream kafka source: %d properties given; up to 64",
                      (int)o->n_properties);
  }
  ks->client = (pt__kafka_client){.bootstrap = ks->k.o.bootstrap_servers,
                                  .n_props = (size_t)ks->k.o.n_properties,
                                  .keys = ks->k.o.property_keys,
                                  .values = ks->k.o.property_values,
                                  .timeout_ms = ks->k.o.timeout_ms,
                                  .max_retry_ms = ks->k.o.max_retry_ms};
  pt__kafka_client_defaults(&ks->client);
  ks->topic = pt__strdup(topic);
  ks->starting = pt__strdup(st);
  ks->max_per_trigger = max_offsets_per_trigger;
  if (!ks->topic || !ks->starting) {
    ks_free(ks);
    return pt__errorf(err, PT_ENOMEM, "stream kafka source: out of memory");
  }
  if (st[0] == '{') {
    poffs p;
    if ((rc = parse_offsets(st, topic, &p, err)) != PT_OK) {
      ks_free(ks);
      return rc;
    }
    poffs_free(&p);
  }
  *out = (pt_stream_source){.name = "kafka",
                            .state = ks,
                            .initial_offsets = ks_initial,
                            .latest_offsets = ks_latest,
                            .next_offsets = ks_next,
                            .plan_batch = ks_plan,
                            .free = ks_free};
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* The sink */

typedef struct kafka_sink {
  kopts k;
  char *topic;   /* owned */
  char *prefix;  /* owned; set by open when not given */
} kafka_sink;

static int kk_open(void *state, pt_session *s, const char *query_id, pt_error *err) {
  kafka_sink *kk = state;
  if (kk->prefix) return PT_OK;
  size_t n = strlen(query_id) + 16;
  kk->prefix = pt__malloc(n);
  if (!kk->prefix) return pt__errorf(err, PT_ENOMEM, "stream kafka sink: out of memory");
  snprintf(kk->prefix, n, "protium-%s", query_id);
  return PT_OK;
}

static int kk_write(void *state, pt_dataset *ds, int64_t batch_id, int64_t *rows, pt_error *err) {
  kafka_sink *kk = state;
  *rows = -1;
  /* Without pt_write_kafka's wait for the commit markers: the next
   * micro-batch need not wait for readers to see this one. */
  int rc = pt__write_kafka(ds, &kk->k.o, kk->topic, kk->prefix ? kk->prefix : "protium-stream",
                           batch_id, err);
  if (rc == PT_OK) {
    pt_job_stats *st;
    if (pt_dataset_last_job(ds, &st, NULL) == PT_OK) {
      pt_stage_stats t;
      pt_job_stats_total(st, &t);
      *rows = t.rows_written;
      pt_job_stats_free(st);
    }
  }
  pt_dataset_free(ds);
  if (rc != PT_OK)
    pt__error_prefix(err, rc, "stream kafka sink '%s', batch %" PRId64 ": ", kk->topic, batch_id);
  return rc;
}

static void kk_free(void *state) {
  kafka_sink *kk = state;
  if (!kk) return;
  kopts_free(&kk->k);
  pt__free(kk->topic);
  pt__free(kk->prefix);
  pt__free(kk);
}

int pt_stream_kafka_sink(const pt_kafka_options *o, const char *topic,
                         const char *transactional_prefix, pt_stream_sink *out, pt_error *err) {
  if (!out) return pt__errorf(err, PT_EINVAL, "stream kafka sink: out must not be NULL");
  memset(out, 0, sizeof *out);
  if (!topic || !*topic)
    return pt__errorf(err, PT_EINVAL, "stream kafka sink: a topic name is required");
  kafka_sink *kk = pt__calloc(1, sizeof *kk);
  if (!kk) return pt__errorf(err, PT_ENOMEM, "stream kafka sink: out of memory");
  int rc = kopts_copy(o, &kk->k, err);
  if (rc != PT_OK) {
    pt__free(kk);
    return rc;
  }
  kk->topic = pt__strdup(topic);
  kk->prefix = transactional_prefix ? pt__strdup(transactional_prefix) : NULL;
  if (!kk->topic || (transactional_prefix && !kk->prefix)) {
    kk_free(kk);
    return pt__errorf(err, PT_ENOMEM, "stream kafka sink: out of memory");
  }
  *out = (pt_stream_sink){.name = "kafka", .state = kk, .open = kk_open,
                          .write_batch = kk_write, .free = kk_free};
  return PT_OK;
}
