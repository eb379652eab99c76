/* test_net_tcp.c — the control plane over TCP: sessions whose executors
 * reach the driver over IPv4 and IPv6 loopback (checked in /proc: their
 * socket is a TCP one to the driver's port), the HMAC handshake, and peers
 * the driver must refuse without a crash (random bytes, no secret, a wrong
 * secret, a right secret naming no executor of ours) while jobs go on;
 * the block server (segments over TCP, refusals) and shuffles whose every
 * block is fetched from another executor's block server.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec/blocks.h"
#include "exec/exec_int.h"
#include "net/net.h"
#include "net/tcp.h"
#include "protium.h"
#include "test_net_util.h"

/* A port nothing listens on now (the kernel's pick, released). */
static int free_port(int family) {
  int fd = socket(family, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sl;
  if (family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    sl = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sl = sizeof *a;
  }
  assert_int_equal(bind(fd, (struct sockaddr *)&ss, sl), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
  int port = family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  close(fd);
  return port;
}

static pt_session *open_tcp(const char *host, int port, int n) {
  pt_conf *conf;
  char ps[16], master[32];
  snprintf(ps, sizeof ps, "%d", port);
  snprintf(master, sizeof master, "local[%d]", n);
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "net.transport", "tcp", &err));
  CHECK(pt_conf_set(conf, "driver.host", host, &err));
  CHECK(pt_conf_set(conf, "driver.port", ps, &err));
  CHECK(pt_conf_set(conf, "range.batch_rows", "1000", &err));
  pt_session *s;
  CHECK(pt_session_open(master, conf, &s, &err));
  pt_conf_free(conf);
  return s;
}

/* range -> shuffle into 5 -> count: exact, through every executor. */
static void check_job(pt_session *s) {
  pt_dataset *r, *sh;
  CHECK(pt_range(s, 0, 100000, 4, &r, &err));
  CHECK(pt_repartition(r, 5, &sh, &err));
  int64_t n = 0;
  CHECK(pt_count(sh, &n, &err));
  assert_int_equal(n, 100000);
  pt_dataset_free(sh);
  pt_dataset_free(r);
}

/* 1 when process pid holds a TCP socket whose remote port is port. */
static int has_tcp_to(int64_t pid, int port) {
  char path[128];
  snprintf(path, sizeof path, "/proc/%lld/fd", (long long)pid);
  DIR *dir = opendir(path);
  if (!dir) return 0;
  unsigned long inodes[256];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dir)) && n < 256) {
    char link[512], target[128];
    snprintf(link, sizeof link, "%s/%s", path, e->d_name);
    ssize_t l = readlink(link, target, sizeof target - 1);
    if (l <= 0) continue;
    target[l] = 0;
    if (sscanf(target, "socket:[%lu]", &inodes[n]) == 1) n++;
  }
  closedir(dir);
  const char *tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
  int found = 0;
  for (int t = 0; t < 2 && !found; t++) {
    FILE *f = fopen(tables[t], "r");
    if (!f) continue;
    char line[512];
    while (fgets(line, sizeof line, f) && !found) {
      char local[64], remote[64];
      unsigned long inode;
      if (sscanf(line, " %*d: %63s %63s %*x %*s %*s %*s %*d %*d %lu", local, remote, &inode) != 3)
        continue;
      const char *colon = strrchr(remote, ':');
      if (!colon || (int)strtol(colon + 1, NULL, 16) != port) continue;
      for (int i = 0; i < n; i++) found |= inodes[i] == inode;
    }
    fclose(f);
  }
  return found;
}

static void check_executors_on_tcp(pt_session *s, int port) {
  pt_executor_info infos[8];
  int64_t n = 0;
  CHECK(pt_session_executors(s, infos, 8, &n, &err));
  assert_true(n >= 1);
  for (int64_t i = 0; i < n && i < 8; i++) assert_true(has_tcp_to(infos[i].pid, port));
}

static void test_ipv4(void **state) {
  int port = free_port(AF_INET);
  pt_session *s = open_tcp("127.0.0.1", port, 2);
  check_executors_on_tcp(s, port);
  check_job(s);
  pt_session_close(s);
}

static void test_ipv6(void **state) {
  int probe = socket(AF_INET6, SOCK_STREAM, 0);
  if (probe < 0) skip();
  close(probe);
  int port = free_port(AF_INET6);
  pt_session *s = open_tcp("::1", port, 2);
  check_executors_on_tcp(s, port);
  check_job(s);
  pt_session_close(s);
}

