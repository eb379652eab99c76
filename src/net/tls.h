/* tls.h — TLS under the HMAC handshake (net.tls = on): certificates checked
 * against the cluster's CA in both directions, then the handshake of tcp.h
 * and the frames as before, all inside the encrypted stream. OpenSSL does
 * the protocol over memory buffers, so that the driver's libuv loop and the
 * executor's blocking code drive it alike: bytes from the network go in,
 * bytes for the network come out, plaintext in between.
 *
 *   network --recv--> [pt__tls] --plain--> frames (tcp.h handshake first)
 *   network <--take-- [pt__tls] <--send--- frames
 */
#ifndef PT_NET_TLS_H
#define PT_NET_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "core/core.h"

/* The certificate and key this process shows, and the CA its peers' must
 * come from. Shared by every connection of the process; read-only once made. */
typedef struct pt__tls_ctx pt__tls_ctx;

/* Reads cert (PEM, with its chain), key (PEM) and ca (PEM file of trusted
 * CAs). PT_EINVAL naming the file and what is wrong with it. On PT_OK the
 * caller owns *out (pt__tls_ctx_free). */
int pt__tls_ctx_new(const char *cert, const char *key, const char *ca, pt__tls_ctx **out,
                    pt_error *err);
void pt__tls_ctx_free(pt__tls_ctx *c);

/* One connection's TLS state over memory buffers. */
typedef struct pt__tls pt__tls;

/* server: 1 to accept, 0 to connect. On PT_OK the caller owns *out
 * (pt__tls_free); ctx is borrowed and must outlive it. */
int pt__tls_new(pt__tls_ctx *ctx, int server, pt__tls **out, pt_error *err);
void pt__tls_free(pt__tls *t);

/* 1 once the handshake has completed (certificates verified). */
int pt__tls_ready(const pt__tls *t);

/* Takes len bytes received from the network (0 to start a client's
 * handshake), advances the handshake and appends whatever plaintext they
 * complete to plain. *closed = 1 when the peer ended the stream cleanly.
 * PT_EFORMAT: not TLS, a certificate refused (by us or, through its alert,
 * by the peer), or a broken record; the message says which. PT_ENOMEM.
 * Afterwards, call pt__tls_take: handshake replies and alerts wait there. */
int pt__tls_recv(pt__tls *t, const void *cipher, size_t len, pt_buf *plain, int *closed,
                 pt_error *err);

/* Encrypts len bytes (only once ready: PT_ESTATE before). The records wait
 * for pt__tls_take. */
int pt__tls_send(pt__tls *t, const void *plain, size_t len, pt_error *err);

/* Appends the bytes waiting for the network to out (none: out unchanged). */
int pt__tls_take(pt__tls *t, pt_buf *out, pt_error *err);

/* Blocking sockets (executors, block servers, their clients): runs the
 * handshake on the connected socket fd (giving up after timeout_ms without
 * progress, PT_ETIMEDOUT), then hands the stream to a thread of its own that
 * encrypts and decrypts between fd and *app_fd, a local socket the caller
 * reads and writes as if it were fd. On PT_OK the thread owns fd and the
 * caller owns *app_fd (closing it ends the connection, after what was
 * written has gone out); on failure the caller still owns fd. */
int pt__tls_wrap(pt__tls_ctx *ctx, int fd, int server, int timeout_ms, int *app_fd,
                 pt_error *err);

/* A blocking connection that one thread reads and writes: fd plain, or
 * TLS on fd driven by the calling thread itself (no pump, no local socket:
 * bulk data is encrypted straight from the sender's memory and decrypted
 * straight into the reader's buffer). Block servers and their clients use
 * it. */
typedef struct pt__stream {
  int fd;
  pt__tls *tls; /* NULL: plain */
} pt__stream;

/* Runs the handshake on the connected socket fd (server: 1 to accept, 0 to
 * connect; PT_ETIMEDOUT after timeout_ms without progress); errors as
 * pt__tls_recv's. On PT_OK the caller owns *out (with fd in a pt__stream;
 * pt__stream_close), fd stays the caller's either way until then. */
int pt__tls_direct(pt__tls_ctx *ctx, int fd, int server, int timeout_ms, pt__tls **out,
                   pt_error *err);

/* Like read(2), waiting at most timeout_ms for the first byte: > 0 bytes,
 * 0 at the peer's end, -1 for an error or the timeout (errno ETIMEDOUT). */
ssize_t pt__stream_read(pt__stream *s, void *p, size_t len, int timeout_ms);
/* Writes all of p (no SIGPIPE): 0, or -1. */
int pt__stream_write(pt__stream *s, const void *p, size_t len);
/* Ends TLS (close_notify, without waiting for the peer's) and closes fd. */
void pt__stream_close(pt__stream *s);

#endif /* PT_NET_TLS_H */
