/* blockserver.c — an executor's shuffle files for reduce tasks on other
 * hosts (protocol in blocks.h): an accept thread, a short-lived thread per
 * connection that authenticates the peer, checks the request and sends the
 * segment with sendfile (no copy through user space); and the fetching side.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/blocks.h"
#include "net/net.h"

#define REQ_HEADER 24
#define AUTH_TIMEOUT_MS 10000

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

static int refuse(int fd, const char *fmt, const char *what) {
  char msg[512];
  int n = snprintf(msg, sizeof msg, fmt, what);
  if (n < 0) n = 0;
  if (n > (int)sizeof msg - 1) n = (int)sizeof msg - 1;
  uint8_t h[3] = {1, (uint8_t)(n & 255), (uint8_t)(n >> 8)};
  if (pt__write_all(fd, h, 3, NULL) == PT_OK) (void)pt__write_all(fd, msg, (size_t)n, NULL);
  return PT_EIO;
}

static int read_all(int fd, void *p, size_t len) {
  uint8_t *b = p;
  while (len > 0) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, AUTH_TIMEOUT_MS);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    ssize_t n = read(fd, b, len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return -1;
    b += n;
    len -= (size_t)n;
  }
  return 0;
}

/* One request: checked, then the bytes straight from the page cache. */
static void serve(pt__block_server *s, int fd) {
  uint8_t h[REQ_HEADER];
  if (read_all(fd, h, sizeof h) != 0) return;
  if (memcmp(h, "PTBK", 4) != 0) return;
  uint32_t n = pt__load_u32(h + 4);
  uint64_t off, len;
  memcpy(&off, h + 8, 8);
  memcpy(&len, h + 16, 8);
  if (n == 0 || n > PT__BLOCK_PATH_MAX || len > PT__MAX_FRAME || off > (uint64_t)INT64_MAX) {
    refuse(fd, "%s", "block request out of limits");
    return;
  }
  char path[PT__BLOCK_PATH_MAX + 1];
  if (read_all(fd, path, n) != 0) return;
  path[n] = 0;
  size_t dl = strlen(s->dir);
  /* Only this executor's shuffle files: under its directory, no way up. */
  if (strlen(path) != n || strncmp(path, s->dir, dl) != 0 || path[dl] != '/' ||
      strstr(path, "/..") != NULL || strstr(path + dl + 1, "shuffle-") != path + dl + 1) {
    refuse(fd, "'%s' is not a shuffle file of this executor", path);
    return;
  }
  int file = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (file < 0) {
    refuse(fd, "%s", strerror(errno));
    return;
  }
  struct stat st;
  if (fstat(file, &st) != 0 || !S_ISREG(st.st_mode) || off + len > (uint64_t)st.st_size) {
    close(file);
    refuse(fd, "%s", "segment past the end of the file");
    return;
  }
  uint8_t ok = 0;
  if (pt__write_all(fd, &ok, 1, NULL) != PT_OK) {
    close(file);
    return;
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
}

static void *conn_main(void *arg) {
  conn_arg a = *(conn_arg *)arg;
  pt__free(arg);
  pt_error err = {0};
  char peer[128];
  pt__peer_name(a.fd, peer, sizeof peer);
  int fd = a.fd, rc = PT_OK;
  /* TLS first (the pump then owns the socket), the secret inside it. */
  if (a.s->tls && (rc = pt__tls_wrap(a.s->tls, a.fd, 1, AUTH_TIMEOUT_MS, &fd, &err)) != PT_OK)
    fd = a.fd;
  if (rc == PT_OK) rc = pt__auth_server(fd, a.s->secret, AUTH_TIMEOUT_MS, &err);
  if (rc == PT_OK) serve(a.s, fd);
  else if (err.code != PT_EIO)
    fprintf(stderr, "protium executor: block server refused a connection from %s: %s\n", peer,
            err.message);
  close(fd);
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

int pt__block_fetch(const char *addr, const pt__secret *secret, pt__tls_ctx *tls,
                    const char *path, int64_t off, size_t len, uint8_t *buf, int *unreachable,
                    pt_error *err) {
  *unreachable = 0;
  size_t n = strlen(path);
  if (n == 0 || n > PT__BLOCK_PATH_MAX || len > PT__MAX_FRAME || off < 0)
    return pt__errorf(err, PT_EINVAL, "block fetch: request out of limits");
  char where[340];
  snprintf(where, sizeof where, "tcp:%s", addr);
  int fd = -1;
  int rc = pt__net_connect(where, &fd, err);
  int app;
  if (rc == PT_OK && tls && (rc = pt__tls_wrap(tls, fd, 0, AUTH_TIMEOUT_MS, &app, err)) == PT_OK)
    fd = app;
  if (rc == PT_OK) rc = pt__auth_client(fd, secret, AUTH_TIMEOUT_MS, err);
  if (rc != PT_OK) {
    *unreachable = 1;
    if (fd >= 0) close(fd);
    return rc;
  }
  uint8_t h[REQ_HEADER];
  memcpy(h, "PTBK", 4);
  pt__store_u32(h + 4, (uint32_t)n);
  uint64_t o = (uint64_t)off, l = len;
  memcpy(h + 8, &o, 8);
  memcpy(h + 16, &l, 8);
  rc = pt__write_all(fd, h, sizeof h, err);
  if (rc == PT_OK) rc = pt__write_all(fd, path, n, err);
  if (rc != PT_OK) goto close_fd;
  uint8_t status;
  if (read_all(fd, &status, 1) != 0) {
    rc = pt__errorf(err, PT_EIO, "block server %s sent no reply", addr);
    goto close_fd;
  }
  if (status != 0) {
    uint8_t ml[2];
    char msg[65536 + 1] = "";
    size_t m = 0;
    if (read_all(fd, ml, 2) == 0) {
      m = (size_t)(ml[0] | ml[1] << 8);
      if (read_all(fd, msg, m) != 0) m = 0;
    }
    msg[m] = 0;
    rc = pt__errorf(err, PT_EIO, "block server %s: %s", addr, msg);
    goto close_fd;
  }
  if (read_all(fd, buf, len) != 0)
    rc = pt__errorf(err, PT_EIO, "block server %s: connection ended within the segment", addr);
close_fd:
  close(fd);
  return rc;
}