/* Any free port (driver.port 0) works too, and the secret never shows on
 * an executor's command line. */
static void test_any_port_secret_not_in_argv(void **state) {
  setenv("PROTIUM_SECRET", "a-secret-no-one-may-see", 1);
  pt_session *s = open_tcp("127.0.0.1", 0, 1);
  pt_executor_info info;
  int64_t n = 0;
  CHECK(pt_session_executors(s, &info, 1, &n, &err));
  assert_int_equal(n, 1);
  char path[64], cmd[4096];
  snprintf(path, sizeof path, "/proc/%lld/cmdline", (long long)info.pid);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t got = fread(cmd, 1, sizeof cmd - 1, f);
  fclose(f);
  for (size_t i = 0; i < got; i++)
    if (cmd[i] == 0) cmd[i] = ' ';
  cmd[got] = 0;
  assert_null(strstr(cmd, "a-secret"));
  assert_null(strstr(cmd, "SECRET"));
  check_job(s);
  pt_session_close(s);
  unsetenv("PROTIUM_SECRET");
}

static void test_refused_peers(void **state) {
  setenv("PROTIUM_SECRET", "the right secret", 1);
  int port = free_port(AF_INET);
  /* The driver's log goes to a file, to be read back. */
  char log_path[] = "/tmp/pt-tcp-log-XXXXXX";
  int log_fd = mkstemp(log_path);
  assert_true(log_fd >= 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(log_fd, 2);
  pt_session *s = open_tcp("127.0.0.1", port, 2);

  /* Random bytes. */
  int fd = pt_test_connect_local(port);
  uint8_t junk[300];
  srand(7);
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)rand();
  CHECK(pt__write_all(fd, junk, sizeof junk, &err));
  assert_true(pt_test_closed_by_peer(fd));
  close(fd);

  /* No secret: a client that skips the handshake and says Hello. */
  fd = pt_test_connect_local(port);
  pt_buf hello = {0};
  Protium__Hello h;
  protium__hello__init(&h);
  h.protocol_version = PT__PROTOCOL_VERSION;
  h.executor_id = 1;
  h.host = "";
  h.local_dir = "";
  CHECK(pt__frame_append(&hello, PT__MSG_HELLO, &h.base, &err));
  CHECK(pt__write_all(fd, hello.data, hello.len, &err));
  assert_true(pt_test_closed_by_peer(fd));
  close(fd);

  /* A wrong secret: the client learns it was refused. */
  fd = pt_test_connect_local(port);
  pt__secret wrong = {.len = 5};
  memcpy(wrong.bytes, "wrong", 5);
  pt_error e = {0};
  assert_int_not_equal(pt__auth_client(fd, &wrong, 10000, &e), PT_OK);
  close(fd);

  /* The right secret, then a Hello for an executor the driver never
   * started: authenticated, yet a stranger. */
  fd = pt_test_connect_local(port);
  pt__secret right = {.len = strlen("the right secret")};
  memcpy(right.bytes, "the right secret", right.len);
  CHECK(pt__auth_client(fd, &right, 10000, &err));
  h.executor_id = 999;
  hello.len = 0;
  CHECK(pt__frame_append(&hello, PT__MSG_HELLO, &h.base, &err));
  CHECK(pt__write_all(fd, hello.data, hello.len, &err));
  assert_true(pt_test_closed_by_peer(fd));
  close(fd);
  pt_buf_free(&hello);

  /* A peer that connects and says nothing is closed after 10 s. */
  fd = pt_test_connect_local(port);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  uint8_t ch[PT__AUTH_CHALLENGE + 1];
  assert_int_equal(poll(&p, 1, 10000), 1);
  assert_int_equal(read(fd, ch, sizeof ch), PT__AUTH_CHALLENGE); /* the challenge, then */
  assert_true(pt_test_closed_by_peer(fd)); /* nothing until the deadline */
  close(fd);

  /* The session did not notice. */
  check_job(s);
  pt_session_close(s);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  unsetenv("PROTIUM_SECRET");

  char log[8192];
  ssize_t got = pread(log_fd, log, sizeof log - 1, 0);
  close(log_fd);
  unlink(log_path);
  assert_true(got > 0);
  log[got] = 0;
  int refused = 0;
  for (const char *p = log; (p = strstr(p, "protium: refused a connection from 127.0.0.1:"));
       p++)
    refused++;
  if (refused != 4) fail_msg("want 4 refusals in the log, got %d:\n%s", refused, log);
  assert_non_null(strstr(log, "auth: no handshake within 10 s"));
  assert_non_null(strstr(log, "auth: not a protium peer (no handshake)"));
  assert_non_null(strstr(log, "auth: wrong secret"));
}

