/* stage.c — the exactly-once write, once for every database: a task
 * attempt's staging (its own table filled batch by batch through the
 * database's bulk load, or, into a new PostgreSQL table, one transaction
 * into the job's shared staging table), the driver's commit that moves the
 * winners into the target in one transaction, and the cleanup of a job's
 * staging tables. What differs between databases sits behind a pt__sql_db
 * (pgwrite.c, mysql.c, adbc.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "sql/sql.h"

/* How long the commit waits for attempts still loading the shared staging
 * table (a lost executor's, whose status never came) before it copies the
 * winners' rows instead of renaming the table. After every partition has
 * succeeded such an attempt can only lose; a live one ends when its
 * executor notices it is cut off, a frozen one never does. */
#define SHARED_LOCK_WAIT_MS 5000

struct pt__sql_stage {
  const pt__sql_db *db;
  void *conn;     /* owned; db->close */
  char *url;      /* owned: masks passwords in messages */
  char *table;    /* owned: the table the batches go to */
  char *attempt;  /* owned: the attempt's name */
  char *attempts; /* owned: shared: <prefix>attempts, where the commit records it;
                     NULL: the attempt has its own table */
  pt_buf buf;     /* one batch's load bytes, reused */
};

int pt__sql_db_of(const char *url, const pt__sql_db **out, pt_error *err) {
  pt__sql_dialect d;
  PT_RETURN_NOT_OK(pt__sql_dialect_of(url, &d, err));
  *out = d == PT__SQL_POSTGRES ? &pt__pg_db : d == PT__SQL_MYSQL ? &pt__my_db : &pt__adbc_db;
  return PT_OK;
}

int pt__sql_put(pt_buf *out, const char *s) {
  return pt__buf_append(out, s, strlen(s));
}

static int oom(pt_error *err) { return pt__errorf(err, PT_ENOMEM, "sql: out of memory"); }

/* prefix followed by suffix; the caller owns the result (free). */
static char *join(const char *prefix, const char *suffix) {
  size_t n = strlen(prefix), m = strlen(suffix);
  char *s = malloc(n + m + 1);
  if (s) {
    memcpy(s, prefix, n);
    memcpy(s + n, suffix, m + 1);
  }
  return s;
}

/* Appends s as a string literal, quotes doubled. Only for names protium
 * makes (the staging prefix and partition and attempt numbers). */
static int put_literal(pt_buf *out, const char *s) {
  int rc = pt__buf_putc(out, '\'');
  for (; *s && rc == PT_OK; s++) {
    if (*s == '\'') rc = pt__buf_putc(out, '\'');
    if (rc == PT_OK) rc = pt__buf_putc(out, *s);
  }
  return rc == PT_OK ? pt__buf_putc(out, '\'') : rc;
}

int pt__sql_columns_ddl(const char *url, const struct ArrowSchema *schema, pt_buf *out,
                        pt_error *err) {
  const pt__sql_db *db;
  PT_RETURN_NOT_OK(pt__sql_db_of(url, &db, err));
  /* Through ADBC the database behind the driver decides. */
  return db == &pt__adbc_db ? pt__adbc_columns_ddl(url, schema, out, err)
                            : db->columns_ddl(schema, out, err);
}

void pt__sql_stage_free(pt__sql_stage *w) {
  if (!w) return;
  if (w->conn) w->db->close(w->conn);
  pt_buf_free(&w->buf);
  free(w->url);
  free(w->table);
  free(w->attempt);
  free(w->attempts);
  free(w);
}

int pt__sql_stage_open(const char *url, const char *prefix, const char *attempt,
                       const char *columns_ddl, int shared, pt__sql_stage **out,
                       pt_error *err) {
  *out = NULL;
  const pt__sql_db *db;
  PT_RETURN_NOT_OK(pt__sql_db_of(url, &db, err));
  if (shared && !db->row_xact)
    return pt__errorf(err, PT_EINVAL, "sql: this database has no shared staging table");
  pt__sql_stage *w = calloc(1, sizeof *w);
  if (!w || !(w->url = strdup(url)) || !(w->attempt = strdup(attempt)) ||
      !(w->table = shared ? join(prefix, "all") : strdup(attempt)) ||
      (shared && !(w->attempts = join(prefix, "attempts")))) {
    pt__sql_stage_free(w);
    return oom(err);
  }
  w->db = db;
  int rc = db->connect(url, &w->conn, err);
  if (rc == PT_OK && shared) {
    /* One transaction for all the batches: until it commits no other
     * session sees a row of this attempt, and if it never does (the task
     * fails, its executor dies) it leaves none. */
    rc = db->exec(w->conn, db->begin, "cannot begin the attempt's transaction", url, err);
  } else if (rc == PT_OK) {
    pt_buf q = {0};
    if (pt__sql_put(&q, db->create_staging) || db->quote(&q, attempt) || pt__sql_put(&q, " (") ||
        pt__sql_put(&q, columns_ddl) || pt__sql_put(&q, ")") || pt__buf_putc(&q, 0))
      rc = oom(err);
    else
      rc = db->exec(w->conn, q.data, "cannot create the staging table", url, err);
    pt_buf_free(&q);
  }
  if (rc != PT_OK) {
    pt__sql_stage_free(w);
    return rc;
  }
  *out = w;
  return PT_OK;
}

