/* test_sql_servers.h — starts throwaway database servers for the C tests:
 * PostgreSQL (a data directory under a temporary folder, a free port on
 * 127.0.0.1, the postgres user when we are root: initdb refuses root) and
 * MariaDB (the same, as root with --user=root, database "pt"), each stopped
 * by its own pid and removed. Tests skip (77 from main) when the server
 * binaries are missing, or fail under PT_REQUIRE_SQL=1 (pt_test_sql_missing).
 */
#ifndef PT_TEST_SQL_SERVERS_H
#define PT_TEST_SQL_SERVERS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PT_TEST_PG_BIN "/usr/lib/postgresql/15/bin"

/* PT_REQUIRE_SQL=1 (scripts/test.sh sets it): a missing server or driver
 * fails the test instead of skipping it, so that `make test` never passes
 * without the SQL tests having run. */
static inline int pt_test_sql_required(void) {
  const char *v = getenv("PT_REQUIRE_SQL");
  return v != NULL && strcmp(v, "1") == 0;
}

/* What main returns when `what` is missing: 77 (ctest's skip), or 1 under
 * PT_REQUIRE_SQL=1; either way it says what is missing and what installs it. */
static inline int pt_test_sql_missing(const char *what) {
  if (pt_test_sql_required()) {
    printf("FAILED: %s missing and PT_REQUIRE_SQL=1 (scripts/setup.sh installs it)\n", what);
    return 1;
  }
  printf("skipped: %s missing (scripts/setup.sh installs it)\n", what);
  return 77;
}

typedef struct {
  char dir[256];
  int port;
  char url[384];
} pt_test_pg;

/* A port nothing listens on now: bound to 0, read back, closed. */
static int pt_test_free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t l = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(s, (struct sockaddr *)&a, &l) != 0) {
    if (s >= 0) close(s);
    return -1;
  }
  close(s);
  return ntohs(a.sin_port);
}

static inline int pt_test_pg_available(void) { return access(PT_TEST_PG_BIN "/initdb", X_OK) == 0; }

/* Runs cmd as the postgres user when we are root. */
static inline int pt_test_pg_sh(const char *cmd) {
  char full[2048];
  if (geteuid() == 0)
    snprintf(full, sizeof full, "runuser -u postgres -- sh -c '%s' >/dev/null 2>&1", cmd);
  else
    snprintf(full, sizeof full, "sh -c '%s' >/dev/null 2>&1", cmd);
  return system(full);
}

/* 0 on success: the server listens and pg->url connects as user postgres. */
static inline int pt_test_pg_start(pt_test_pg *pg) {
  snprintf(pg->dir, sizeof pg->dir, "/tmp/pt-pg.XXXXXX");
  if (mkdtemp(pg->dir) == NULL) return -1;
  char cmd[1024];
  if (geteuid() == 0) {
    snprintf(cmd, sizeof cmd, "chown postgres:postgres %s", pg->dir);
    if (system(cmd) != 0) return -1;
  }
  snprintf(cmd, sizeof cmd,
           PT_TEST_PG_BIN "/initdb -D %s/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8",
           pg->dir);
  if (pt_test_pg_sh(cmd) != 0) return -1;
  for (int attempt = 0; attempt < 5; attempt++) {
    pg->port = pt_test_free_port();
    snprintf(cmd, sizeof cmd,
             PT_TEST_PG_BIN "/pg_ctl -D %s/data -l %s/log -w -o \"-k %s -h 127.0.0.1 -p %d\" start",
             pg->dir, pg->dir, pg->dir, pg->port);
    if (pt_test_pg_sh(cmd) == 0) {
      snprintf(pg->url, sizeof pg->url, "postgresql://postgres@127.0.0.1:%d/postgres", pg->port);
      return 0;
    }
  }
  return -1;
}

/* Stops the postmaster by its pid (first line of postmaster.pid; SIGINT is
 * its fast shutdown), waits for
 * it to exit, removes the directory. */
static inline void pt_test_pg_stop(pt_test_pg *pg) {
  char path[320], cmd[512];
  snprintf(path, sizeof path, "%s/data/postmaster.pid", pg->dir);
  FILE *f = fopen(path, "r");
  long pid = 0;
  if (f != NULL) {
    if (fscanf(f, "%ld", &pid) != 1) pid = 0;
    fclose(f);
  }
  if (pid > 0 && kill((pid_t)pid, SIGINT) == 0) {
    for (int i = 0; i < 1000 && kill((pid_t)pid, 0) == 0; i++) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  snprintf(cmd, sizeof cmd, "rm -rf %s", pg->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", pg->dir);
}

/* ------------------------------------------------------------------------ */
/* MariaDB */

typedef struct {
  char dir[256];
  int port;
  char url[384];
} pt_test_my;

static inline int pt_test_my_available(void) {
  return access("/usr/sbin/mariadbd", X_OK) == 0 && access("/usr/bin/mariadb-install-db", X_OK) == 0;
}

/* 0 on success: the server listens and my->url (mysql://root@127.0.0.1:PORT/pt)
 * connects, with an empty database pt. */
static inline int pt_test_my_start(pt_test_my *my) {
  snprintf(my->dir, sizeof my->dir, "/tmp/pt-my.XXXXXX");
  if (mkdtemp(my->dir) == NULL) return -1;
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "mariadb-install-db --datadir=%s/db --auth-root-authentication-method=normal "
           "--skip-test-db >%s/install.log 2>&1", my->dir, my->dir);
  if (system(cmd) != 0) return -1;
  for (int attempt = 0; attempt < 5; attempt++) {
    my->port = pt_test_free_port();
    snprintf(cmd, sizeof cmd,
             "mariadbd --datadir=%s/db --socket=%s/sock --port=%d --bind-address=127.0.0.1 "
             "--user=root --pid-file=%s/pid --log-error=%s/err.log </dev/null >/dev/null 2>&1 &",
             my->dir, my->dir, my->port, my->dir, my->dir);
    if (system(cmd) != 0) continue;
    snprintf(cmd, sizeof cmd,
             "for i in $(seq 300); do mariadb -h 127.0.0.1 -P %d -uroot -e 'CREATE DATABASE pt' "
             ">/dev/null 2>&1 && exit 0; sleep 0.1; done; exit 1", my->port);
    if (system(cmd) == 0) {
      snprintf(my->url, sizeof my->url, "mysql://root@127.0.0.1:%d/pt", my->port);
      return 0;
    }
  }
  return -1;
}

/* Stops the server by its pid (SIGTERM: a clean shutdown), waits, removes
 * the directory. */
static inline void pt_test_my_stop(pt_test_my *my) {
  char path[320], cmd[512];
  snprintf(path, sizeof path, "%s/pid", my->dir);
  FILE *f = fopen(path, "r");
  long pid = 0;
  if (f != NULL) {
    if (fscanf(f, "%ld", &pid) != 1) pid = 0;
    fclose(f);
  }
  if (pid > 0 && kill((pid_t)pid, SIGTERM) == 0) {
    for (int i = 0; i < 1000 && kill((pid_t)pid, 0) == 0; i++) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  snprintf(cmd, sizeof cmd, "rm -rf %s", my->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", my->dir);
}

#endif