static void test_secret_file(void **state) {
  char path[] = "/tmp/pt-secret-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "from a file\n", 12), 12);
  close(fd);
  pt_conf *conf;
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "net.transport", "tcp", &err));
  CHECK(pt_conf_set(conf, "auth.secret_file", path, &err));
  chmod(path, 0644);
  pt_session *s = NULL;
  pt_error e = {0};
  assert_int_equal(pt_session_open("local[1]", conf, &s, &e), PT_EINVAL);
  char want[256];
  snprintf(want, sizeof want, "auth.secret_file '%s' may be read by others; chmod 600 it", path);
  assert_string_equal(e.message, want);
  chmod(path, 0600);
  CHECK(pt_session_open("local[1]", conf, &s, &err));
  check_job(s);
  pt_session_close(s);
  pt_conf_free(conf);
  unlink(path);
}

static void test_bad_addresses(void **state) {
  pt_conf *conf;
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "net.transport", "tcp", &err));
  CHECK(pt_conf_set(conf, "driver.port", "70000", &err));
  pt_session *s = NULL;
  pt_error e = {0};
  assert_int_equal(pt_session_open("local[1]", conf, &s, &e), PT_EINVAL);
  assert_string_equal(e.message, "session: driver.port 70000 is not a port; use 0 to 65535 "
                                 "(0 = any free port)");
  CHECK(pt_conf_set(conf, "driver.port", "0", &err));
  CHECK(pt_conf_set(conf, "driver.host", "no-such-host.invalid", &err));
  assert_int_not_equal(pt_session_open("local[1]", conf, &s, &e), PT_OK);
  assert_non_null(strstr(e.message, "cannot resolve driver.host 'no-such-host.invalid'"));
  pt_conf_free(conf);
}

