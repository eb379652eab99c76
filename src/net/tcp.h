/* tcp.h — the transport across hosts: addresses ("unix:PATH" or
 * "tcp:HOST:PORT", IPv4 and IPv6), blocking connect and listen helpers, and
 * the per-session secret with the HMAC challenge-response that every TCP
 * connection passes before any frame of it is decoded.
 *
 * Handshake (fixed sizes; nothing else is read before it succeeds):
 *
 *   dir            size  field
 *   server->client  8    magic "PTAUTH01"
 *                  32    server nonce Ns (random)
 *   client->server  8    magic "PTAUTH01"
 *                  32    client nonce Nc (random)
 *                  32    HMAC-SHA256(secret, "protium client" || Ns || Nc)
 *   server->client 32    HMAC-SHA256(secret, "protium server" || Ns || Nc)
 *
 * The client's MAC proves to the server that it holds the secret; the
 * server's proof does the same the other way, so an executor never talks to
 * a driver or block server that merely listens on the right port. Nonces on
 * both sides: a recorded exchange cannot be replayed.
 */
#ifndef PT_NET_TCP_H
#define PT_NET_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define PT__AUTH_MAGIC "PTAUTH01"
#define PT__AUTH_NONCE 32
#define PT__AUTH_MAC 32
#define PT__AUTH_CHALLENGE (8 + PT__AUTH_NONCE)                 /* 40 */
#define PT__AUTH_RESPONSE (8 + PT__AUTH_NONCE + PT__AUTH_MAC)   /* 72 */
#define PT__AUTH_PROOF PT__AUTH_MAC                             /* 32 */
#define PT__SECRET_MAX 512 /* bytes of a secret */

/* The session's secret: raw bytes. */
typedef struct pt__secret {
  uint8_t bytes[PT__SECRET_MAX];
  size_t len; /* 0 = none */
} pt__secret;

/* The driver's secret: the environment variable PROTIUM_SECRET if set and
 * non-empty, else the contents of file (auth.secret_file; a trailing newline
 * dropped) when file is non-empty, else 32 random bytes (*generated = 1).
 * PT_EINVAL for an empty or oversized secret, a file others may read, a
 * file that cannot be read. */
int pt__secret_load(const char *file, pt__secret *out, int *generated, pt_error *err);
/* Hex form for an executor's environment: cap >= 2 * len + 1. */
void pt__secret_hex(const pt__secret *s, char *out, size_t cap);
/* PT_EINVAL when hex is not an even number of hex digits within the limit. */
int pt__secret_from_hex(const char *hex, pt__secret *out, pt_error *err);

/* Server side. Fills challenge (sent first) and keeps its nonce in
 * nonce_s. PT_EIO when no random bytes can be had. */
int pt__auth_challenge(uint8_t challenge[PT__AUTH_CHALLENGE], uint8_t nonce_s[PT__AUTH_NONCE],
                       pt_error *err);
/* Checks the n bytes a client sent so far. *done = 0: fine so far, more
 * needed (the magic is checked as soon as its bytes are here, so a stranger
 * is refused early); *done = 1: the response is whole and right, proof holds
 * what to send back, the response took exactly PT__AUTH_RESPONSE bytes.
 * PT_EFORMAT: not our protocol; PT_EINVAL: wrong secret. No secret (len 0)
 * refuses everything. */
int pt__auth_check(const pt__secret *s, const uint8_t nonce_s[PT__AUTH_NONCE],
                   const uint8_t *resp, size_t n, int *done, uint8_t proof[PT__AUTH_PROOF],
                   pt_error *err);

/* Blocking, on a connected socket: the client's side (read the challenge,
 * answer, check the server's proof), and the server's. Both give up after
 * timeout_ms without progress (PT_ETIMEDOUT). */
int pt__auth_client(int fd, const pt__secret *s, int timeout_ms, pt_error *err);
/* The same over a pt__stream (tls.h): plain, or TLS its thread drives. */
struct pt__stream;
int pt__auth_client_stream(struct pt__stream *st, const pt__secret *s, int timeout_ms,
                           pt_error *err);
int pt__auth_server_stream(struct pt__stream *st, const pt__secret *s, int timeout_ms,
                           pt_error *err);
int pt__auth_server(int fd, const pt__secret *s, int timeout_ms, pt_error *err);

/* Splits "HOST:PORT" or "[V6]:PORT" (the host is copied without brackets;
 * a scope stays on it: "[fe80::1%eth0]:7077" gives "fe80::1%eth0").
 * PT_EINVAL with what is wrong. */
int pt__addr_split(const char *addr, char *host, size_t cap, int *port, pt_error *err);
/* "HOST:PORT", bracketing a host that holds ':' (IPv6). */
void pt__addr_join(const char *host, int port, char *out, size_t cap);

/* Connects to "unix:PATH", a bare absolute PATH, or "tcp:HOST:PORT" (TCP
 * with TCP_NODELAY). On PT_OK the caller owns *fd (blocking, close-on-exec). */
int pt__net_connect(const char *where, int *fd, pt_error *err);
/* The same, a TCP connect giving up after timeout_ms (<= 0: no bound but
 * the kernel's, about two minutes for a host that answers nothing) with
 * PT_EIO "no answer within ...": a peer cut off from the network is told
 * from a slow one no later than the heartbeat timeout says it is lost. */
int pt__net_connect_within(const char *where, int64_t timeout_ms, int *fd, pt_error *err);

/* A listening TCP socket on host ("" = every interface, IPv6 and IPv4) and
 * port (0 = any free one); *bound_port is the port it got. On PT_OK the
 * caller owns *fd. */
int pt__tcp_listen(const char *host, int port, int *fd, int *bound_port, pt_error *err);

/* Room for a numeric host with an IPv6 scope ("fe80::1%eth0"). */
#define PT__HOST_MAX 96

/* The numeric host of an IPv4 or IPv6 socket address (a struct sockaddr),
 * with the scope of a link-local IPv6 address ("fe80::1%eth0"), and its
 * port. PT_EINVAL for another family. */
int pt__sockaddr_host(const void *sa, char *out, size_t cap, int *port);

/* The numeric address and port of a connected socket's peer ("?" when it
 * cannot be had), for log lines. */
void pt__peer_name(int fd, char *out, size_t cap);

#endif /* PT_NET_TCP_H */
