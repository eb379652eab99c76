/* auth.c — the per-session secret and the HMAC-SHA256 challenge-response
 * (byte layout in tcp.h) that authenticates every TCP connection before a
 * frame of it is decoded. OpenSSL's libcrypto does the hashing, the random
 * bytes and the constant-time comparison.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "net/net.h"
#include "net/tcp.h"
#include "net/tls.h"

/* ------------------------------------------------------------------------ */
/* The secret */

int pt__secret_load(const char *file, pt__secret *out, int *generated, pt_error *err) {
  memset(out, 0, sizeof *out);
  *generated = 0;
  const char *env = getenv("PROTIUM_SECRET");
  if (env && *env) {
    size_t n = strlen(env);
    if (n > PT__SECRET_MAX)
      return pt__errorf(err, PT_EINVAL, "PROTIUM_SECRET is %zu bytes, more than %d; use a "
                        "shorter secret", n, PT__SECRET_MAX);
    memcpy(out->bytes, env, n);
    out->len = n;
    return PT_OK;
  }
  if (file && *file) {
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return pt__errorf(err, PT_EINVAL, "auth.secret_file '%s': %s", file, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
      close(fd);
      return pt__errorf(err, PT_EINVAL, "auth.secret_file '%s' may be read by others; "
                        "chmod 600 it", file);
    }
    uint8_t buf[PT__SECRET_MAX + 2];
    size_t got = 0;
    for (;;) {
      ssize_t n = read(fd, buf + got, sizeof buf - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int e = errno;
        close(fd);
        return pt__errorf(err, PT_EINVAL, "auth.secret_file '%s': %s", file, strerror(e));
      }
      if (n == 0 || (got += (size_t)n) == sizeof buf) break;
    }
    close(fd);
    if (got > 0 && buf[got - 1] == '\n') got--;
    if (got > 0 && buf[got - 1] == '\r') got--;
    if (got == 0)
      return pt__errorf(err, PT_EINVAL, "auth.secret_file '%s' is empty; write a secret "
                        "into it", file);
    if (got > PT__SECRET_MAX)
      return pt__errorf(err, PT_EINVAL, "auth.secret_file '%s' holds more than %d bytes; use "
                        "a shorter secret", file, PT__SECRET_MAX);
    memcpy(out->bytes, buf, got);
    out->len = got;
    OPENSSL_cleanse(buf, sizeof buf);
    return PT_OK;
  }
  if (RAND_bytes(out->bytes, 32) != 1)
    return pt__errorf(err, PT_EIO, "cannot generate the session's secret: no random bytes");
  out->len = 32;
  *generated = 1;
  return PT_OK;
}

void pt__secret_hex(const pt__secret *s, char *out, size_t cap) {
  static const char digits[] = "0123456789abcdef";
  size_t k = 0;
  for (size_t i = 0; i < s->len && k + 2 < cap; i++) {
    out[k++] = digits[s->bytes[i] >> 4];
    out[k++] = digits[s->bytes[i] & 15];
  }
  if (cap) out[k] = 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int pt__secret_from_hex(const char *hex, pt__secret *out, pt_error *err) {
  memset(out, 0, sizeof *out);
  size_t n = strlen(hex);
  if (n == 0 || n % 2 || n / 2 > PT__SECRET_MAX)
    return pt__errorf(err, PT_EINVAL, "secret: %zu hex digits (want an even number, 2 to %d)",
                      n, 2 * PT__SECRET_MAX);
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      memset(out, 0, sizeof *out);
      return pt__errorf(err, PT_EINVAL, "secret: not a hex digit at %zu", 2 * i);
    }
    out->bytes[i] = (uint8_t)(hi << 4 | lo);
  }
  out->len = n / 2;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* MACs */

static int mac(const pt__secret *s, const char *who, const uint8_t *ns, const uint8_t *nc,
               uint8_t out[PT__AUTH_MAC]) {
  uint8_t msg[16 + 2 * PT__AUTH_NONCE];
  size_t wl = strlen(who);
  memcpy(msg, who, wl);
  memcpy(msg + wl, ns, PT__AUTH_NONCE);
  memcpy(msg + wl + PT__AUTH_NONCE, nc, PT__AUTH_NONCE);
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), s->bytes, (int)s->len, msg, wl + 2 * PT__AUTH_NONCE, out, &len) ||
      len != PT__AUTH_MAC)
    return PT_EINTERNAL;
  return PT_OK;
}

int pt__auth_challenge(uint8_t challenge[PT__AUTH_CHALLENGE], uint8_t nonce_s[PT__AUTH_NONCE],
                       pt_error *err) {
  if (RAND_bytes(nonce_s, PT__AUTH_NONCE) != 1)
    return pt__errorf(err, PT_EIO, "auth: no random bytes for a challenge");
  memcpy(challenge, PT__AUTH_MAGIC, 8);
  memcpy(challenge + 8, nonce_s, PT__AUTH_NONCE);
  return PT_OK;
}

