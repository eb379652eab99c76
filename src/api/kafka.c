/* kafka.c — the Kafka entry points of protium.h on the driver: topic
 * offsets, pt_read_kafka (a source node over explicit offset ranges, one
 * engine partition per range, long ranges split) and pt_write_kafka (a job
 * whose sink produces each partition in one transaction; src/kafka).
 */
#include <string.h>

#include "api/api_int.h"
#include "kafka/kafka.h"

#define DEFAULT_MAX_RECORDS 1000000
#define MAX_PROPERTIES 64

static int check_options(const pt_kafka_options *o, const char *what, pt_error *err) {
  if (!o) return pt__errorf(err, PT_EINVAL, "%s: options must not be NULL", what);
  if (!o->bootstrap_servers || !*o->bootstrap_servers)
    return pt__errorf(err, PT_EINVAL, "%s: no bootstrap servers; set bootstrap_servers to "
                                      "host:port of a broker", what);
  if (o->n_properties < 0 || o->n_properties > MAX_PROPERTIES ||
      (o->n_properties > 0 && (!o->property_keys || !o->property_values)))
    return pt__errorf(err, PT_EINVAL, "%s: %d properties given; up to %d, with keys and values",
                      what, (int)o->n_properties, MAX_PROPERTIES);
  for (int32_t i = 0; i < o->n_properties; i++)
    if (!o->property_keys[i] || !o->property_values[i])
      return pt__errorf(err, PT_EINVAL, "%s: property %d has no key or value", what, (int)i);
  return PT_OK;
}

static void to_client(const pt_kafka_options *o, pt__kafka_client *c) {
  memset(c, 0, sizeof *c);
  c->bootstrap = o->bootstrap_servers;
  c->n_props = (size_t)o->n_properties;
  c->keys = o->property_keys;
  c->values = o->property_values;
  c->timeout_ms = o->timeout_ms;
  c->max_retry_ms = o->max_retry_ms;
  pt__kafka_client_defaults(c);
}

int pt_kafka_topic_offsets(const pt_kafka_options *o, const char *topic,
                           pt_kafka_partition_offsets **out, int32_t *n, pt_error *err) {
  if (!out || !n) return pt__errorf(err, PT_EINVAL, "kafka offsets: out and n must not be NULL");
  *out = NULL;
  *n = 0;
  PT_RETURN_NOT_OK(check_options(o, "kafka offsets", err));
  pt__kafka_client c;
  to_client(o, &c);
  return pt__kafka_offsets(&c, topic, out, n, err);
}

/* The message form of the client settings; entries point into o and the
 * caller's arrays (valid while the message is packed). */
typedef struct client_msg {
  Protium__KafkaClient client;
  Protium__ConfEntry entries[MAX_PROPERTIES];
  Protium__ConfEntry *ptrs[MAX_PROPERTIES];
} client_msg;

static void client_msg_init(client_msg *m, const pt_kafka_options *o) {
  pt__kafka_client c;
  to_client(o, &c);
  protium__kafka_client__init(&m->client);
  m->client.bootstrap_servers = (char *)o->bootstrap_servers;
  m->client.timeout_ms = c.timeout_ms;
  m->client.max_retry_ms = c.max_retry_ms;
  for (int32_t i = 0; i < o->n_properties; i++) {
    protium__conf_entry__init(&m->entries[i]);
    m->entries[i].key = (char *)o->property_keys[i];
    m->entries[i].value = (char *)o->property_values[i];
    m->ptrs[i] = &m->entries[i];
  }
  m->client.n_properties = (size_t)o->n_properties;
  m->client.properties = m->ptrs;
}

int pt_read_kafka(pt_session *s, const pt_kafka_options *o, const char *topic,
                  const int32_t *partitions, const int64_t *start, const int64_t *end, int32_t n,
                  pt_dataset **out, pt_error *err) {
  if (!s || !out) return pt__errorf(err, PT_EINVAL, "read_kafka: session and out must not be NULL");
  *out = NULL;
  PT_RETURN_NOT_OK(check_options(o, "read_kafka", err));
  if (!topic || !*topic) return pt__errorf(err, PT_EINVAL, "read_kafka: no topic given");
  if (n < 1 || !partitions || !start || !end)
    return pt__errorf(err, PT_EINVAL, "read_kafka: give at least one partition with its start "
                                      "and end offsets");
  int64_t max = o->max_records_per_partition > 0 ? o->max_records_per_partition
                                                 : DEFAULT_MAX_RECORDS;
  int64_t pieces = 0;
  for (int32_t i = 0; i < n; i++) {
    if (partitions[i] < 0 || start[i] < 0 || end[i] < start[i])
      return pt__errorf(err, PT_EINVAL,
                        "read_kafka: topic '%s' partition %d: range [%lld, %lld) is not a range "
                        "of offsets (0 <= start <= end)", topic, (int)partitions[i],
                        (long long)start[i], (long long)end[i]);
    for (int32_t j = 0; j < i; j++)
      if (partitions[j] == partitions[i])
        return pt__errorf(err, PT_EINVAL, "read_kafka: partition %d is given twice",
                          (int)partitions[i]);
    int64_t len = end[i] - start[i];
    pieces += len == 0 ? 1 : (len + max - 1) / max;
  }
  if (pieces > (INT64_C(1) << 20))
    return pt__errorf(err, PT_EINVAL, "read_kafka: %lld engine partitions; raise "
                                      "max_records_per_partition", (long long)pieces);
  Protium__KafkaRange *ranges = pt__calloc((size_t)pieces, sizeof *ranges);
  Protium__KafkaRange **rptrs = pt__calloc((size_t)pieces, sizeof *rptrs);
  client_msg *cm = pt__calloc(1, sizeof *cm);
  struct ArrowSchema schema = {0};
  pt_dataset *ds = NULL;
  int rc = PT_OK;
  if (!ranges || !rptrs || !cm) {
    rc = pt__errorf(err, PT_ENOMEM, "read_kafka: out of memory");
    goto free_all;
  }
  int64_t k = 0;
  for (int32_t i = 0; i < n; i++) {
    int64_t a = start[i];
    do {
      int64_t b = end[i] - a > max ? a + max : end[i];
      protium__kafka_range__init(&ranges[k]);
      ranges[k].partition = partitions[i];
      ranges[k].start = a;
      ranges[k].end = b;
      rptrs[k] = &ranges[k];
      k++;
      a = b;
    } while (a < end[i]);
  }
  client_msg_init(cm, o);
  Protium__KafkaSource src = PROTIUM__KAFKA_SOURCE__INIT;
  src.client = &cm->client;
  src.topic = (char *)topic;
  src.n_ranges = (size_t)pieces;
  src.ranges = rptrs;
  rc = pt__kafka_schema(&schema, err);
  if (rc == PT_OK) rc = pt__node_new(s, s->driver, PT__NODE_KAFKA, NULL, &schema, &ds, err);
  if (rc != PT_OK) goto free_all;
  ds->partitions = pieces;
  ds->kafka_source_size = protium__kafka_source__get_packed_size(&src);
  ds->kafka_source = pt__malloc(ds->kafka_source_size ? ds->kafka_source_size : 1);
  if (!ds->kafka_source) {
    rc = pt__errorf(err, PT_ENOMEM, "read_kafka: out of memory");
    goto free_all;
  }
  protium__kafka_source__pack(&src, ds->kafka_source);
  *out = ds;
  ds = NULL;
free_all:
  pt__node_unref(ds);
  if (schema.release) schema.release(&schema);
  pt__free(cm);
  pt__free(rptrs);
  pt__free(ranges);
  return rc;
}

