/* blockserver.c — an executor's shuffle files for reduce tasks on other
 * hosts, and its result files for the driver (protocol in blocks.h): an accept thread, a thread per connection
 * that authenticates the peer, then checks requests and sends segments with
 * sendfile (no copy through user space; over TLS encrypted from the file's
 * mapped pages) until the client goes or idles; and
 * the fetching side, which keeps authenticated connections per block server
 * for the next fetch of any task of the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "exec/blocks.h"
#include "exec/exec_int.h"
#include "net/net.h"

#define REQ_HEADER 24
#define AUTH_TIMEOUT_MS 10000
/* A connection with no request for this long is closed by the server; the
 * fetching side reuses one only if it was used more recently than
 * POOL_REUSE_MS, well within, so it rarely meets one the server closed. */
#define IDLE_TIMEOUT_MS 60000
#define POOL_REUSE_MS 30000
#define POOL_PER_SERVER 8 /* idle connections kept per block server */

struct pt__block_server {
  const char *dir;          /* borrowed */
  const pt__secret *secret; /* borrowed */
  pt__tls_ctx *tls;         /* borrowed; NULL = plain TCP */
  int fd;                   /* listening */
  char address[320];
};

typedef struct conn_arg {
  pt__block_server *s;
  int fd;
} conn_arg;

static int refuse(pt__stream *c, const char *fmt, const char *what) {
  char msg[512];
  int n = snprintf(msg, sizeof msg, fmt, what);
  if (n < 0) n = 0;
  if (n > (int)sizeof msg - 1) n = (int)sizeof msg - 1;
  uint8_t h[3] = {1, (uint8_t)(n & 255), (uint8_t)(n >> 8)};
  if (pt__stream_write(c, h, 3) == 0) (void)pt__stream_write(c, msg, (size_t)n);
  return PT_EIO;
}

static int read_all_within(pt__stream *c, void *p, size_t len, int timeout_ms) {
  uint8_t *b = p;
  while (len > 0) {
    ssize_t n = pt__stream_read(c, b, len, timeout_ms);
    if (n <= 0) return -1;
    b += n;
    len -= (size_t)n;
  }
  return 0;
}

static int read_all(pt__stream *c, void *p, size_t len) {
  return read_all_within(c, p, len, AUTH_TIMEOUT_MS);
}

/* The status byte and the segment from memory in as few sends as the
 * socket takes: a separate one-byte send would wait, under Nagle's rule,
 * for the client's delayed ACK (40 ms per block). */
static int send_ok_and(pt__stream *c, const uint8_t *p, size_t len) {
  uint8_t ok = 0;
  if (c->tls) return pt__stream_write(c, &ok, 1) == 0 ? pt__stream_write(c, p, len) : -1;
  int fd = c->fd;
  struct iovec iov[2] = {{&ok, 1}, {(void *)p, len}};
  struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
  while (mh.msg_iovlen > 0) {
    ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    while (mh.msg_iovlen > 0 && (size_t)n >= mh.msg_iov->iov_len) {
      n -= (ssize_t)mh.msg_iov->iov_len;
      mh.msg_iov++;
      mh.msg_iovlen--;
    }
    if (mh.msg_iovlen > 0) {
      mh.msg_iov->iov_base = (uint8_t *)mh.msg_iov->iov_base + n;
      mh.msg_iov->iov_len -= (size_t)n;
    }
  }
  return 0;
}

/* One request: checked, then the bytes straight from the page cache.
 * 1 when the connection may carry another (the segment went out whole). */
