/* tls.c — TLS through OpenSSL's libssl over memory BIOs (see tls.h): the
 * context made from net.tls.cert/key/ca, one connection's state, and for
 * blocking code a pump thread that puts a local socket in front of the
 * encrypted one, so that the frame and handshake code reads plain bytes;
 * or, for a connection one thread drives alone, TLS on the socket itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net/net.h"
#include "net/tls.h"

struct pt__tls_ctx {
  SSL_CTX *ssl;
};

struct pt__tls {
  SSL *ssl;
  BIO *in;  /* network -> OpenSSL; owned by ssl */
  BIO *out; /* OpenSSL -> network; owned by ssl */
};

/* OpenSSL's reason for the last failure of this thread, then its queue
 * emptied (it is per thread, and a stale entry would name a later error). */
static void ssl_reason(char *out, size_t cap) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  snprintf(out, cap, "%s", r ? r : "unknown error");
  ERR_clear_error();
}

int pt__tls_ctx_new(const char *cert, const char *key, const char *ca, pt__tls_ctx **out,
                    pt_error *err) {
  *out = NULL;
  const char *names[3] = {"net.tls.cert", "net.tls.key", "net.tls.ca"};
  const char *files[3] = {cert, key, ca};
  for (int i = 0; i < 3; i++)
    if (!files[i] || !*files[i])
      return pt__errorf(err, PT_EINVAL, "net.tls = on needs %s; set it to a PEM file (see "
                        "docs/cluster.md, Security)", names[i]);
  pt__tls_ctx *c = pt__calloc(1, sizeof *c);
  if (!c) return pt__errorf(err, PT_ENOMEM, "tls: out of memory");
  char why[256];
  int rc = PT_OK;
  c->ssl = SSL_CTX_new(TLS_method());
  if (!c->ssl) {
    ssl_reason(why, sizeof why);
    rc = pt__errorf(err, PT_ENOMEM, "tls: cannot make a context: %s", why);
    goto free_ctx;
  }
  /* TLS 1.2 at least; tickets off: every connection verifies certificates
   * afresh, and a ticket would be one more message after the handshake. */
  SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION);
  SSL_CTX_set_options(c->ssl, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(c->ssl, 0);
  SSL_CTX_set_session_cache_mode(c->ssl, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate_chain_file(c->ssl, cert) != 1) {
    ssl_reason(why, sizeof why);
    rc = pt__errorf(err, PT_EINVAL, "net.tls.cert '%s' cannot be used: %s; give a PEM "
                    "certificate file", cert, why);
    goto free_ctx;
  }
  if (SSL_CTX_use_PrivateKey_file(c->ssl, key, SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      rc = pt__errorf(err, PT_EINVAL, "net.tls.key '%s' does not belong to net.tls.cert '%s'; "
                      "give the key the certificate was made for", key, cert);
      goto free_ctx;
    }
    ssl_reason(why, sizeof why);
    rc = pt__errorf(err, PT_EINVAL, "net.tls.key '%s' cannot be used: %s; give the PEM "
                    "private key of net.tls.cert, unencrypted", key, why);
    goto free_ctx;
  }
  if (SSL_CTX_check_private_key(c->ssl) != 1) {
    ERR_clear_error();
    rc = pt__errorf(err, PT_EINVAL, "net.tls.key '%s' does not belong to net.tls.cert '%s'; "
                    "give the key the certificate was made for", key, cert);
    goto free_ctx;
  }
  if (SSL_CTX_load_verify_locations(c->ssl, ca, NULL) != 1) {
    ssl_reason(why, sizeof why);
    rc = pt__errorf(err, PT_EINVAL, "net.tls.ca '%s' cannot be used: %s; give a PEM file of "
                    "the CA that signed the cluster's certificates", ca, why);
    goto free_ctx;
  }
  /* Both ways: an executor shows its certificate as the driver does. Names
   * are not checked: peers reach each other by address, and the CA is the
   * cluster's own. */
  SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  *out = c;
  return PT_OK;

free_ctx:
  ERR_clear_error();
  SSL_CTX_free(c->ssl);
  pt__free(c);
  return rc;
}

