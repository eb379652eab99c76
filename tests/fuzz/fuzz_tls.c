/* fuzz_tls.c — libFuzzer target for what a TCP peer's first bytes meet when
 * net.tls = on: the server side of a TLS connection (src/net/tls.h) fed the
 * input in pieces (sizes taken from the first byte, as a socket may deliver
 * them), its replies taken, and any plaintext it yields handed to the
 * handshake check as the driver does. Garbage must be an error, never a
 * crash, a hang or a leak. The certificate is made in memory at start (no
 * key is committed).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "net/net.h"
#include "net/tcp.h"
#include "net/tls.h"

static pt__tls_ctx *ctx;

/* A self-signed P-256 certificate and its key, written to two temporary
 * files for pt__tls_ctx_new, which reads files as the session does. */
static int make_ctx(void) {
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *cert = X509_new();
  if (!key || !cert) return -1;
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME *name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
  X509_set_issuer_name(cert, name);
  if (X509_sign(cert, key, EVP_sha256()) == 0) return -1;
  char cpath[] = "/tmp/pt-fuzz-cert-XXXXXX", kpath[] = "/tmp/pt-fuzz-key-XXXXXX";
  int cfd = mkstemp(cpath), kfd = mkstemp(kpath);
  FILE *cf = cfd >= 0 ? fdopen(cfd, "w") : NULL, *kf = kfd >= 0 ? fdopen(kfd, "w") : NULL;
  int ok = cf && kf && PEM_write_X509(cf, cert) && PEM_write_PrivateKey(kf, key, NULL, NULL, 0,
                                                                       NULL, NULL);
  if (cf) fclose(cf);
  if (kf) fclose(kf);
  if (ok && pt__tls_ctx_new(cpath, kpath, cpath, &ctx, NULL) != PT_OK) ok = 0;
  unlink(cpath);
  unlink(kpath);
  X509_free(cert);
  EVP_PKEY_free(key);
  return ok ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ctx && make_ctx() != 0) abort(); /* the harness itself is broken */
  pt__tls *t;
  if (pt__tls_new(ctx, 1, &t, NULL) != PT_OK) return 0;
  pt_buf plain = {0}, out = {0};
  size_t step = size ? (size_t)data[0] % 64 + 1 : 1;
  for (size_t off = 0; off < size; off += step) {
    size_t n = size - off < step ? size - off : step;
    int closed = 0;
    int rc = pt__tls_recv(t, data + off, n, &plain, &closed, NULL);
    (void)pt__tls_take(t, &out, NULL);
    out.len = 0;
    if (rc != PT_OK || closed) break;
  }
  if (plain.len > 0) {
    pt__secret s = {.len = 6};
    memcpy(s.bytes, "secret", 6);
    uint8_t nonce[PT__AUTH_NONCE] = {0}, proof[PT__AUTH_PROOF];
    int done = 0;
    (void)pt__auth_check(&s, nonce, (const uint8_t *)plain.data, plain.len, &done, proof, NULL);
  }
  pt_buf_free(&plain);
  pt_buf_free(&out);
  pt__tls_free(t);
  return 0;
}