static int serve(pt__block_server *s, pt__stream *c) {
  uint8_t h[REQ_HEADER];
  if (read_all_within(c, h, sizeof h, IDLE_TIMEOUT_MS) != 0) return 0;
  if (memcmp(h, "PTBK", 4) != 0) return 0;
  uint32_t n = pt__load_u32(h + 4);
  uint64_t off, len;
  memcpy(&off, h + 8, 8);
  memcpy(&len, h + 16, 8);
  if (n == 0 || n > PT__BLOCK_PATH_MAX || len > PT__MAX_FRAME || off > (uint64_t)INT64_MAX) {
    refuse(c, "%s", "block request out of limits");
    return 0;
  }
  char path[PT__BLOCK_PATH_MAX + 1];
  if (read_all(c, path, n) != 0) return 0;
  path[n] = 0;
  size_t dl = strlen(s->dir);
  /* Only this executor's shuffle files and the result files the driver
   * fetches: under its directory, no way up. */
  const char *name = path + dl + 1;
  if (strlen(path) != n || strncmp(path, s->dir, dl) != 0 || path[dl] != '/' ||
      strstr(path, "/..") != NULL ||
      (strncmp(name, "shuffle-", 8) != 0 && strncmp(name, "result-", 7) != 0)) {
    refuse(c, "'%s' is not a shuffle or result file of this executor", path);
    return 0;
  }
  /* Map output kept in memory (shuffle_mem.c) goes from there; the rest
   * from its file. */
  const uint8_t *kept;
  size_t kept_len;
  pt__mem_out *held = pt__mem_get(path, &kept, &kept_len);
  if (held != NULL) {
    int whole = 0;
    if (off + len > kept_len) {
      refuse(c, "%s", "segment past the end of the map output");
    } else {
      whole = send_ok_and(c, kept + off, (size_t)len) == 0;
    }
    pt__mem_unref(held);
    return whole;
  }
  int file = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (file < 0) {
    refuse(c, "%s", strerror(errno));
    return 0;
  }
  struct stat st;
  if (fstat(file, &st) != 0 || !S_ISREG(st.st_mode) || off + len > (uint64_t)st.st_size) {
    close(file);
    refuse(c, "%s", "segment past the end of the file");
    return 0;
  }
  if (c->tls) {
    /* Encrypted from the file's pages where they lie. */
    long page = sysconf(_SC_PAGESIZE);
    off_t start = (off_t)off & ~(off_t)(page - 1);
    size_t span = (size_t)(off - (uint64_t)start) + (size_t)len;
    void *map = len ? mmap(NULL, span, PROT_READ, MAP_SHARED, file, start) : NULL;
    close(file);
    if (map == MAP_FAILED) {
      refuse(c, "%s", strerror(errno));
      return 0;
    }
    int whole = send_ok_and(c, (const uint8_t *)map + (off - (uint64_t)start), (size_t)len) == 0;
    if (map) munmap(map, span);
    return whole;
  }
  int fd = c->fd;
  uint8_t ok = 0;
  if (pt__write_all(fd, &ok, 1, NULL) != PT_OK) {
    close(file);
    return 0;
  }
  off_t pos = (off_t)off;
  while (len > 0) {
    ssize_t w = sendfile(fd, file, &pos, len > (1u << 30) ? (1u << 30) : (size_t)len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      (void)poll(&pfd, 1, AUTH_TIMEOUT_MS);
      continue;
    }
    if (w <= 0) break;
    len -= (uint64_t)w;
  }
  close(file);
  /* sendfile may leave the segment's tail corked (more was said to be
   * coming); the connection now stays open for the next request, so push
   * it out (setting TCP_NODELAY flushes; a no-op on the TLS pump's socket). */
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return len == 0;
}

static void *conn_main(void *arg) {
  conn_arg a = *(conn_arg *)arg;
  pt__free(arg);
  pt_error err = {0};
  char peer[128];
  pt__peer_name(a.fd, peer, sizeof peer);
  pt__stream c = {.fd = a.fd};
  int rc = PT_OK, one = 1;
  /* Replies are whole segments written at once: nothing to gain from
   * Nagle's wait, only a delayed ACK's worth of latency on each tail. */
  (void)setsockopt(a.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  /* TLS first, driven by this thread (it alone uses the connection), the
   * secret inside it. */
  if (a.s->tls) rc = pt__tls_direct(a.s->tls, a.fd, 1, AUTH_TIMEOUT_MS, &c.tls, &err);
  if (rc == PT_OK) rc = pt__auth_server_stream(&c, a.s->secret, AUTH_TIMEOUT_MS, &err);
  if (rc == PT_OK)
    while (serve(a.s, &c)) {
    }
  else if (err.code != PT_EIO)
    fprintf(stderr, "protium executor: block server refused a connection from %s: %s\n", peer,
            err.message);
  pt__stream_close(&c);
  return NULL;
}

static void *accept_main(void *arg) {
  pt__block_server *s = arg;
  for (;;) {
    int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        usleep(10000); /* let connections end, then take the next */
        continue;
      }
      return NULL;
    }
    conn_arg *a = pt__malloc(sizeof *a);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (a) *a = (conn_arg){s, fd};
    if (!a || pthread_create(&t, &attr, conn_main, a) != 0) {
      pt__free(a);
      close(fd);
    }
    pthread_attr_destroy(&attr);
  }
}

