/* test_net_tls.c — net.tls = on: jobs and shuffles whose every connection is
 * TLS under the HMAC handshake, with exact results; peers the driver and the
 * block servers must refuse and log without a crash (a certificate from
 * another CA, plain TCP, random bytes, an oversized frame after a valid
 * handshake); configuration errors. Certificates are made at test time with
 * the openssl command line tool, in a temporary directory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec/blocks.h"
#include "net/net.h"
#include "net/tcp.h"
#include "net/tls.h"
#include "protium.h"
#include "test_net_util.h"

static char dir[] = "/tmp/pt-tls-XXXXXX";
static char ca[300], cert[300], key[300];          /* the cluster's */
static char o_ca[300], o_cert[300], o_key[300];    /* another CA's */

static int run(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  return system(cmd);
}

/* A CA (name.ca.pem) and a certificate it signed (name.pem, name.key). */
static void make_pki(const char *name) {
  const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  assert_int_equal(run("cd %s && openssl req -x509 %s -keyout %s.ca.key -out %s.ca.pem -days 2 "
                       "-subj /CN=%s-ca 2>/dev/null",
                       dir, ec, name, name, name), 0);
  assert_int_equal(run("cd %s && openssl req %s -keyout %s.key -out %s.csr -subj /CN=%s-node "
                       "2>/dev/null && openssl x509 -req -in %s.csr -CA %s.ca.pem -CAkey "
                       "%s.ca.key -CAcreateserial -out %s.pem -days 2 2>/dev/null",
                       dir, ec, name, name, name, name, name, name, name), 0);
}

static int setup(void **state) {
  (void)state;
  if (system("openssl version >/dev/null 2>&1") != 0) {
    fprintf(stderr, "the openssl command line tool is missing: run scripts/setup.sh\n");
    return -1;
  }
  assert_non_null(mkdtemp(dir));
  make_pki("cluster");
  make_pki("other");
  snprintf(ca, sizeof ca, "%s/cluster.ca.pem", dir);
  snprintf(cert, sizeof cert, "%s/cluster.pem", dir);
  snprintf(key, sizeof key, "%s/cluster.key", dir);
  snprintf(o_ca, sizeof o_ca, "%s/other.ca.pem", dir);
  snprintf(o_cert, sizeof o_cert, "%s/other.pem", dir);
  snprintf(o_key, sizeof o_key, "%s/other.key", dir);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  run("rm -rf %s", dir);
  return 0;
}

static pt_session *open_tls(int port, int n, const char *fetch) {
  pt_conf *conf;
  char ps[16], master[32];
  snprintf(ps, sizeof ps, "%d", port);
  snprintf(master, sizeof master, "local[%d]", n);
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "net.transport", "tcp", &err));
  CHECK(pt_conf_set(conf, "driver.host", "127.0.0.1", &err));
  CHECK(pt_conf_set(conf, "driver.port", ps, &err));
  CHECK(pt_conf_set(conf, "net.tls", "on", &err));
  CHECK(pt_conf_set(conf, "net.tls.cert", cert, &err));
  CHECK(pt_conf_set(conf, "net.tls.key", key, &err));
  CHECK(pt_conf_set(conf, "net.tls.ca", ca, &err));
  CHECK(pt_conf_set(conf, "range.batch_rows", "5000", &err));
  if (fetch) CHECK(pt_conf_set(conf, "shuffle.fetch", fetch, &err));
  pt_session *s;
  CHECK(pt_session_open(master, conf, &s, &err));
  pt_conf_free(conf);
  return s;
}

/* range -> shuffle into 4 -> shuffle into 3 -> collect: exact. */
static void check_shuffle_job(pt_session *s, int64_t n) {
  pt_dataset *r, *sh, *back;
  CHECK(pt_range(s, 0, n, 6, &r, &err));
  CHECK(pt_repartition(r, 4, &sh, &err));
  CHECK(pt_repartition(sh, 3, &back, &err));
  int64_t rows, sum;
  pt_test_collect_sum(back, &rows, &sum);
  assert_int_equal(rows, n);
  assert_int_equal(sum, n * (n - 1) / 2);
  pt_dataset_free(back);
  pt_dataset_free(sh);
  pt_dataset_free(r);
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sl), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
  close(fd);
  return ntohs(a.sin_port);
}

static void test_job_over_tls(void **state) {
  (void)state;
  pt_session *s = open_tls(0, 2, NULL);
  check_shuffle_job(s, 200000);
  pt_dataset *r;
  int64_t n = 0;
  CHECK(pt_range(s, 0, 12345, 8, &r, &err));
  CHECK(pt_count(r, &n, &err));
  assert_int_equal(n, 12345);
  pt_dataset_free(r);
  pt_session_close(s);
}