/* The pieces, without processes. */
static void test_handshake_units(void **state) {
  char host[64];
  int port;
  CHECK(pt__addr_split("[::1]:80", host, sizeof host, &port, &err));
  assert_string_equal(host, "::1");
  assert_int_equal(port, 80);
  CHECK(pt__addr_split("10.0.0.2:7077", host, sizeof host, &port, &err));
  assert_string_equal(host, "10.0.0.2");
  pt_error e = {0};
  assert_int_equal(pt__addr_split("::1:80", host, sizeof host, &port, &e), PT_EINVAL);
  assert_string_equal(e.message, "address '::1:80': write an IPv6 host in brackets, [::1]:PORT");
  assert_int_equal(pt__addr_split("h:99999", host, sizeof host, &port, &e), PT_EINVAL);
  char joined[64];
  pt__addr_join("::1", 5, joined, sizeof joined);
  assert_string_equal(joined, "[::1]:5");
  /* Link-local IPv6 keeps its scope both ways, and a socket address
   * with a scope id prints it. */
  CHECK(pt__addr_split("[fe80::1%lo]:7077", host, sizeof host, &port, &err));
  assert_string_equal(host, "fe80::1%lo");
  assert_int_equal(port, 7077);
  pt__addr_join("fe80::2%eth0", 9, joined, sizeof joined);
  assert_string_equal(joined, "[fe80::2%eth0]:9");
  struct sockaddr_in6 ll = {.sin6_family = AF_INET6, .sin6_port = htons(77),
                            .sin6_scope_id = 1 /* lo */};
  assert_int_equal(inet_pton(AF_INET6, "fe80::5", &ll.sin6_addr), 1);
  char name[PT__HOST_MAX];
  int p = 0;
  assert_int_equal(pt__sockaddr_host(&ll, name, sizeof name, &p), PT_OK);
  assert_string_equal(name, "fe80::5%lo");
  assert_int_equal(p, 77);
  int fd = -1;
  assert_int_equal(pt__net_connect("tcp:[fe80::1%no-such-if]:80", &fd, &e), PT_EIO);
  assert_non_null(strstr(e.message, "cannot resolve 'fe80::1%no-such-if'"));

  pt__secret s = {.len = 3}, back;
  memcpy(s.bytes, "\x00\xff\x10", 3);
  char hex[16];
  pt__secret_hex(&s, hex, sizeof hex);
  assert_string_equal(hex, "00ff10");
  CHECK(pt__secret_from_hex(hex, &back, &err));
  assert_int_equal(back.len, 3);
  assert_memory_equal(back.bytes, s.bytes, 3);
  assert_int_equal(pt__secret_from_hex("0g", &back, &e), PT_EINVAL);

  /* A server with no secret refuses even a well-formed response. */
  uint8_t ch[PT__AUTH_CHALLENGE], ns[PT__AUTH_NONCE], resp[PT__AUTH_RESPONSE] = {0},
      proof[PT__AUTH_PROOF];
  CHECK(pt__auth_challenge(ch, ns, &err));
  memcpy(resp, PT__AUTH_MAGIC, 8);
  pt__secret none = {.len = 0};
  int done = 0;
  assert_int_equal(pt__auth_check(&none, ns, resp, sizeof resp, &done, proof, &e), PT_EINVAL);
  assert_int_equal(done, 0);
  /* The magic alone is fine so far; one wrong byte of it is not. */
  CHECK(pt__auth_check(&s, ns, resp, 5, &done, proof, &err));
  assert_int_equal(done, 0);
  resp[3] ^= 1;
  assert_int_equal(pt__auth_check(&s, ns, resp, 5, &done, proof, &e), PT_EFORMAT);

  /* Both blocking sides over a socket pair agree; a wrong secret fails. */
  for (int wrong = 0; wrong < 2; wrong++) {
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pid_t pid = fork();
    if (pid == 0) {
      close(sv[0]);
      pt__secret c = s;
      if (wrong) c.bytes[0] ^= 1;
      int rc = pt__auth_client(sv[1], &c, 5000, NULL);
      _exit(rc == PT_OK ? 0 : 1);
    }
    close(sv[1]);
    pt_error se = {0};
    int rc = pt__auth_server(sv[0], &s, 5000, &se);
    close(sv[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (wrong) {
      assert_int_equal(rc, PT_EINVAL);
      assert_string_equal(se.message, "auth: wrong secret");
      assert_int_not_equal(WEXITSTATUS(status), 0);
    } else {
      assert_int_equal(rc, PT_OK);
      assert_int_equal(WEXITSTATUS(status), 0);
    }
  }
}


/* shuffle.fetch = remote: every block another executor wrote comes over
 * TCP from its block server; results exact. */
static void test_remote_shuffle(void **state) {
  pt_conf *conf;
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "net.transport", "tcp", &err));
  CHECK(pt_conf_set(conf, "shuffle.fetch", "remote", &err));
  CHECK(pt_conf_set(conf, "range.batch_rows", "5000", &err));
  pt_session *s;
  CHECK(pt_session_open("local[3]", conf, &s, &err));
  pt_conf_free(conf);
  pt_dataset *r, *sh, *back;
  const int64_t n = 300000;
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
  pt_session_close(s);
}

/* A host that answers nothing (cut off, or down without a reset): a
 * listener whose accept queue is full drops every new SYN, as a cut-off
 * host's silence would. A bounded connect, and a block fetch with a
 * connect timeout, give up with a clear error instead of waiting out the
 * kernel's two minutes of SYN retries; the fetch says the peer is gone. */
static void test_connect_unanswered(void **state) {
  (void)state;
  int lfd, port;
  CHECK(pt__tcp_listen("127.0.0.1", 0, &lfd, &port, &err));
  assert_int_equal(listen(lfd, 0), 0); /* one queued connection fills it */
  char where[80], addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  snprintf(where, sizeof where, "tcp:%s", addr);
  int first;
  CHECK(pt__net_connect_within(where, 5000, &first, &err));
  pt_error e = {0};
  int fd = 123;
  assert_int_equal(pt__net_connect_within(where, 300, &fd, &e), PT_EIO);
  assert_int_equal(fd, -1);
  assert_non_null(strstr(e.message, "no answer within 300 ms"));
  assert_non_null(strstr(e.message, addr));
  pt__secret secret = {.len = 4};
  memcpy(secret.bytes, "blks", 4);
  uint8_t got[16];
  int unreachable = 0;
  e = (pt_error){0};
  assert_int_equal(pt__block_fetch(addr, &secret, NULL, 300, "/tmp/x/shuffle-1-0-0.arrows", 0,
                                   sizeof got, got, &unreachable, &e), PT_EIO);
  assert_int_equal(unreachable, 1);
  assert_non_null(strstr(e.message, "no answer within 300 ms"));
  /* Once the queue has room, the same bounded connect gets in. */
  int a = accept(lfd, NULL, NULL);
  assert_true(a >= 0);
  int second;
  CHECK(pt__net_connect_within(where, 10000, &second, &err));
  /* Blocking again, as pt__net_connect's sockets are. */
  assert_int_equal(fcntl(second, F_GETFL) & O_NONBLOCK, 0);
  close(second);
  close(a);
  close(first);
  close(lfd);
}