int pt__block_server_start(const char *dir, const pt__secret *secret, pt__tls_ctx *tls,
                           const char *advertise_host, pt__block_server **out, pt_error *err) {
  *out = NULL;
  pt__block_server *s = pt__calloc(1, sizeof *s);
  if (!s) return pt__errorf(err, PT_ENOMEM, "block server: out of memory");
  s->dir = dir;
  s->secret = secret;
  s->tls = tls;
  int port;
  int rc = pt__tcp_listen("", 0, &s->fd, &port, err);
  if (rc != PT_OK) {
    pt__free(s);
    return pt__error_prefix(err, rc, "block server: ");
  }
  pt__addr_join(advertise_host, port, s->address, sizeof s->address);
  pthread_t t;
  if (pthread_create(&t, NULL, accept_main, s) != 0) {
    close(s->fd);
    pt__free(s);
    return pt__errorf(err, PT_EIO, "block server: cannot start its thread");
  }
  pthread_detach(t);
  *out = s;
  return PT_OK;
}

const char *pt__block_server_address(const pt__block_server *s) { return s->address; }

/* ------------------------------------------------------------------------ */
/* The fetching side */

/* An idle, authenticated connection to a block server: reused by the next
 * fetch from that server with the same secret and TLS context. */
typedef struct pooled {
  char addr[340];
  pt__secret secret; /* a copy: a fetch with another secret must not reuse it */
  pt__tls_ctx *tls;
  pt__stream conn;  /* owned */
  int64_t used_ms; /* CLOCK_MONOTONIC, when its last fetch ended */
  struct pooled *next;
} pooled;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pooled *pool; /* (pool_mu) */

static int same_key(const pooled *p, const char *addr, const pt__secret *secret,
                    const pt__tls_ctx *tls) {
  return p->tls == tls && p->secret.len == secret->len &&
         memcmp(p->secret.bytes, secret->bytes, secret->len) == 0 && strcmp(p->addr, addr) == 0;
}

/* An idle connection to addr (*out, with fd -1: none); ones idle too long
 * are closed. */
static void pool_take(const char *addr, const pt__secret *secret, const pt__tls_ctx *tls,
                      pt__stream *out) {
  *out = (pt__stream){.fd = -1};
  int64_t now = pt__mono_ms();
  pooled *stale = NULL;
  pthread_mutex_lock(&pool_mu);
  for (pooled **pp = &pool; *pp;) {
    pooled *p = *pp;
    if (now - p->used_ms > POOL_REUSE_MS) {
      *pp = p->next;
      p->next = stale;
      stale = p;
      continue;
    }
    if (out->fd < 0 && same_key(p, addr, secret, tls)) {
      *out = p->conn;
      *pp = p->next;
      OPENSSL_cleanse(&p->secret, sizeof p->secret);
      pt__free(p);
      continue;
    }
    pp = &p->next;
  }
  pthread_mutex_unlock(&pool_mu);
  while (stale) {
    pooled *next = stale->next;
    pt__stream_close(&stale->conn);
    OPENSSL_cleanse(&stale->secret, sizeof stale->secret);
    pt__free(stale);
    stale = next;
  }
}

/* Keeps c for the next fetch from addr (closes it when enough are kept). */
static void pool_put(const char *addr, const pt__secret *secret, pt__tls_ctx *tls,
                     pt__stream *c) {
  pooled *p = pt__calloc(1, sizeof *p);
  int kept = 0;
  pthread_mutex_lock(&pool_mu);
  for (pooled *q = pool; q; q = q->next) kept += same_key(q, addr, secret, tls);
  if (p && kept < POOL_PER_SERVER && strlen(addr) < sizeof p->addr) {
    strcpy(p->addr, addr);
    p->secret = *secret;
    p->tls = tls;
    p->conn = *c;
    p->used_ms = pt__mono_ms();
    p->next = pool;
    pool = p;
    p = NULL;
    *c = (pt__stream){.fd = -1};
  }
  pthread_mutex_unlock(&pool_mu);
  pt__free(p);
  pt__stream_close(c);
}

