/* pool.c — Kafka handles kept alive between tasks of one process. Making a
 * client costs a connection, a metadata round trip and, for a transactional
 * producer, init_transactions: most of a micro-batch's time when every task
 * made its own. A handle is taken out while a task uses it (never shared)
 * and given back only after a clean end; anything that failed is destroyed.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kafka/kafka.h"

/* Idle handles kept per process; past this the least recently given back
 * goes. A handle holds a few librdkafka threads and a broker connection. */
#define POOL_MAX 16

typedef struct idle {
  int kind;
  char *key;                 /* owned */
  void *item;                /* owned while idle */
  void (*destroy)(void *);
  uint64_t seq;              /* when it was given back */
} idle;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static idle slots[POOL_MAX]; /* guarded by mu; item NULL: free slot */
static uint64_t seq;         /* guarded by mu */

int pt__kafka_pool_key(const pt__kafka_client *c, const char *extra, char **out) {
  pt_buf b = {0};
  int ok = pt__buf_printf(&b, "%s", c->bootstrap ? c->bootstrap : "") == PT_OK;
  for (size_t i = 0; ok && i < c->n_props; i++)
    ok = pt__buf_printf(&b, "\x1f%s=%s", c->keys[i], c->values[i]) == PT_OK;
  ok = ok && pt__buf_printf(&b, "\x1e%s", extra ? extra : "") == PT_OK;
  *out = ok ? pt__malloc(b.len + 1) : NULL;
  if (*out) {
    memcpy(*out, b.data, b.len);
    (*out)[b.len] = '\0';
  }
  pt_buf_free(&b);
  return *out ? PT_OK : PT_ENOMEM;
}

void *pt__kafka_pool_take(int kind, const char *key) {
  void *item = NULL;
  uint64_t best = 0;
  int at = -1;
  pthread_mutex_lock(&mu);
  for (int i = 0; i < POOL_MAX; i++) /* the most recently used: its connections are warm */
    if (slots[i].item && slots[i].kind == kind && strcmp(slots[i].key, key) == 0 &&
        slots[i].seq >= best) {
      best = slots[i].seq;
      at = i;
    }
  if (at >= 0) {
    item = slots[at].item;
    pt__free(slots[at].key);
    memset(&slots[at], 0, sizeof slots[at]);
  }
  pthread_mutex_unlock(&mu);
  return item;
}

void pt__kafka_pool_put(int kind, const char *key, void *item, void (*destroy)(void *)) {
  if (!item) return;
  char *k = pt__strdup(key);
  if (!k) {
    destroy(item);
    return;
  }
  idle evicted = {0};
  pthread_mutex_lock(&mu);
  int at = -1;
  for (int i = 0; i < POOL_MAX && at < 0; i++)
    if (!slots[i].item) at = i;
  if (at < 0) { /* full: the oldest makes room */
    at = 0;
    for (int i = 1; i < POOL_MAX; i++)
      if (slots[i].seq < slots[at].seq) at = i;
    evicted = slots[at];
  }
  slots[at] = (idle){.kind = kind, .key = k, .item = item, .destroy = destroy, .seq = ++seq};
  pthread_mutex_unlock(&mu);
  /* outside the lock: destroying a handle waits for its threads */
  if (evicted.item) {
    evicted.destroy(evicted.item);
    pt__free(evicted.key);
  }
}

void pt__kafka_pool_clear(void) {
  idle all[POOL_MAX];
  pthread_mutex_lock(&mu);
  memcpy(all, slots, sizeof all);
  memset(slots, 0, sizeof slots);
  pthread_mutex_unlock(&mu);
  for (int i = 0; i < POOL_MAX; i++)
    if (all[i].item) {
      all[i].destroy(all[i].item);
      pt__free(all[i].key);
    }
}