static void test_block_server(void **state) {
  char dir[] = "/tmp/pt-blocks-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/shuffle-1-0-0.arrows", dir);
  size_t size = 1 << 20;
  uint8_t *data = malloc(size), *got = malloc(size);
  for (size_t i = 0; i < size; i++) data[i] = (uint8_t)(i * 31 + 7);
  FILE *f = fopen(path, "wb");
  assert_int_equal(fwrite(data, 1, size, f), size);
  fclose(f);
  pt__secret secret = {.len = 4};
  memcpy(secret.bytes, "blks", 4);
  pt__block_server *srv;
  CHECK(pt__block_server_start(dir, &secret, NULL, "127.0.0.1", &srv, &err));
  const char *addr = pt__block_server_address(srv);
  int unreachable = 0;
  assert_int_equal(strncmp(addr, "127.0.0.1:", 10), 0);

  CHECK(pt__block_fetch(addr, &secret, NULL, 5000, path, 1000, 300000, got, &unreachable, &err));
  assert_memory_equal(got, data + 1000, 300000);

  pt_error e = {0};
  pt__secret wrong = secret;
  wrong.bytes[0] ^= 1;
  assert_int_not_equal(pt__block_fetch(addr, &wrong, NULL, 5000, path, 0, 10, got, &unreachable, &e), PT_OK);
  assert_int_equal(unreachable, 1); /* not ours: as good as gone */
  char outside[300];
  snprintf(outside, sizeof outside, "%s/../etc/passwd", dir);
  assert_int_equal(pt__block_fetch(addr, &secret, NULL, 5000, outside, 0, 10, got, &unreachable, &e), PT_EIO);
  assert_non_null(strstr(e.message, "is not a shuffle or result file of this executor"));
  assert_int_equal(pt__block_fetch(addr, &secret, NULL, 5000, "/etc/passwd", 0, 10, got, &unreachable, &e), PT_EIO);
  assert_non_null(strstr(e.message, "is not a shuffle or result file of this executor"));
  assert_int_equal(pt__block_fetch(addr, &secret, NULL, 5000, path, (int64_t)size - 5, 10, got, &unreachable, &e), PT_EIO);
  assert_non_null(strstr(e.message, "segment past the end of the file"));
  char missing[300];
  snprintf(missing, sizeof missing, "%s/shuffle-9-9-9.arrows", dir);
  assert_int_equal(pt__block_fetch(addr, &secret, NULL, 5000, missing, 0, 10, got, &unreachable, &e), PT_EIO);
  assert_non_null(strstr(e.message, "No such file or directory"));
  assert_int_equal(unreachable, 0); /* reached, and it said why */
  /* Nothing listens: unreachable. */
  char gone[64];
  snprintf(gone, sizeof gone, "127.0.0.1:%d", free_port(AF_INET));
  assert_int_equal(pt__block_fetch(gone, &secret, NULL, 5000, path, 0, 10, got, &unreachable, &e), PT_EIO);
  assert_int_equal(unreachable, 1);

  /* A stranger's bytes: closed, and the server still serves. */
  char where[64];
  snprintf(where, sizeof where, "tcp:%s", addr);
  int fd;
  CHECK(pt__net_connect(where, &fd, &err));
  uint8_t junk[100];
  memset(junk, 0xab, sizeof junk);
  CHECK(pt__write_all(fd, junk, sizeof junk, &err));
  assert_true(pt_test_closed_by_peer(fd));
  close(fd);
  CHECK(pt__block_fetch(addr, &secret, NULL, 5000, path, 0, size, got, &unreachable, &err));
  assert_memory_equal(got, data, size);

  /* Map output kept in memory under a name in the directory: served from
   * there (no file), its end checked; dropped (Cleanup), it is gone. */
  char kept[256];
  snprintf(kept, sizeof kept, "%s/shuffle-2-0-0.arrows", dir);
  pt__mem_set_budget(4 << 20);
  pt_buf mem = {0};
  pt__mem_buf_get(size, &mem);
  assert_int_equal(pt__buf_reserve(&mem, size), PT_OK);
  for (size_t i = 0; i < size; i++) mem.data[i] = (char)(data[size - 1 - i]);
  mem.len = size;
  int listed = 0;
  assert_true(pt__mem_reserve(0));
  CHECK(pt__mem_put(2, kept, &mem, 0, &listed, &err));
  assert_int_equal(listed, 1);
  assert_null(mem.data);
  CHECK(pt__block_fetch(addr, &secret, NULL, 5000, kept, 4096, 500000, got, &unreachable, &err));
  for (size_t i = 0; i < 500000; i++)
    if (got[i] != data[size - 1 - 4096 - i]) fail_msg("byte %zu of the kept output", i);
  assert_int_equal(pt__block_fetch(addr, &secret, NULL, 5000, kept, (int64_t)size - 5, 10, got,
                                   &unreachable, &e), PT_EIO);
  assert_non_null(strstr(e.message, "segment past the end of the map output"));
  /* Over the budget: not listed, the buffer stays the caller's. */
  pt_buf big = {0};
  assert_int_equal(pt__buf_reserve(&big, 8 << 20), PT_OK);
  big.len = 8 << 20;
  CHECK(pt__mem_put(3, kept, &big, 0, &listed, &err));
  assert_int_equal(listed, 0);
  assert_non_null(big.data);
  pt__mem_buf_put(&big);
  pt__mem_drop(2);
  assert_int_equal(pt__mem_used(), 0);
  assert_int_equal(pt__block_fetch(addr, &secret, NULL, 5000, kept, 0, 10, got, &unreachable, &e),
                   PT_EIO);
  assert_non_null(strstr(e.message, "No such file or directory"));
  pt__mem_set_budget(0);

  unlink(path);
  rmdir(dir);
  free(data);
  free(got);
}