/* A fresh connection: TCP, TLS when on (driven by this thread: a fetch
 * reads its segment straight from the decrypted stream), the secret's
 * handshake. */
static int open_conn(const char *addr, const pt__secret *secret, pt__tls_ctx *tls,
                     int64_t connect_timeout_ms, pt__stream *out, pt_error *err) {
  char where[340];
  snprintf(where, sizeof where, "tcp:%s", addr);
  pt__stream c = {.fd = -1};
  int rc = pt__net_connect_within(where, connect_timeout_ms, &c.fd, err);
  if (rc == PT_OK && tls) rc = pt__tls_direct(tls, c.fd, 0, AUTH_TIMEOUT_MS, &c.tls, err);
  if (rc == PT_OK) rc = pt__auth_client_stream(&c, secret, AUTH_TIMEOUT_MS, err);
  if (rc != PT_OK) {
    pt__stream_close(&c);
    return rc;
  }
  *out = c;
  return PT_OK;
}

static int c_read_all(pt__stream *c, void *p, size_t len) {
  uint8_t *b = p;
  while (len > 0) {
    ssize_t n = pt__stream_read(c, b, len, AUTH_TIMEOUT_MS);
    if (n <= 0) return -1;
    b += n;
    len -= (size_t)n;
  }
  return 0;
}

/* One request on c. *stale = 1 when nothing came back at all (a pooled
 * connection the server had closed: worth one fresh try). PT_OK leaves c
 * ready for another request. */
static int request(pt__stream *c, const char *addr, const char *path, int64_t off, size_t len,
                   uint8_t *buf, int *stale, pt_error *err) {
  *stale = 0;
  size_t n = strlen(path);
  uint8_t h[REQ_HEADER];
  memcpy(h, "PTBK", 4);
  pt__store_u32(h + 4, (uint32_t)n);
  uint64_t o = (uint64_t)off, l = len;
  memcpy(h + 8, &o, 8);
  memcpy(h + 16, &l, 8);
  uint8_t status;
  if (pt__stream_write(c, h, sizeof h) != 0 || pt__stream_write(c, path, n) != 0 ||
      c_read_all(c, &status, 1) != 0) {
    *stale = 1;
    return pt__errorf(err, PT_EIO, "block server %s sent no reply", addr);
  }
  if (status != 0) {
    uint8_t ml[2];
    char msg[65536 + 1] = "";
    size_t m = 0;
    if (c_read_all(c, ml, 2) == 0) {
      m = (size_t)(ml[0] | ml[1] << 8);
      if (c_read_all(c, msg, m) != 0) m = 0;
    }
    msg[m] = 0;
    return pt__errorf(err, PT_EIO, "block server %s: %s", addr, msg);
  }
  if (c_read_all(c, buf, len) != 0)
    return pt__errorf(err, PT_EIO, "block server %s: connection ended within the segment", addr);
  return PT_OK;
}

int pt__block_fetch(const char *addr, const pt__secret *secret, pt__tls_ctx *tls,
                    int64_t connect_timeout_ms, const char *path, int64_t off, size_t len,
                    uint8_t *buf, int *unreachable, pt_error *err) {
  *unreachable = 0;
  size_t n = strlen(path);
  if (n == 0 || n > PT__BLOCK_PATH_MAX || len > PT__MAX_FRAME || off < 0)
    return pt__errorf(err, PT_EINVAL, "block fetch: request out of limits");
  /* A kept connection first; if the server had closed it, one fresh try.
   * Only a fresh connection that cannot be made or authenticated says the
   * executor is gone. */
  pt__stream c;
  pool_take(addr, secret, tls, &c);
  int reused = c.fd >= 0;
  for (;;) {
    int rc;
    if (c.fd < 0 && (rc = open_conn(addr, secret, tls, connect_timeout_ms, &c, err)) != PT_OK) {
      *unreachable = 1;
      return rc;
    }
    int stale;
    rc = request(&c, addr, path, off, len, buf, &stale, err);
    if (rc == PT_OK) {
      pool_put(addr, secret, tls, &c);
      return PT_OK;
    }
    pt__stream_close(&c);
    if (!(reused && stale)) return rc;
    reused = 0;
  }
}
