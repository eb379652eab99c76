/* test_kafka_broker.h — one real Kafka broker for a C test program
 * (tests/kafka/broker.sh in a temporary directory on free ports, stopped
 * by its pid and removed at the end), and the little client work tests do
 * themselves with librdkafka: create topics, produce, consume everything a
 * read_committed consumer sees. Tests skip (77) when Java or the broker
 * jars are missing.
 */
#ifndef PT_TEST_KAFKA_BROKER_H
#define PT_TEST_KAFKA_BROKER_H

#include <arpa/inet.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  char dir[256];
  char bootstrap[128];
} pt_test_kafka;

static char pt_test_kafka_script[1024];

/* A port nothing listens on now: bound to 0, read back, closed. */
static int pt_test_kafka_free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t l = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(s, (struct sockaddr *)&a, &l) != 0) {
    if (s >= 0) close(s);
    return -1;
  }
  close(s);
  return ntohs(a.sin_port);
}

/* 0: started; 77: Java or the jars are missing; else failed. */
static int pt_test_kafka_start(pt_test_kafka *k) {
  const char *src = getenv("PT_SOURCE_DIR");
  snprintf(pt_test_kafka_script, sizeof pt_test_kafka_script, "%s/tests/kafka/broker.sh",
           src ? src : ".");
  snprintf(k->dir, sizeof k->dir, "/tmp/pt-kafka.XXXXXX");
  if (mkdtemp(k->dir) == NULL) return -1;
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s start %s/broker > %s/bootstrap.out", pt_test_kafka_script, k->dir,
           k->dir);
  int rc = system(cmd);
  if (rc != 0) return WIFEXITED(rc) && WEXITSTATUS(rc) == 77 ? 77 : -1;
  snprintf(cmd, sizeof cmd, "%s/bootstrap.out", k->dir);
  FILE *f = fopen(cmd, "r");
  if (!f || !fgets(k->bootstrap, sizeof k->bootstrap, f)) {
    if (f) fclose(f);
    return -1;
  }
  fclose(f);
  k->bootstrap[strcspn(k->bootstrap, "\n")] = '\0';
  return 0;
}

static void pt_test_kafka_stop(pt_test_kafka *k) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s stop %s/broker; rm -rf %s", pt_test_kafka_script, k->dir, k->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not stop the broker in %s\n", k->dir);
}

static rd_kafka_t *pt_test_kafka_client(const pt_test_kafka *k, rd_kafka_type_t type,
                                        const char *const *kv) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char errstr[512];
  rd_kafka_conf_set(conf, "bootstrap.servers", k->bootstrap, errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
  for (int i = 0; kv && kv[i]; i += 2)
    if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
      fprintf(stderr, "%s: %s\n", kv[i], errstr);
  rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (!rk) fprintf(stderr, "rd_kafka_new: %s\n", errstr);
  return rk;
}

/* 0 when the topic exists with `partitions` partitions. */
static int pt_test_kafka_create_topic(const pt_test_kafka *k, const char *topic, int partitions) {
  rd_kafka_t *rk = pt_test_kafka_client(k, RD_KAFKA_PRODUCER, NULL);
  char errstr[512];
  rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof errstr);
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
  int rc = -1;
  if (ev) {
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    if (tr && n == 1 && rd_kafka_topic_result_error(tr[0]) == RD_KAFKA_RESP_ERR_NO_ERROR) rc = 0;
    else if (tr && n == 1) fprintf(stderr, "create %s: %s\n", topic, rd_kafka_topic_result_error_string(tr[0]));
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_destroy(rk);
  return rc;
}

/* Every record of topic partition `partition` that a read_committed
 * consumer sees, from offset 0 to the end: values (NUL-terminated copies)
 * and offsets into the caller's arrays (cap entries); returns the count. */
static int pt_test_kafka_consume(const pt_test_kafka *k, const char *topic, int partition,
                                 char **values, int64_t *offsets, int cap) {
  static const char *const kv[] = {"isolation.level", "read_committed", "enable.partition.eof",
                                   "true", "group.id", "pt-test", "enable.auto.commit", "false",
                                   NULL};
  rd_kafka_t *rk = pt_test_kafka_client(k, RD_KAFKA_CONSUMER, kv);
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic, partition)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  int n = 0;
  for (int polls = 0; polls < 300; polls++) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      rd_kafka_message_destroy(m);
      break;
    }
    if (!m->err && n < cap) {
      values[n] = strndup(m->payload ? (const char *)m->payload : "", m->len);
      offsets[n] = m->offset;
      n++;
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return n;
}

#endif