void pt__tls_ctx_free(pt__tls_ctx *c) {
  if (!c) return;
  SSL_CTX_free(c->ssl);
  pt__free(c);
}

int pt__tls_new(pt__tls_ctx *ctx, int server, pt__tls **out, pt_error *err) {
  *out = NULL;
  pt__tls *t = pt__calloc(1, sizeof *t);
  if (!t) return pt__errorf(err, PT_ENOMEM, "tls: out of memory");
  t->ssl = SSL_new(ctx->ssl);
  t->in = BIO_new(BIO_s_mem());
  t->out = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->in || !t->out) {
    SSL_free(t->ssl);
    BIO_free(t->in);
    BIO_free(t->out);
    pt__free(t);
    ERR_clear_error();
    return pt__errorf(err, PT_ENOMEM, "tls: out of memory");
  }
  /* An empty memory BIO means "more later", not end of file. */
  BIO_set_mem_eof_return(t->in, -1);
  BIO_set_mem_eof_return(t->out, -1);
  SSL_set_bio(t->ssl, t->in, t->out);
  if (server) SSL_set_accept_state(t->ssl);
  else SSL_set_connect_state(t->ssl);
  *out = t;
  return PT_OK;
}

void pt__tls_free(pt__tls *t) {
  if (!t) return;
  SSL_free(t->ssl); /* frees both BIOs */
  pt__free(t);
}

int pt__tls_ready(const pt__tls *t) { return SSL_is_init_finished(t->ssl); }

/* The error of a failed SSL call r, as a message. */
static int tls_failed(pt__tls *t, int r, pt_error *err) {
  int e = SSL_get_error(t->ssl, r);
  char why[256];
  long v = SSL_get_verify_result(t->ssl);
  if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    ERR_clear_error();
    return pt__errorf(err, PT_EFORMAT, "tls: the stream ended inside a record");
  }
  ssl_reason(why, sizeof why);
  if (v != X509_V_OK && !pt__tls_ready(t))
    return pt__errorf(err, PT_EFORMAT, "tls: certificate refused: %s",
                      X509_verify_cert_error_string(v));
  return pt__errorf(err, PT_EFORMAT, "tls: %s", why);
}