int pt__sql_stage_write(pt__sql_stage *w, const struct ArrowSchema *schema,
                        const struct ArrowArray *batch, pt_error *err) {
  if (batch->length == 0) return PT_OK;
  /* In its own table each batch lands (commits) on its own, so a task
   * killed half-way leaves a staging table holding part of its rows, which
   * the commit never reads. */
  w->buf.len = 0;
  return w->db->bulk_load(w->conn, w->table, w->url, schema, batch, &w->buf, err);
}

int pt__sql_stage_finish(pt__sql_stage *w, pt_error *err) {
  if (!w->attempts) return PT_OK;
  /* The record commits with the rows: the commit finds the attempt's
   * transaction by it (its row_xact), and an attempt with no record left
   * nothing visible. */
  pt_buf q = {0};
  int rc;
  if (pt__sql_put(&q, "INSERT INTO ") || w->db->quote(&q, w->attempts) ||
      pt__sql_put(&q, " (name) VALUES (") || put_literal(&q, w->attempt) ||
      pt__sql_put(&q, ")") || pt__buf_putc(&q, 0))
    rc = oom(err);
  else
    rc = w->db->exec(w->conn, q.data, "cannot record the attempt", w->url, err);
  pt_buf_free(&q);
  if (rc == PT_OK) rc = w->db->exec(w->conn, "COMMIT", "the attempt's commit failed", w->url, err);
  return rc;
}

int pt__sql_stage_prepare(const char *url, const char *table, const char *prefix,
                          const char *columns_ddl, int *shared, pt_error *err) {
  *shared = 0;
  const pt__sql_db *db;
  PT_RETURN_NOT_OK(pt__sql_db_of(url, &db, err));
  if (!db->row_xact) return PT_OK;
  char *all = join(prefix, "all"), *attempts = join(prefix, "attempts"); /* owned */
  void *c = NULL; /* owned; db->close */
  pt_buf q = {0};
  int rc = all && attempts ? db->connect(url, &c, err) : oom(err);
  int exists = rc == PT_OK ? db->table_exists(c, table, url, err) : -1;
  if (rc == PT_OK && exists < 0) rc = PT_EIO;
  if (rc == PT_OK && !exists) {
    /* Logged, with the target's column definitions: the commit may rename
     * it to the target. name is a key: an attempt recorded twice fails. */
    if (pt__sql_put(&q, db->create_staging_logged) || db->quote(&q, all) ||
        pt__sql_put(&q, " (") || pt__sql_put(&q, columns_ddl) || pt__sql_put(&q, ")") ||
        pt__buf_putc(&q, 0))
      rc = oom(err);
    else
      rc = db->exec(c, q.data, "cannot create the staging table", url, err);
    q.len = 0;
    if (rc == PT_OK && (pt__sql_put(&q, "CREATE TABLE ") || db->quote(&q, attempts) ||
                        pt__sql_put(&q, " (name text PRIMARY KEY)") || pt__buf_putc(&q, 0)))
      rc = oom(err);
    else if (rc == PT_OK)
      rc = db->exec(c, q.data, "cannot create the staging table", url, err);
    if (rc == PT_OK) *shared = 1;
  }
  pt_buf_free(&q);
  if (c) db->close(c);
  free(all);
  free(attempts);
  return rc;
}

/* ARRAY['w1', 'w2', ...]::text[]: the winners' names. */
static int put_winners(pt_buf *q, const char *const *winners, int64_t n) {
  int rc = pt__sql_put(q, "ARRAY[");
  for (int64_t i = 0; i < n && rc == PT_OK; i++)
    rc = (i && pt__sql_put(q, ", ")) || put_literal(q, winners[i]) ? PT_ENOMEM : PT_OK;
  return rc == PT_OK ? pt__sql_put(q, "]::text[]") : rc;
}