/* An executor whose output directory is not the driver's: it runs in a
 * mount namespace of its own with a tmpfs over the output's parent, as an
 * executor on another host without a shared filesystem, beside one that
 * shares the driver's. write_ipc must say so and commit nothing rather than
 * commit the partitions it happens to see. */
static void test_output_not_shared(void **state) {
  if (geteuid() != 0 || system("command -v unshare >/dev/null 2>&1") != 0) {
    fprintf(stderr, "test_output_not_shared SKIPPED: needs root and unshare (util-linux)\n");
    skip();
  }
  char base[] = "/tmp/pt-unshared-XXXXXX";
  assert_non_null(mkdtemp(base));
  char self[1024];
  ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
  assert_true(l > 0);
  self[l] = 0;
  char cmd[2300], out[300];
  /* Executor 1 on a host of its own, executor 2 sharing the driver's:
   * some partitions visible, some not. */
  snprintf(cmd, sizeof cmd, "sh -c 'if [ $PROTIUM_EXECUTOR_ID = 1 ]; then exec unshare -m sh -c "
           "\"mount -t tmpfs none %s && exec %s\"; else exec %s; fi'", base, self, self);
  snprintf(out, sizeof out, "%s/out", base);
  pt_conf *conf;
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "executor.command", cmd, &err));
  pt_session *s;
  CHECK(pt_session_open("local[2]", conf, &s, &err));
  pt_conf_free(conf);
  pt_dataset *r;
  CHECK(pt_range(s, 0, 1000, 16, &r, &err));
  pt_error e = {0};
  assert_int_equal(pt_write_ipc(r, out, NULL, &e), PT_EIO);
  if (!strstr(e.message, "which the driver cannot see") ||
      !strstr(e.message, "must be on a filesystem they share with the driver") ||
      !strstr(e.message, "nothing was committed"))
    fail_msg("unexpected error: %s", e.message);
  /* Nothing half-committed: the directory it made is gone again. */
  struct stat sb;
  assert_int_not_equal(stat(out, &sb), 0);
  /* The session goes on. */
  int64_t n = 0;
  CHECK(pt_count(r, &n, &err));
  assert_int_equal(n, 1000);
  pt_dataset_free(r);
  pt_session_close(s);
  rmdir(base);
}

/* Executors on "other hosts": each in a mount and UTS namespace of its own,
 * with a tmpfs over local.dir (the driver's session directory is not
 * there) and a host name of its own. base: local.dir. NULL when this
 * machine cannot (not root, no unshare): the caller skips. */
