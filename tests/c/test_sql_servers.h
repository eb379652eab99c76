/* test_sql_servers.h — database servers for the C tests: PostgreSQL (a data
 * directory under a temporary folder, a free port on 127.0.0.1, the postgres
 * user when we are root: initdb refuses root) and MariaDB (the same, as root
 * with --user=root, database "pt"), each stopped by its own pid and removed.
 * Under scripts/test.sh one server of each serves the whole session
 * (tests/sql_servers.sh, PT_TEST_PG_URL and PT_TEST_MYSQL_URL): then a test
 * works in a database of its own there, pt_<name>_<pid>, dropped at the end,
 * so that tests run side by side (ctest -j) never see each other's tables.
 * Tests skip (77 from main) when the server binaries are missing, or fail
 * under PT_REQUIRE_SQL=1 (pt_test_sql_missing).
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

#include <libpq-fe.h>
#include <mysql.h>

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
  char dir[256];        /* the test's own temporary directory (the data, on its own server) */
  int port;
  char db[96];          /* "postgres" on its own server, pt_<name>_<pid> on the shared one */
  char url[384];        /* connects to db as user postgres */
  char server_url[384]; /* the shared server's PT_TEST_PG_URL; "" on its own server */
} pt_test_pg;

/* The port of a URL (scheme://user@HOST:PORT/db), its host into host; -1
 * when it names no port. */
static inline int pt_test_url_port(const char *url, char *host, size_t host_size) {
  const char *at = strchr(url, '@'), *end = strrchr(url, '/');
  const char *start = at ? at + 1 : strstr(url, "://");
  if (start == NULL || end == NULL || end < start) return -1;
  if (!at) start += 3;
  const char *colon = memchr(start, ':', (size_t)(end - start));
  if (colon == NULL) return -1;
  snprintf(host, host_size, "%.*s", (int)(colon - start), start);
  return atoi(colon + 1);
}

/* url with its database (what follows the last '/') replaced by db. */
static inline void pt_test_url_with_db(const char *url, const char *db, char *out,
                                       size_t size) {
  const char *slash = strrchr(url, '/');
  int keep = slash ? (int)(slash - url) : (int)strlen(url);
  snprintf(out, size, "%.*s/%s", keep, url, db);
}

/* A temporary directory for the test's files, shared server or not. */
static inline int pt_test_tmpdir(char *dir, size_t size, const char *prefix) {
  snprintf(dir, size, "/tmp/%s.XXXXXX", prefix);
  return mkdtemp(dir) == NULL ? -1 : 0;
}

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

/* On the shared server: a database of the test's own, made now. */
static inline int pt_test_pg_use_shared(pt_test_pg *pg, const char *server_url,
                                        const char *name) {
  char host[128];
  snprintf(pg->server_url, sizeof pg->server_url, "%s", server_url);
  snprintf(pg->db, sizeof pg->db, "pt_%s_%d", name, (int)getpid());
  pt_test_url_with_db(server_url, pg->db, pg->url, sizeof pg->url);
  pg->port = pt_test_url_port(server_url, host, sizeof host);
  char sql[256];
  snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", pg->db);
  PGconn *c = PQconnectdb(server_url);
  PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
  int ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok)
    fprintf(stderr, "PT_TEST_PG_URL=%s: cannot create database %s: %s", server_url, pg->db,
            PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  return ok && pg->port > 0 ? 0 : -1;
}

/* 0 on success: pg->url connects as user postgres to a database of the
 * test's own: on the session's server when PT_TEST_PG_URL is set (name
 * names the database), else on a server started now. */