/* shuffle.fetch = remote: every block another executor wrote comes through
 * its block server, over TLS. */
static void test_remote_shuffle_over_tls(void **state) {
  (void)state;
  pt_session *s = open_tls(0, 3, "remote");
  check_shuffle_job(s, 300000);
  pt_session_close(s);
}

static void test_refused_peers(void **state) {
  (void)state;
  setenv("PROTIUM_SECRET", "the right secret", 1);
  pt__secret right = {.len = strlen("the right secret")};
  memcpy(right.bytes, "the right secret", right.len);
  int port = free_port();
  char log_path[] = "/tmp/pt-tls-log-XXXXXX";
  int log_fd = mkstemp(log_path);
  assert_true(log_fd >= 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(log_fd, 2);
  pt_session *s = open_tls(port, 2, NULL);
  pt_error e = {0};
  int fd, app;

  /* A client whose certificate another CA signed: the driver refuses it
   * (TLS 1.3 lets the client finish first: it learns at its next read). */
  pt__tls_ctx *other;
  CHECK(pt__tls_ctx_new(o_cert, o_key, ca, &other, &err));
  fd = pt_test_connect_local(port);
  if (pt__tls_wrap(other, fd, 0, 10000, &app, &e) == PT_OK) {
    assert_int_not_equal(pt__auth_client(app, &right, 10000, &e), PT_OK);
    close(app);
  } else {
    close(fd);
  }
  pt__tls_ctx_free(other);

  /* A client that trusts another CA: it refuses the driver. */
  CHECK(pt__tls_ctx_new(o_cert, o_key, o_ca, &other, &err));
  fd = pt_test_connect_local(port);
  assert_int_equal(pt__tls_wrap(other, fd, 0, 10000, &app, &e), PT_EFORMAT);
  assert_non_null(strstr(e.message, "tls: certificate refused"));
  close(fd);
  pt__tls_ctx_free(other);

  /* Plain TCP: no challenge comes (the driver waits for TLS), and what the
   * client then says is not TLS. */
  fd = pt_test_connect_local(port);
  assert_int_equal(pt__auth_client(fd, &right, 500, &e), PT_ETIMEDOUT);
  uint8_t resp[PT__AUTH_RESPONSE];
  memset(resp, 0, sizeof resp);
  memcpy(resp, PT__AUTH_MAGIC, 8);
  CHECK(pt__write_all(fd, resp, sizeof resp, &err));
  assert_true(pt_test_closed_by_peer(fd));
  close(fd);

  /* Random bytes. */
  fd = pt_test_connect_local(port);
  uint8_t junk[300];
  srand(11);
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)rand();
  CHECK(pt__write_all(fd, junk, sizeof junk, &err));
  assert_true(pt_test_closed_by_peer(fd));
  close(fd);

  /* The right certificate, the wrong secret. */
  pt__tls_ctx *good;
  CHECK(pt__tls_ctx_new(cert, key, ca, &good, &err));
  fd = pt_test_connect_local(port);
  CHECK(pt__tls_wrap(good, fd, 0, 10000, &app, &err));
  pt__secret wrong = {.len = 5};
  memcpy(wrong.bytes, "wrong", 5);
  assert_int_not_equal(pt__auth_client(app, &wrong, 10000, &e), PT_OK);
  close(app);

  /* Everything right, then a frame over the size limit: closed. */
  fd = pt_test_connect_local(port);
  CHECK(pt__tls_wrap(good, fd, 0, 10000, &app, &err));
  CHECK(pt__auth_client(app, &right, 10000, &err));
  uint8_t big[PT__FRAME_HEADER] = {0};
  pt__store_u32(big, PT__MAX_FRAME + 1);
  big[4] = PT__PROTOCOL_VERSION;
  big[6] = PT__MSG_HELLO;
  CHECK(pt__write_all(app, big, sizeof big, &err));
  assert_true(pt_test_closed_by_peer(app));
  close(app);
  pt__tls_ctx_free(good);

  /* The session did not notice. */
  check_shuffle_job(s, 100000);
  pt_session_close(s);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  unsetenv("PROTIUM_SECRET");

  char log[16384];
  ssize_t got = pread(log_fd, log, sizeof log - 1, 0);
  close(log_fd);
  unlink(log_path);
  assert_true(got > 0);
  log[got] = 0;
  int refused = 0;
  for (const char *p = log; (p = strstr(p, "protium: refused a connection from 127.0.0.1:")); p++)
    refused++;
  /* other CA's client, plain, random, wrong secret (the client that
   * refused the driver sent an alert: refused too) */
  if (refused != 5) fail_msg("want 5 refusals in the log, got %d:\n%s", refused, log);
  assert_non_null(strstr(log, "tls: certificate refused: "));
  assert_non_null(strstr(log, "auth: wrong secret"));
}