static pt_session *open_unshared(const char *base, const char *results, int n) {
  if (geteuid() != 0 || system("command -v unshare >/dev/null 2>&1") != 0) return NULL;
  char self[1024];
  ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
  assert_true(l > 0);
  self[l] = 0;
  char cmd[2400];
  snprintf(cmd, sizeof cmd, "unshare -m -u sh -c \"hostname pt-node-$PROTIUM_EXECUTOR_ID && "
           "mount -t tmpfs none %s && mkdir -p \\\"$PROTIUM_EXECUTOR_DIR\\\" && exec %s\"",
           base, self);
  pt_conf *conf;
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "net.transport", "tcp", &err));
  CHECK(pt_conf_set(conf, "net.results", results, &err));
  CHECK(pt_conf_set(conf, "local.dir", base, &err));
  CHECK(pt_conf_set(conf, "executor.command", cmd, &err));
  char name[32];
  snprintf(name, sizeof name, "local[%d]", n);
  pt_session *s;
  CHECK(pt_session_open(name, conf, &s, &err));
  pt_conf_free(conf);
  return s;
}

/* Collects ds (ids lo, lo + 1, ...) and checks every value in order. */
static void collect_ids(pt_dataset *ds, int64_t lo, int64_t n) {
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  int64_t next = lo;
  for (;;) {
    struct ArrowArray a;
    assert_int_equal(st.get_next(&st, &a), 0);
    if (a.release == NULL) break;
    const int64_t *v = (const int64_t *)a.children[0]->buffers[1] + a.children[0]->offset;
    for (int64_t i = 0; i < a.length; i++)
      if (v[i] != next++) fail_msg("row %lld is %lld", (long long)(next - 1), (long long)v[i]);
    a.release(&a);
  }
  st.release(&st);
  assert_int_equal(next, lo + n);
}

/* Results over the network: the executors cannot write into the driver's
 * session directory (it is not on their "host"), so net.results = auto
 * has the driver fetch every partition from their block servers: exact,
 * in order, also for a partition larger than one frame (64 MiB). With
 * net.results = files the same collect cannot find its partitions. */
static void test_results_stream(void **state) {
  char base[] = "/tmp/pt-results-XXXXXX";
  assert_non_null(mkdtemp(base));
  pt_session *s = open_unshared(base, "auto", 2);
  if (!s) {
    rmdir(base);
    fprintf(stderr, "test_results_stream SKIPPED: needs root and unshare (util-linux)\n");
    skip();
  }
  pt_dataset *r, *big;
  CHECK(pt_range(s, 5, 5 + 100000, 8, &r, &err));
  collect_ids(r, 5, 100000);
  collect_ids(r, 5, 100000); /* the executors' copies of the first were removed */
  const int64_t n_big = 9 * 1000 * 1000; /* 72 MB of int64 in one partition */
  CHECK(pt_range(s, 0, n_big, 1, &big, &err));
  collect_ids(big, 0, n_big);
  pt_dataset_free(big);
  pt_dataset_free(r);
  pt_session_close(s);

  s = open_unshared(base, "files", 2);
  CHECK(pt_range(s, 0, 1000, 4, &r, &err));
  struct ArrowArrayStream st;
  pt_error e = {0};
  int rc = pt_collect(r, &st, &e);
  struct ArrowArray a = {0};
  if (rc == PT_OK) {
    assert_int_not_equal(st.get_next(&st, &a), 0); /* the partitions are on the executors */
    st.release(&st);
  }
  pt_dataset_free(r);
  pt_session_close(s);
  rmdir(base);
}

/* An executor killed after its result task finished, before the driver
 * fetched the result (the fault hook kills it then): the partition is
 * computed again elsewhere, and the result is exact. */
static void test_results_stream_executor_killed(void **state) {
  char base[] = "/tmp/pt-results-XXXXXX";
  assert_non_null(mkdtemp(base));
  setenv("PROTIUM_FAULT_RESULT_FETCH", "kill_executor", 1);
  pt_session *s = open_unshared(base, "stream", 2);
  if (!s) {
    unsetenv("PROTIUM_FAULT_RESULT_FETCH");
    rmdir(base);
    fprintf(stderr, "test_results_stream_executor_killed SKIPPED: needs root and unshare\n");
    skip();
  }
  pt_dataset *r;
  CHECK(pt_range(s, 0, 60000, 6, &r, &err));
  collect_ids(r, 0, 60000);
  pt_job_stats *js;
  CHECK(pt_dataset_last_job(r, &js, &err));
  assert_true(js->executors_lost >= 1);
  pt_stage_stats tot;
  pt_job_stats_total(js, &tot);
  assert_true(tot.tasks_launched > 6); /* the killed executor's partition ran again */
  pt_job_stats_free(js);
  collect_ids(r, 0, 60000); /* and the session goes on */
  unsetenv("PROTIUM_FAULT_RESULT_FETCH");
  pt_dataset_free(r);
  pt_session_close(s);
  rmdir(base);
}