/* " FROM <all> WHERE <xact> IN (SELECT <xact> FROM <attempts> WHERE [NOT]
 * name = ANY(<winners>))": the rows of the winners' transactions (or of
 * the losers'). */
static int put_rows_of(pt_buf *q, const pt__sql_db *db, const char *all, const char *attempts,
                       int losers, const char *winners) {
  return pt__sql_put(q, " FROM ") || db->quote(q, all) || pt__sql_put(q, " WHERE ") ||
                 pt__sql_put(q, db->row_xact) || pt__sql_put(q, " IN (SELECT ") ||
                 pt__sql_put(q, db->row_xact) || pt__sql_put(q, " FROM ") ||
                 db->quote(q, attempts) || pt__sql_put(q, losers ? " WHERE NOT " : " WHERE ") ||
                 pt__sql_put(q, "name = ANY(") || pt__sql_put(q, winners) ||
                 pt__sql_put(q, "))")
             ? PT_ENOMEM
             : PT_OK;
}

/* "SELECT count(*) FROM <attempts> WHERE [NOT] name = ANY(<winners>)" */
static int count_attempts(const pt__sql_db *db, void *c, const char *url, const char *attempts,
                          int losers, const char *winners, int64_t *out, pt_error *err) {
  pt_buf q = {0};
  int rc;
  if (pt__sql_put(&q, "SELECT count(*) FROM ") || db->quote(&q, attempts) ||
      pt__sql_put(&q, losers ? " WHERE NOT " : " WHERE ") || pt__sql_put(&q, "name = ANY(") ||
      pt__sql_put(&q, winners) || pt__sql_put(&q, ")") || pt__buf_putc(&q, 0))
    rc = oom(err);
  else
    rc = db->query_int(c, q.data, "cannot read the attempts", url, out, err);
  pt_buf_free(&q);
  return rc;
}

/* The commit out of the job's shared staging table (pt__sql_commit's
 * shared_prefix), inside the transaction open on c, table's existence as
 * found there. The exclusive lock waits for the end of every attempt's
 * transaction that touched the shared table: after it no row there changes
 * but by this transaction, so the winners' rows are exactly those their
 * recorded transactions wrote. Without it (an attempt still holds the
 * table after the wait) the transaction is begun again and the winners'
 * rows copied. */