/* A block server with TLS: exact segments for a client with the cluster's
 * certificate; plain TCP and another CA's certificate are refused, and it
 * goes on serving. */
static void test_block_server_tls(void **state) {
  (void)state;
  char bdir[400];
  snprintf(bdir, sizeof bdir, "%s/blocks", dir);
  assert_int_equal(run("mkdir -p %s", bdir), 0);
  char path[500];
  snprintf(path, sizeof path, "%s/shuffle-1-0-0.arrows", bdir);
  size_t size = 3 << 20;
  uint8_t *data = malloc(size), *got = malloc(size);
  for (size_t i = 0; i < size; i++) data[i] = (uint8_t)(i * 131 + 17);
  FILE *f = fopen(path, "wb");
  assert_int_equal(fwrite(data, 1, size, f), size);
  fclose(f);
  pt__secret secret = {.len = 4};
  memcpy(secret.bytes, "blks", 4);
  pt__tls_ctx *good, *other;
  CHECK(pt__tls_ctx_new(cert, key, ca, &good, &err));
  CHECK(pt__tls_ctx_new(o_cert, o_key, ca, &other, &err));
  pt__block_server *srv;
  CHECK(pt__block_server_start(bdir, &secret, good, "127.0.0.1", &srv, &err));
  const char *addr = pt__block_server_address(srv);
  int unreachable = 0;
  CHECK(pt__block_fetch(addr, &secret, good, 5000, path, 1000, 2000000, got, &unreachable, &err));
  assert_memory_equal(got, data + 1000, 2000000);
  pt_error e = {0};
  assert_int_not_equal(pt__block_fetch(addr, &secret, NULL, 5000, path, 0, 10, got, &unreachable, &e),
                       PT_OK);
  assert_int_equal(unreachable, 1);
  assert_int_not_equal(pt__block_fetch(addr, &secret, other, 5000, path, 0, 10, got, &unreachable, &e),
                       PT_OK);
  assert_int_equal(unreachable, 1);
  /* Refusals are still refusals inside TLS. */
  assert_int_equal(pt__block_fetch(addr, &secret, good, 5000, "/etc/passwd", 0, 10, got, &unreachable,
                                   &e), PT_EIO);
  assert_non_null(strstr(e.message, "is not a shuffle or result file of this executor"));
  CHECK(pt__block_fetch(addr, &secret, good, 5000, path, 0, size, got, &unreachable, &err));
  assert_memory_equal(got, data, size);
  pt__tls_ctx_free(good);
  pt__tls_ctx_free(other);
  unlink(path);
  free(data);
  free(got);
}

static void expect_open_error(const char *k1, const char *v1, const char *k2, const char *v2,
                              const char *want) {
  pt_conf *conf;
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "net.tls", "on", &err));
  CHECK(pt_conf_set(conf, "net.tls.cert", cert, &err));
  CHECK(pt_conf_set(conf, "net.tls.key", key, &err));
  CHECK(pt_conf_set(conf, "net.tls.ca", ca, &err));
  CHECK(pt_conf_set(conf, k1, v1, &err));
  if (k2) CHECK(pt_conf_set(conf, k2, v2, &err));
  pt_session *s = NULL;
  pt_error e = {0};
  assert_int_equal(pt_session_open("local[1]", conf, &s, &e), PT_EINVAL);
  assert_null(s);
  if (!strstr(e.message, want)) fail_msg("want '%s' in '%s'", want, e.message);
  pt_conf_free(conf);
}

static void test_conf_errors(void **state) {
  (void)state;
  if (getenv("PROTIUM_NET_TRANSPORT") == NULL)
    expect_open_error("net.transport", "unix", NULL, NULL, "net.tls = on needs net.transport = tcp");
  expect_open_error("net.transport", "tcp", "net.tls.cert", "",
                    "net.tls = on needs net.tls.cert; set it to a PEM file");
  expect_open_error("net.transport", "tcp", "net.tls.key", "/nonexistent/key.pem",
                    "net.tls.key '/nonexistent/key.pem' cannot be used");
  expect_open_error("net.transport", "tcp", "net.tls.key", o_key, "does not belong to net.tls.cert");
  expect_open_error("net.transport", "tcp", "net.tls.ca", "/etc/hostname",
                    "net.tls.ca '/etc/hostname' cannot be used");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conf_errors),
      cmocka_unit_test(test_job_over_tls),
      cmocka_unit_test(test_remote_shuffle_over_tls),
      cmocka_unit_test(test_block_server_tls),
      cmocka_unit_test(test_refused_peers),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