int pt__tls_recv(pt__tls *t, const void *cipher, size_t len, pt_buf *plain, int *closed,
                 pt_error *err) {
  *closed = 0;
  if (len > 0 && (len > INT32_MAX || BIO_write(t->in, cipher, (int)len) != (int)len)) {
    ERR_clear_error();
    return pt__errorf(err, PT_ENOMEM, "tls: out of memory");
  }
  if (!SSL_is_init_finished(t->ssl)) {
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
      int e = SSL_get_error(t->ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return PT_OK;
      return tls_failed(t, r, err);
    }
  }
  for (;;) {
    PT_RETURN_NOT_OK(pt__buf_reserve(plain, 16384));
    size_t n = 0;
    int r = SSL_read_ex(t->ssl, plain->data + plain->len, plain->cap - plain->len, &n);
    if (r == 1) {
      plain->len += n;
      continue;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return PT_OK;
    if (e == SSL_ERROR_ZERO_RETURN) {
      *closed = 1;
      return PT_OK;
    }
    return tls_failed(t, r, err);
  }
}

int pt__tls_send(pt__tls *t, const void *plain, size_t len, pt_error *err) {
  if (!SSL_is_init_finished(t->ssl))
    return pt__errorf(err, PT_ESTATE, "tls: send before the handshake");
  const uint8_t *p = plain;
  while (len > 0) {
    size_t w = 0;
    int r = SSL_write_ex(t->ssl, p, len, &w);
    if (r != 1) return tls_failed(t, r, err);
    p += w;
    len -= w;
  }
  return PT_OK;
}

int pt__tls_take(pt__tls *t, pt_buf *out, pt_error *err) {
  size_t n = BIO_ctrl_pending(t->out);
  if (n == 0) return PT_OK;
  if (pt__buf_reserve(out, n) != PT_OK) return pt__errorf(err, PT_ENOMEM, "tls: out of memory");
  int r = BIO_read(t->out, out->data + out->len, (int)n);
  if (r > 0) out->len += (size_t)r;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Blocking sockets: the handshake, then the pump thread. */

/* Plaintext or ciphertext held back while the other side is slow. */
#define PUMP_LIMIT (1u << 20)

typedef struct pump {
  pt__tls *t;
  int net, app;  /* the TCP socket; the pump's end of the local pair */
  pt_buf to_net; /* ciphertext; [net_off, len) not yet written */
  pt_buf to_app; /* plaintext; [app_off, len) not yet delivered */
  size_t net_off, app_off;
  uint8_t *buf;  /* PUMP_READ bytes, for reads from either side */
} pump;

#define PUMP_READ 65536

/* Bytes of b from *off not yet written. */
static size_t held(const pt_buf *b, size_t off) { return b->len - off; }

/* Writes what it can of b from *off to fd without blocking; -1 when fd is
 * gone. What was written is skipped, not moved: a socket that takes a
 * little at a time would otherwise have the rest moved after each send.
 * The rest moves to the front only once it is no larger than what went. */
static int drain(int fd, pt_buf *b, size_t *off) {
  while (*off < b->len) {
    ssize_t n = send(fd, b->data + *off, b->len - *off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) return -1;
    *off += (size_t)n;
  }
  if (*off == b->len) {
    b->len = *off = 0;
  } else if (*off >= b->len - *off) {
    memmove(b->data, b->data + *off, b->len - *off);
    b->len -= *off;
    *off = 0;
  }
  return 0;
}

static void *pump_main(void *arg) {
  pump *p = arg;
  int net_done = 0, app_done = 0;
  uint8_t *buf = p->buf;
  fcntl(p->net, F_SETFL, fcntl(p->net, F_GETFL) | O_NONBLOCK);
  fcntl(p->app, F_SETFL, fcntl(p->app, F_GETFL) | O_NONBLOCK);
  /* The pump already sends all it holds with one call, so Nagle's algorithm
   * only delays: a reply's small first record (a block server's status
   * byte) would hold back the records after it until the peer's delayed
   * acknowledgement came, milliseconds per request. An accepted socket does
   * not have the option that pt__net_connect sets; code behind the pump
   * cannot set it on the TCP socket it never sees. */
  int one = 1;
  (void)setsockopt(p->net, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  for (;;) {
    /* The network ended: deliver what came, then end the app's side. The
     * app ended: send what it wrote, say goodbye, close. */
    if (net_done && held(&p->to_app, p->app_off) == 0) break;
    if (app_done && (held(&p->to_net, p->net_off) == 0 || net_done)) {
      if (!net_done) {
        (void)SSL_shutdown(p->t->ssl);
        ERR_clear_error();
        if (pt__tls_take(p->t, &p->to_net, NULL) == PT_OK)
          (void)drain(p->net, &p->to_net, &p->net_off);
      }
      break;
    }
    struct pollfd f[2] = {{.fd = p->net}, {.fd = p->app}};
    if (!net_done && held(&p->to_app, p->app_off) < PUMP_LIMIT) f[0].events |= POLLIN;
    if (!net_done && held(&p->to_net, p->net_off) > 0) f[0].events |= POLLOUT;
    if (!app_done && !net_done && held(&p->to_net, p->net_off) < PUMP_LIMIT)
      f[1].events |= POLLIN;
    if (!app_done && held(&p->to_app, p->app_off) > 0) f[1].events |= POLLOUT;
    /* A side with nothing to wait for is left out: its hang-up would
     * otherwise wake us in a loop. */
    if (!f[0].events) f[0].fd = -1;
    if (!f[1].events) f[1].fd = -1;
    if (poll(f, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (f[0].revents & (POLLIN | POLLHUP | POLLERR) && f[0].events & POLLIN) {
      ssize_t n = read(p->net, buf, PUMP_READ);
      if (n > 0) {
        int closed = 0;
        if (pt__tls_recv(p->t, buf, (size_t)n, &p->to_app, &closed, NULL) != PT_OK || closed)
          net_done = 1;
        (void)pt__tls_take(p->t, &p->to_net, NULL);
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        net_done = 1;
      }
    }
    if (f[1].revents & (POLLIN | POLLHUP | POLLERR) && f[1].events & POLLIN) {
      ssize_t n = read(p->app, buf, PUMP_READ);
      if (n > 0) {
        if (pt__tls_send(p->t, buf, (size_t)n, NULL) != PT_OK) net_done = app_done = 1;
        (void)pt__tls_take(p->t, &p->to_net, NULL);
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        app_done = 1;
      }
    }
    if (!net_done && held(&p->to_net, p->net_off) > 0 &&
        drain(p->net, &p->to_net, &p->net_off) != 0)
      net_done = 1;
    if (!app_done && held(&p->to_app, p->app_off) > 0 &&
        drain(p->app, &p->to_app, &p->app_off) != 0) {
      app_done = 1;
      p->to_app.len = p->app_off = 0;
    }
    if (net_done) p->to_net.len = p->net_off = 0;
  }
  close(p->net);
  close(p->app);
  pt_buf_free(&p->to_net);
  pt_buf_free(&p->to_app);
  pt__tls_free(p->t);
  pt__free(p->buf);
  pt__free(p);
  return NULL;
}

int pt__tls_wrap(pt__tls_ctx *ctx, int fd, int server, int timeout_ms, int *app_fd,
                 pt_error *err) {
  *app_fd = -1;
  pump *p = pt__calloc(1, sizeof *p);
  if (!p) return pt__errorf(err, PT_ENOMEM, "tls: out of memory");
  p->net = fd;
  p->app = -1;
  p->buf = pt__malloc(PUMP_READ);
  int rc = p->buf ? pt__tls_new(ctx, server, &p->t, err)
                  : pt__errorf(err, PT_ENOMEM, "tls: out of memory");
  if (rc != PT_OK) goto free_pump;
  uint8_t buf[16384];
  size_t n = 0;
  for (;;) {
    int closed = 0;
    rc = pt__tls_recv(p->t, buf, n, &p->to_app, &closed, err);
    /* Handshake messages, or the alert that tells the peer why not. */
    int rc2 = pt__tls_take(p->t, &p->to_net, err);
    if (rc2 == PT_OK && p->to_net.len > 0) {
      rc2 = pt__write_all(fd, p->to_net.data, p->to_net.len, rc == PT_OK ? err : NULL);
      p->to_net.len = 0;
    }
    if (rc == PT_OK) rc = rc2;
    if (rc == PT_OK && closed)
      rc = pt__errorf(err, PT_EIO, "tls: the peer closed the connection in the handshake");
    if (rc != PT_OK) goto free_pump;
    if (pt__tls_ready(p->t)) break;
    struct pollfd f = {.fd = fd, .events = POLLIN};
    int r = poll(&f, 1, timeout_ms);
    if (r < 0 && errno == EINTR) {
      n = 0;
      continue;
    }
    if (r == 0) {
      rc = pt__errorf(err, PT_ETIMEDOUT, "tls: no handshake within %d ms", timeout_ms);
      goto free_pump;
    }
    ssize_t got = read(fd, buf, sizeof buf);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) got = 0;
    else if (got <= 0) {
      rc = pt__errorf(err, PT_EIO, "tls: connection closed in the handshake");
      goto free_pump;
    }
    n = (size_t)got;
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    rc = pt__errorf(err, PT_EIO, "tls: socketpair: %s", strerror(errno));
    goto free_pump;
  }
  p->app = sv[1];
  pthread_t th;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int e = pthread_create(&th, &attr, pump_main, p);
  pthread_attr_destroy(&attr);
  if (e != 0) {
    close(sv[0]);
    close(sv[1]);
    rc = pt__errorf(err, PT_EIO, "tls: cannot start a thread: %s", strerror(e));
    goto free_pump;
  }
  *app_fd = sv[0];
  return PT_OK;

free_pump:
  pt_buf_free(&p->to_net);
  pt_buf_free(&p->to_app);
  pt__tls_free(p->t);
  pt__free(p->buf);
  pt__free(p);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Blocking sockets driven by their own thread (pt__stream). */

int pt__tls_direct(pt__tls_ctx *ctx, int fd, int server, int timeout_ms, pt__tls **out,
                   pt_error *err) {
  *out = NULL;
  pt__tls *t = pt__calloc(1, sizeof *t);
  if (!t) return pt__errorf(err, PT_ENOMEM, "tls: out of memory");
  t->ssl = SSL_new(ctx->ssl);
  if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
    SSL_free(t->ssl);
    pt__free(t);
    ERR_clear_error();
    return pt__errorf(err, PT_ENOMEM, "tls: out of memory");
  }
  if (server) SSL_set_accept_state(t->ssl);
  else SSL_set_connect_state(t->ssl);
  /* Whole socket buffers at a time, not each record's header and body in
   * reads of their own: a segment of 16 MiB is a thousand records. */
  SSL_set_read_ahead(t->ssl, 1);
  SSL_set_default_read_buffer_len(t->ssl, 256u << 10);
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK); /* for the handshake's timeout */
  int rc = PT_OK;
  for (;;) {
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) break;
    int e = SSL_get_error(t->ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      rc = e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0
               ? pt__errorf(err, PT_EIO, "tls: connection closed in the handshake")
               : tls_failed(t, r, err);
      break;
    }
    struct pollfd f = {.fd = fd, .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
    int k = poll(&f, 1, timeout_ms);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      rc = pt__errorf(err, PT_ETIMEDOUT, "tls: no handshake within %d ms", timeout_ms);
      break;
    }
  }
  fcntl(fd, F_SETFL, flags);
  if (rc != PT_OK) {
    ERR_clear_error();
    SSL_free(t->ssl); /* the socket BIO leaves fd open */
    pt__free(t);
    return rc;
  }
  *out = t;
  return PT_OK;
}

ssize_t pt__stream_read(pt__stream *s, void *p, size_t len, int timeout_ms) {
  for (;;) {
    /* Bytes OpenSSL already holds need no wait on the socket. */
    if (!s->tls || !SSL_has_pending(s->tls->ssl)) {
      struct pollfd f = {.fd = s->fd, .events = POLLIN};
      int r = poll(&f, 1, timeout_ms);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return -1;
      if (r == 0) {
        errno = ETIMEDOUT;
        return -1;
      }
    }
    if (!s->tls) {
      ssize_t n = read(s->fd, p, len);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      return n;
    }
    size_t n = 0;
    int r = SSL_read_ex(s->tls->ssl, p, len, &n);
    if (r == 1) return (ssize_t)n;
    int e = SSL_get_error(s->tls->ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
    if (e == SSL_ERROR_ZERO_RETURN) return 0;
    errno = EIO;
    return -1;
  }
}

/* SSL_write on a socket writes with write(2): a peer that has gone would
 * raise SIGPIPE in a process that does not ignore it. Blocked on this
 * thread for the call, and one raised meanwhile taken off again. */
static int no_sigpipe_write(pt__tls *t, const void *p, size_t len, size_t *w) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigset_t pending;
  sigemptyset(&pending);
  int was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  int ok = SSL_write_ex(t->ssl, p, len, w) == 1;
  if (!ok) {
    ERR_clear_error();
    sigemptyset(&pending);
    if (!was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
      struct timespec zero = {0, 0};
      (void)sigtimedwait(&pipe_set, NULL, &zero);
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return ok;
}

int pt__stream_write(pt__stream *s, const void *p, size_t len) {
  const uint8_t *b = p;
  while (len > 0) {
    if (s->tls) {
      size_t w = 0;
      int ok = no_sigpipe_write(s->tls, b, len, &w);
      if (!ok) return -1;
      b += w;
      len -= w;
      continue;
    }
    ssize_t n = send(s->fd, b, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    b += n;
    len -= (size_t)n;
  }
  return 0;
}

void pt__stream_close(pt__stream *s) {
  if (s->tls) {
    (void)SSL_shutdown(s->tls->ssl);
    ERR_clear_error();
    pt__tls_free(s->tls);
    s->tls = NULL;
  }
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
}