static int commit_shared(const pt__sql_db *db, void *c, const char *url, const char *table,
                         pt__sql_mode mode, int exists, const char *ddl, const char *cols,
                         const char *prefix, const char *const *winners, int64_t n,
                         pt_error *err) {
  char *all = join(prefix, "all"), *attempts = join(prefix, "attempts"); /* owned */
  pt_buf w = {0}, q = {0}; /* owned: the winners' array; a statement */
  int rc = all && attempts && put_winners(&w, winners, n) == PT_OK && pt__buf_putc(&w, 0) == PT_OK
               ? PT_OK
               : oom(err);
  int locked = 0;
  if (rc == PT_OK && !exists) {
    locked = db->lock_exclusive(c, all, SHARED_LOCK_WAIT_MS, url, NULL) == PT_OK;
    if (!locked) {
      (void)db->exec(c, "ROLLBACK", "rollback", url, NULL);
      rc = db->exec(c, db->begin, "cannot begin the commit", url, err);
    }
    /* Someone may have made the table while the lock was awaited. */
    exists = rc == PT_OK ? db->table_exists(c, table, url, err) : exists;
    if (rc == PT_OK && exists < 0) rc = PT_EIO;
    if (rc == PT_OK && exists && mode == PT__SQL_ERROR)
      rc = pt__errorf(err, PT_EINVAL,
                      "sql: write: table \"%s\" exists; use mode append or overwrite, or "
                      "drop it",
                      table);
  }
  /* Each winner recorded itself in the transaction that committed its
   * rows, before it reported success: one missing is protium's bug, and
   * its rows would be lost without a word. */
  int64_t found = 0, losers = 0;
  if (rc == PT_OK) rc = count_attempts(db, c, url, attempts, 0, w.data, &found, err);
  if (rc == PT_OK && found != n)
    rc = pt__errorf(err, PT_EIO,
                    "sql: write: %lld of %lld partitions have no rows in the staging table "
                    "%s; write again",
                    (long long)(n - found), (long long)n, all);
  if (rc == PT_OK && locked && !exists) {
    rc = count_attempts(db, c, url, attempts, 1, w.data, &losers, err);
    /* Attempts that committed but lost (their executor was lost after
     * their commit, or their status came late): their rows go. */
    if (rc == PT_OK && losers > 0) {
      if (pt__sql_put(&q, "DELETE") || put_rows_of(&q, db, all, attempts, 1, w.data) ||
          pt__buf_putc(&q, 0))
        rc = oom(err);
      else
        rc = db->exec(c, q.data, "cannot delete the rows of attempts that lost", url, err);
    }
    q.len = 0;
    if (rc == PT_OK && (pt__sql_put(&q, "ALTER TABLE ") || db->quote(&q, all) ||
                        pt__sql_put(&q, " RENAME TO ") || db->quote(&q, table) ||
                        pt__buf_putc(&q, 0)))
      rc = oom(err);
    else if (rc == PT_OK)
      rc = db->exec(c, q.data, "cannot rename the staging table to the table", url, err);
  } else if (rc == PT_OK) {
    if (!exists) {
      if (pt__sql_put(&q, "CREATE TABLE ") || db->quote(&q, table) || pt__sql_put(&q, " (") ||
          pt__sql_put(&q, ddl) || pt__sql_put(&q, ")") || pt__buf_putc(&q, 0))
        rc = oom(err);
      else
        rc = db->exec(c, q.data, "cannot create the table", url, err);
    } else if (mode == PT__SQL_OVERWRITE) {
      if (pt__sql_put(&q, db->clear) || db->quote(&q, table) || pt__buf_putc(&q, 0))
        rc = oom(err);
      else
        rc = db->exec(c, q.data, "cannot clear the table", url, err);
    }
    q.len = 0;
    if (rc == PT_OK && (pt__sql_put(&q, "INSERT INTO ") || db->quote(&q, table) ||
                        pt__sql_put(&q, " (") || pt__sql_put(&q, cols) ||
                        pt__sql_put(&q, ") SELECT ") || pt__sql_put(&q, cols) ||
                        put_rows_of(&q, db, all, attempts, 0, w.data) || pt__buf_putc(&q, 0)))
      rc = oom(err);
    else if (rc == PT_OK)
      rc = db->exec(c, q.data, "cannot move the rows into the table", url, err);
  }
  pt_buf_free(&w);
  pt_buf_free(&q);
  free(all);
  free(attempts);
  return rc;
}