static inline int pt_test_pg_start(pt_test_pg *pg, const char *name) {
  memset(pg, 0, sizeof *pg);
  if (pt_test_tmpdir(pg->dir, sizeof pg->dir, "pt-pg") != 0) return -1;
  const char *shared = getenv("PT_TEST_PG_URL");
  if (shared != NULL && shared[0] != '\0') {
    if (pt_test_pg_use_shared(pg, shared, name) == 0) return 0;
    rmdir(pg->dir);
    return -1;
  }
  snprintf(pg->db, sizeof pg->db, "postgres");
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

/* On the shared server: drops the test's database (FORCE: a backend of an
 * executor that just exited may not have gone yet). */
static inline void pt_test_pg_drop_shared(pt_test_pg *pg) {
  char sql[256];
  snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", pg->db);
  PGconn *c = PQconnectdb(pg->server_url);
  PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
  if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
    fprintf(stderr, "could not drop database %s: %s", pg->db, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}

/* Drops the test's database on the shared server, or stops its own
 * postmaster by its pid (first line of postmaster.pid; SIGINT is its fast
 * shutdown) and waits for it to exit; removes the directory. */
static inline void pt_test_pg_stop(pt_test_pg *pg) {
  char path[320], cmd[512];
  if (pg->server_url[0] != '\0') {
    pt_test_pg_drop_shared(pg);
    snprintf(cmd, sizeof cmd, "rm -rf %s", pg->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", pg->dir);
    return;
  }
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
  char dir[256]; /* the test's own temporary directory (the data, on its own server) */
  int port;
  char db[96];   /* "pt" on its own server, pt_<name>_<pid> on the shared one */
  char url[384]; /* mysql://root@127.0.0.1:PORT/db */
  int shared;    /* 1: on the session's server (PT_TEST_MYSQL_URL) */
} pt_test_my;

/* Runs sql as root on the server at port; 0 on success, else says why. */
static inline int pt_test_my_exec(int port, const char *sql) {
  MYSQL *c = mysql_init(NULL);
  int ok = c != NULL &&
           mysql_real_connect(c, "127.0.0.1", "root", NULL, NULL, (unsigned)port, NULL, 0) &&
           mysql_query(c, sql) == 0;
  if (!ok) fprintf(stderr, "MariaDB on port %d: %s: %s\n", port, sql, c ? mysql_error(c) : "");
  if (c) mysql_close(c);
  return ok ? 0 : -1;
}

static inline int pt_test_my_available(void) {
  return access("/usr/sbin/mariadbd", X_OK) == 0 && access("/usr/bin/mariadb-install-db", X_OK) == 0;
}

/* 0 on success: my->url connects as root to an empty database my->db, on
 * the session's server when PT_TEST_MYSQL_URL is set (its host must be
 * 127.0.0.1, as the tests' own URLs say; name names the database), else
 * on a server started now. */
static inline int pt_test_my_start(pt_test_my *my, const char *name) {
  memset(my, 0, sizeof *my);
  if (pt_test_tmpdir(my->dir, sizeof my->dir, "pt-my") != 0) return -1;
  const char *shared = getenv("PT_TEST_MYSQL_URL");
  if (shared != NULL && shared[0] != '\0') {
    char host[128], sql[160];
    my->shared = 1;
    my->port = pt_test_url_port(shared, host, sizeof host);
    snprintf(my->db, sizeof my->db, "pt_%s_%d", name, (int)getpid());
    pt_test_url_with_db(shared, my->db, my->url, sizeof my->url);
    snprintf(sql, sizeof sql, "CREATE DATABASE `%s`", my->db);
    if (my->port <= 0 || strcmp(host, "127.0.0.1") != 0) {
      fprintf(stderr, "PT_TEST_MYSQL_URL=%s: want mysql://root@127.0.0.1:PORT/DB\n", shared);
      rmdir(my->dir);
      return -1;
    }
    if (pt_test_my_exec(my->port, sql) == 0) return 0;
    rmdir(my->dir);
    return -1;
  }
  snprintf(my->db, sizeof my->db, "pt");
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

/* Drops the test's database on the shared server, or stops its own server
 * by its pid (SIGTERM: a clean shutdown) and waits; removes the directory. */
static inline void pt_test_my_stop(pt_test_my *my) {
  char path[320], cmd[512];
  if (my->shared) {
    snprintf(cmd, sizeof cmd, "DROP DATABASE IF EXISTS `%s`", my->db);
    pt_test_my_exec(my->port, cmd);
    snprintf(cmd, sizeof cmd, "rm -rf %s", my->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", my->dir);
    return;
  }
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