static int has_column(const struct ArrowSchema *s, const char *name) {
  for (int64_t i = 0; i < s->n_children; i++)
    if (s->children[i]->name && strcmp(s->children[i]->name, name) == 0) return 1;
  return 0;
}

int pt_write_kafka(pt_dataset *ds, const pt_kafka_options *o, const char *topic,
                   const char *transactional_prefix, int64_t batch_id, pt_error *err) {
  PT_RETURN_NOT_OK(pt__write_kafka(ds, o, topic, transactional_prefix, batch_id, err));
  /* A reader right after this call (read_committed) should see what it
   * wrote; the commit markers may still be on their way. */
  pt__kafka_client c;
  to_client(o, &c);
  pt__kafka_wait_committed_visible(&c, topic, 10000);
  return PT_OK;
}

int pt__write_kafka(pt_dataset *ds, const pt_kafka_options *o, const char *topic,
                    const char *transactional_prefix, int64_t batch_id, pt_error *err) {
  if (!ds) return pt__errorf(err, PT_EINVAL, "write_kafka: dataset must not be NULL");
  PT_RETURN_NOT_OK(check_options(o, "write_kafka", err));
  if (!topic || !*topic) return pt__errorf(err, PT_EINVAL, "write_kafka: no topic given");
  if (!transactional_prefix || !*transactional_prefix)
    return pt__errorf(err, PT_EINVAL, "write_kafka: no transactional prefix given; use one per "
                                      "query (and keep it across restarts)");
  if (batch_id < 0 || batch_id == INT64_MAX)
    return pt__errorf(err, PT_EINVAL, "write_kafka: batch id %lld out of range (0 and up)",
                      (long long)batch_id);
  if (o->value_format != PT_KAFKA_VALUE_COLUMN && o->value_format != PT_KAFKA_VALUE_JSON)
    return pt__errorf(err, PT_EINVAL, "write_kafka: value_format %d is not "
                      "PT_KAFKA_VALUE_COLUMN (0) or PT_KAFKA_VALUE_JSON (1)",
                      (int)o->value_format);
  if (o->value_format == PT_KAFKA_VALUE_JSON) {
    int rc = pt__kafka_json_encodable(&ds->schema, err);
    if (rc != PT_OK) return pt__error_prefix(err, rc, "write_kafka: ");
  } else if (!has_column(&ds->schema, "value")) {
    return pt__errorf(err, PT_EINVAL, "write_kafka: the data has no 'value' column; add one "
                                      "(binary or string), or encode the rows as JSON "
                                      "(value_format)");
  }
  client_msg *cm = pt__calloc(1, sizeof *cm);
  if (!cm) return pt__errorf(err, PT_ENOMEM, "write_kafka: out of memory");
  client_msg_init(cm, o);
  Protium__KafkaSink sink = PROTIUM__KAFKA_SINK__INIT;
  sink.client = &cm->client;
  sink.topic = (char *)topic;
  sink.transactional_prefix = (char *)transactional_prefix;
  sink.batch_id = batch_id;
  sink.value_format = o->value_format;
  size_t size = protium__kafka_sink__get_packed_size(&sink);
  uint8_t *packed = pt__malloc(size ? size : 1);
  if (!packed) {
    pt__free(cm);
    return pt__errorf(err, PT_ENOMEM, "write_kafka: out of memory");
  }
  protium__kafka_sink__pack(&sink, packed);
  pt__free(cm);
  pt__action a = {.job_id = pt__driver_new_job_id(ds->driver), .sink = PT__SINK_KAFKA,
                  .kafka_sink = packed, .kafka_sink_size = size};
  pt__job_result res;
  int rc = pt__driver_run(ds->driver, ds, &a, &res, err);
  pt__session_record_job(ds, &res);
  pt__free(packed);
  if (rc == PT_OK) pt__job_result_reset(&res);
  return rc;
}