int pt__auth_check(const pt__secret *s, const uint8_t nonce_s[PT__AUTH_NONCE],
                   const uint8_t *resp, size_t n, int *done, uint8_t proof[PT__AUTH_PROOF],
                   pt_error *err) {
  *done = 0;
  size_t m = n < 8 ? n : 8;
  if (memcmp(resp, PT__AUTH_MAGIC, m) != 0)
    return pt__errorf(err, PT_EFORMAT, "auth: not a protium peer (no handshake)");
  if (n < PT__AUTH_RESPONSE) return PT_OK;
  if (s->len == 0) return pt__errorf(err, PT_EINVAL, "auth: no secret to check against");
  const uint8_t *nc = resp + 8;
  uint8_t want[PT__AUTH_MAC];
  if (mac(s, "protium client", nonce_s, nc, want) != PT_OK)
    return pt__errorf(err, PT_EINTERNAL, "auth: HMAC failed");
  if (CRYPTO_memcmp(want, resp + 8 + PT__AUTH_NONCE, PT__AUTH_MAC) != 0)
    return pt__errorf(err, PT_EINVAL, "auth: wrong secret");
  if (mac(s, "protium server", nonce_s, nc, proof) != PT_OK)
    return pt__errorf(err, PT_EINTERNAL, "auth: HMAC failed");
  *done = 1;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Blocking sides */

static int read_exact(pt__stream *st, uint8_t *p, size_t len, int timeout_ms, pt_error *err) {
  while (len > 0) {
    ssize_t n = pt__stream_read(st, p, len, timeout_ms);
    if (n < 0 && errno == ETIMEDOUT)
      return pt__errorf(err, PT_ETIMEDOUT, "auth: the peer sent nothing for %d ms", timeout_ms);
    if (n < 0) return pt__errorf(err, PT_EIO, "auth: read: %s", strerror(errno));
    if (n == 0) return pt__errorf(err, PT_EIO, "auth: the peer closed the connection "
                                  "(wrong secret?)");
    p += n;
    len -= (size_t)n;
  }
  return PT_OK;
}

static int write_all(pt__stream *st, const void *p, size_t len, pt_error *err) {
  if (!st->tls) return pt__write_all(st->fd, p, len, err);
  if (pt__stream_write(st, p, len) != 0)
    return pt__errorf(err, PT_EIO, "auth: the peer closed the connection");
  return PT_OK;
}

int pt__auth_client_stream(pt__stream *st, const pt__secret *s, int timeout_ms, pt_error *err) {
  uint8_t ch[PT__AUTH_CHALLENGE], resp[PT__AUTH_RESPONSE], proof[PT__AUTH_PROOF],
      want[PT__AUTH_PROOF];
  PT_RETURN_NOT_OK(read_exact(st, ch, sizeof ch, timeout_ms, err));
  if (memcmp(ch, PT__AUTH_MAGIC, 8) != 0)
    return pt__errorf(err, PT_EFORMAT, "auth: the server is not a protium driver or executor");
  memcpy(resp, PT__AUTH_MAGIC, 8);
  if (RAND_bytes(resp + 8, PT__AUTH_NONCE) != 1)
    return pt__errorf(err, PT_EIO, "auth: no random bytes for a nonce");
  if (mac(s, "protium client", ch + 8, resp + 8, resp + 8 + PT__AUTH_NONCE) != PT_OK ||
      mac(s, "protium server", ch + 8, resp + 8, want) != PT_OK)
    return pt__errorf(err, PT_EINTERNAL, "auth: HMAC failed");
  PT_RETURN_NOT_OK(write_all(st, resp, sizeof resp, err));
  PT_RETURN_NOT_OK(read_exact(st, proof, sizeof proof, timeout_ms, err));
  if (CRYPTO_memcmp(proof, want, sizeof want) != 0)
    return pt__errorf(err, PT_EINVAL, "auth: the server does not hold the session's secret");
  return PT_OK;
}

int pt__auth_client(int fd, const pt__secret *s, int timeout_ms, pt_error *err) {
  pt__stream st = {.fd = fd};
  return pt__auth_client_stream(&st, s, timeout_ms, err);
}

int pt__auth_server(int fd, const pt__secret *s, int timeout_ms, pt_error *err) {
  pt__stream st = {.fd = fd};
  return pt__auth_server_stream(&st, s, timeout_ms, err);
}

int pt__auth_server_stream(pt__stream *st, const pt__secret *s, int timeout_ms, pt_error *err) {
  uint8_t ch[PT__AUTH_CHALLENGE], ns[PT__AUTH_NONCE], resp[PT__AUTH_RESPONSE],
      proof[PT__AUTH_PROOF];
  PT_RETURN_NOT_OK(pt__auth_challenge(ch, ns, err));
  PT_RETURN_NOT_OK(write_all(st, ch, sizeof ch, err));
  /* The magic first: a stranger is refused without waiting for 72 bytes. */
  int done = 0;
  PT_RETURN_NOT_OK(read_exact(st, resp, 8, timeout_ms, err));
  PT_RETURN_NOT_OK(pt__auth_check(s, ns, resp, 8, &done, proof, err));
  PT_RETURN_NOT_OK(read_exact(st, resp + 8, sizeof resp - 8, timeout_ms, err));
  PT_RETURN_NOT_OK(pt__auth_check(s, ns, resp, sizeof resp, &done, proof, err));
  return write_all(st, proof, sizeof proof, err);
}