/* Small results travel in their task's status: no fetch, so the fault
 * hook that kills the executor before the session's first fetch finds
 * none to kill. A larger one in the same session is fetched; every value
 * exact. */
static void test_results_inline(void **state) {
  char base[] = "/tmp/pt-results-XXXXXX";
  assert_non_null(mkdtemp(base));
  setenv("PROTIUM_FAULT_RESULT_FETCH", "kill_executor", 1);
  pt_session *s = open_unshared(base, "stream", 2);
  if (!s) {
    unsetenv("PROTIUM_FAULT_RESULT_FETCH");
    rmdir(base);
    fprintf(stderr, "test_results_inline SKIPPED: needs root and unshare\n");
    skip();
  }
  pt_dataset *r;
  CHECK(pt_range(s, 7, 7 + 4000, 4, &r, &err)); /* 8 KB of int64 per partition */
  collect_ids(r, 7, 4000);
  pt_job_stats *js;
  CHECK(pt_dataset_last_job(r, &js, &err));
  assert_int_equal(js->executors_lost, 0);
  pt_stage_stats tot;
  pt_job_stats_total(js, &tot);
  assert_int_equal(tot.tasks_launched, 4);
  pt_job_stats_free(js);
  pt_dataset_free(r);
  unsetenv("PROTIUM_FAULT_RESULT_FETCH");
  /* 72 KB in one partition: over the inline limit, fetched. */
  CHECK(pt_range(s, 0, 9000, 1, &r, &err));
  collect_ids(r, 0, 9000);
  pt_dataset_free(r);
  pt_session_close(s);
  rmdir(base);
}

/* An inline result that is cut short, garbled, or larger than the limit
 * fails its task with a message that says so; after task.max_failures
 * attempts the job fails with it, and the session stays usable. */
static void test_results_inline_bad(void **state) {
  const char *faults[] = {"truncate", "garbage", "oversize"};
  const char *expect[] = {"is not a valid Arrow IPC stream", "is not a valid Arrow IPC stream",
                          "over the 1048576-byte limit of inline results"};
  for (int i = 0; i < 3; i++) {
    char base[] = "/tmp/pt-results-XXXXXX";
    assert_non_null(mkdtemp(base));
    setenv("PROTIUM_FAULT_INLINE_RESULT", faults[i], 1);
    pt_session *s = open_unshared(base, "stream", 1);
    if (!s) {
      unsetenv("PROTIUM_FAULT_INLINE_RESULT");
      rmdir(base);
      fprintf(stderr, "test_results_inline_bad SKIPPED: needs root and unshare\n");
      skip();
    }
    pt_dataset *r;
    CHECK(pt_range(s, 0, 1000, 2, &r, &err));
    struct ArrowArrayStream st;
    pt_error e = {0};
    assert_int_not_equal(pt_collect(r, &st, &e), PT_OK);
    if (!strstr(e.message, expect[i]) || !strstr(e.message, "failed 4 times"))
      fail_msg("%s: %s", faults[i], e.message);
    unsetenv("PROTIUM_FAULT_INLINE_RESULT");
    pt_dataset_free(r);
    pt_session_close(s);
    rmdir(base);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake_units),
      cmocka_unit_test(test_ipv4),
      cmocka_unit_test(test_ipv6),
      cmocka_unit_test(test_any_port_secret_not_in_argv),
      cmocka_unit_test(test_refused_peers),
      cmocka_unit_test(test_secret_file),
      cmocka_unit_test(test_bad_addresses),
      cmocka_unit_test(test_block_server),
      cmocka_unit_test(test_connect_unanswered),
      cmocka_unit_test(test_remote_shuffle),
      cmocka_unit_test(test_output_not_shared),
      cmocka_unit_test(test_results_stream),
      cmocka_unit_test(test_results_stream_executor_killed),
      cmocka_unit_test(test_results_inline),
      cmocka_unit_test(test_results_inline_bad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
