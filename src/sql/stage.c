/* stage.c — the exactly-once write, once for every database: a task
 * attempt's staging table (created, then filled batch by batch through the
 * database's bulk load), the driver's commit that moves the winners into the
 * target in one transaction, and the cleanup of a job's staging tables. What
 * differs between databases sits behind a pt__sql_db (pgwrite.c, mysql.c,
 * adbc.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "sql/sql.h"

struct pt__sql_stage {
  const pt__sql_db *db;
  void *conn;   /* owned; db->close */
  char *url;    /* owned: masks passwords in messages */
  char *table;  /* owned */
  pt_buf buf;   /* one batch's load bytes, reused */
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
  free(w);
}

int pt__sql_stage_open(const char *url, const char *table, const char *columns_ddl, int logged,
                       pt__sql_stage **out, pt_error *err) {
  *out = NULL;
  const pt__sql_db *db;
  PT_RETURN_NOT_OK(pt__sql_db_of(url, &db, err));
  pt__sql_stage *w = calloc(1, sizeof *w);
  if (!w || !(w->url = strdup(url)) || !(w->table = strdup(table))) {
    pt__sql_stage_free(w);
    return oom(err);
  }
  w->db = db;
  int rc = db->connect(url, &w->conn, err);
  if (rc == PT_OK) {
    pt_buf q = {0};
    const char *create =
        logged && db->create_staging_logged ? db->create_staging_logged : db->create_staging;
    if (pt__sql_put(&q, create) || db->quote(&q, table) || pt__sql_put(&q, " (") ||
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
  /* Each batch lands (commits) on its own, so a task killed half-way
   * leaves a staging table holding part of its rows, which the commit
   * never reads. */
  w->buf.len = 0;
  return w->db->bulk_load(w->conn, w->table, w->url, schema, batch, &w->buf, err);
}

int pt__sql_stage_logged(const char *url, const char *table, int *out, pt_error *err) {
  *out = 0;
  const pt__sql_db *db;
  PT_RETURN_NOT_OK(pt__sql_db_of(url, &db, err));
  if (!db->create_staging_logged) return PT_OK;
  void *c;
  PT_RETURN_NOT_OK(db->connect(url, &c, err));
  int exists = db->table_exists(c, table, url, err);
  db->close(c);
  if (exists < 0) return PT_EIO;
  *out = !exists;
  return PT_OK;
}

/* The index of the staging table that takes the most bytes, -1 with err. */
static int64_t largest(const pt__sql_db *db, void *c, const char *url,
                       const char *const *staging, int64_t n, pt_error *err) {
  int64_t best = 0, best_bytes = -1;
  for (int64_t i = 0; i < n; i++) {
    int64_t bytes;
    if (db->table_bytes(c, staging[i], url, &bytes, err) != PT_OK) return -1;
    if (bytes > best_bytes) {
      best = i;
      best_bytes = bytes;
    }
  }
  return best;
}

int pt__sql_commit(const char *url, const char *table, pt__sql_mode mode,
                   const struct ArrowSchema *schema, const char *const *staging, int64_t n,
                   int staged_logged, pt_error *err) {
  const pt__sql_db *db;
  PT_RETURN_NOT_OK(pt__sql_db_of(url, &db, err));
  pt_buf ddl = {0}, cols = {0}, q = {0};
  void *c = NULL;
  int created = 0, in_tx = 0;
  int64_t renamed = -1; /* the staging table that became table */
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
  if (!exists && staged_logged && db->create_staging_logged && in_tx && n > 0) {
    /* The staging tables were made with the target's column DDL, so the
     * largest one can become the target: its rows are not copied again
     * and their WAL was written by the tasks. A rollback gives it its
     * staging name back, and the cleanup drops it. */
    renamed = largest(db, c, url, staging, n, err);
    if (renamed < 0) {
      rc = PT_EIO;
      goto done;
    }
    if (pt__sql_put(&q, "ALTER TABLE ") || db->quote(&q, staging[renamed]) ||
        pt__sql_put(&q, " RENAME TO ") || db->quote(&q, table) || pt__buf_putc(&q, 0)) {
      rc = oom(err);
      goto done;
    }
    rc = db->exec(c, q.data, "cannot rename a staging table to the table", url, err);
    if (rc != PT_OK) goto done;
  } else if (!exists) {
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
    if (i == renamed) continue;
    q.len = 0;
    if (pt__sql_put(&q, "INSERT INTO ") || db->quote(&q, table) || pt__sql_put(&q, " (") ||
        pt__sql_put(&q, cols.data) || pt__sql_put(&q, ") SELECT ") ||
        pt__sql_put(&q, cols.data) || pt__sql_put(&q, " FROM ") || db->quote(&q, staging[i]) ||
        pt__buf_putc(&q, 0))
      rc = oom(err);
    else
      rc = db->exec(c, q.data, "cannot move a partition into the table", url, err);
  }
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