int pt__sql_commit(const char *url, const char *table, pt__sql_mode mode,
                   const struct ArrowSchema *schema, const char *const *winners, int64_t n,
                   const char *shared_prefix, pt_error *err) {
  const pt__sql_db *db;
  PT_RETURN_NOT_OK(pt__sql_db_of(url, &db, err));
  if (shared_prefix && !db->row_xact)
    return pt__errorf(err, PT_EINVAL, "sql: this database has no shared staging table");
  pt_buf ddl = {0}, cols = {0}, q = {0};
  void *c = NULL;
  int created = 0, in_tx = 0;
  int rc = pt__sql_columns_ddl(url, schema, &ddl, err);
  if (rc != PT_OK) goto done;
  for (int64_t k = 0; k < schema->n_children && rc == PT_OK; k++)
    if ((k && pt__sql_put(&cols, ", ")) ||
        db->quote(&cols, schema->children[k]->name ? schema->children[k]->name : ""))
      rc = oom(err);
  if (rc == PT_OK && pt__buf_putc(&cols, 0)) rc = oom(err);
  if (rc == PT_OK) rc = db->connect(url, &c, err);
  if (rc != PT_OK) goto done;
  if (db->ddl_in_transaction) {
    rc = db->exec(c, db->begin, "cannot begin the commit", url, err);
    if (rc != PT_OK) goto done;
    in_tx = 1;
  }
  int exists = db->table_exists(c, table, url, err);
  if (exists < 0) {
    rc = PT_EIO;
    goto done;
  }
  if (exists && mode == PT__SQL_ERROR) {
    rc = pt__errorf(err, PT_EINVAL,
                    "sql: write: table \"%s\" exists; use mode append or overwrite, or drop it",
                    table);
    goto done;
  }
  if (shared_prefix) {
    /* Transactional DDL (row_xact's databases): a rollback gives the
     * shared table back its name, and the cleanup drops it. */
    rc = commit_shared(db, c, url, table, mode, exists, ddl.data, cols.data, shared_prefix,
                       winners, n, err);
    goto commit;
  }
  if (!exists) {
    /* Where DDL commits on its own (MySQL), the table is made before the
     * transaction and dropped again if the transaction fails. */
    if (pt__sql_put(&q, "CREATE TABLE ") || db->quote(&q, table) || pt__sql_put(&q, " (") ||
        pt__sql_put(&q, ddl.data) || pt__sql_put(&q, ")") || pt__buf_putc(&q, 0)) {
      rc = oom(err);
      goto done;
    }
    rc = db->exec(c, q.data, "cannot create the table", url, err);
    if (rc != PT_OK) goto done;
    created = !db->ddl_in_transaction;
  }
  if (!in_tx) {
    rc = db->exec(c, db->begin, "cannot begin the commit", url, err);
    if (rc != PT_OK) goto done;
    in_tx = 1;
  }
  if (exists && mode == PT__SQL_OVERWRITE) {
    /* Inside the transaction, so a failure keeps the old rows; the table
     * keeps its definition. What readers see meanwhile is the database's:
     * PostgreSQL's TRUNCATE locks them out until the commit, a DELETE
     * (MySQL, ADBC) lets them read the old rows (docs/sql.md). */
    q.len = 0;
    if (pt__sql_put(&q, db->clear) || db->quote(&q, table) || pt__buf_putc(&q, 0))
      rc = oom(err);
    else
      rc = db->exec(c, q.data, "cannot clear the table", url, err);
  }
  for (int64_t i = 0; i < n && rc == PT_OK; i++) {
    q.len = 0;
    if (pt__sql_put(&q, "INSERT INTO ") || db->quote(&q, table) || pt__sql_put(&q, " (") ||
        pt__sql_put(&q, cols.data) || pt__sql_put(&q, ") SELECT ") ||
        pt__sql_put(&q, cols.data) || pt__sql_put(&q, " FROM ") || db->quote(&q, winners[i]) ||
        pt__buf_putc(&q, 0))
      rc = oom(err);
    else
      rc = db->exec(c, q.data, "cannot move a partition into the table", url, err);
  }
commit:
  /* PROTIUM_FAULT_SQL_COMMIT (tests): fail just before COMMIT. */
  if (rc == PT_OK && getenv("PROTIUM_FAULT_SQL_COMMIT"))
    rc = pt__errorf(err, PT_EIO, "sql: the commit failed on purpose (PROTIUM_FAULT_SQL_COMMIT)");
  if (rc == PT_OK) {
    rc = db->exec(c, "COMMIT", "the commit failed", url, err);
    in_tx = 0;
  }
done:
  if (rc != PT_OK && c) {
    /* Errors of the rollback itself are not the user's news: the first
     * error is. */
    if (in_tx) (void)db->exec(c, "ROLLBACK", "rollback", url, NULL);
    if (created) {
      q.len = 0;
      if (pt__sql_put(&q, "DROP TABLE IF EXISTS ") == PT_OK && db->quote(&q, table) == PT_OK &&
          pt__buf_putc(&q, 0) == PT_OK)
        (void)db->exec(c, q.data, "drop", url, NULL);
    }
  }
  if (c) db->close(c);
  pt_buf_free(&ddl);
  pt_buf_free(&cols);
  pt_buf_free(&q);
  return rc;
}

int pt__sql_drop_staging(const char *url, const char *prefix, pt_error *err) {
  const pt__sql_db *db;
  PT_RETURN_NOT_OK(pt__sql_db_of(url, &db, err));
  void *c;
  PT_RETURN_NOT_OK(db->connect(url, &c, err));
  /* Every table of the prefix: attempts the driver never heard of (killed
   * before their status came) included. '_' is a LIKE wildcard: escaped. */
  char pattern[256];
  size_t k = 0;
  for (const char *p = prefix; *p && k + 3 < sizeof pattern; p++) {
    if (*p == '_' || *p == '%' || *p == '\\') pattern[k++] = '\\';
    pattern[k++] = *p;
  }
  pattern[k++] = '%';
  pattern[k] = 0;
  char **names = NULL;
  int64_t nn = 0;
  int rc = db->list_tables(c, pattern, url, &names, &nn, err);
  for (int64_t i = 0; i < nn; i++) {
    pt_buf d = {0};
    if (rc == PT_OK && (pt__sql_put(&d, "DROP TABLE IF EXISTS ") || db->quote(&d, names[i]) ||
                        pt__buf_putc(&d, 0)))
      rc = oom(err);
    if (rc == PT_OK) rc = db->exec(c, d.data, "cannot drop a staging table", url, err);
    pt_buf_free(&d);
    pt__free(names[i]);
  }
  pt__free(names);
  db->close(c);
  return rc;
}
