/* adbc.c — any database with an ADBC driver (Arrow Database Connectivity):
 * the driver's shared library loaded with dlopen and driven through the ADBC
 * C ABI (1.1.0, else 1.0.0; declared here from the specification, so no ADBC
 * headers are needed), a query per partition, its ArrowArrayStream handed to
 * the engine batch by batch: the rows never leave Arrow.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "sql/sql.h"

/* ------------------------------------------------------------------------ */
/* The ADBC C ABI (the parts protium calls). Structs are laid out exactly as
 * adbc.h's; the function table's order is the ABI. */

typedef uint8_t AdbcStatusCode; /* 0 = OK; see status_word() */
#define ADBC_STATUS_OK 0
#define ADBC_STATUS_NOT_IMPLEMENTED 2
#define ADBC_VERSION_1_0_0 1000000
#define ADBC_VERSION_1_1_0 1001000

struct AdbcError {
  char *message;        /* owned by the driver until release */
  int32_t vendor_code;
  char sqlstate[5];
  void (*release)(struct AdbcError *error);
  void *private_data;   /* 1.1.0 */
  void *private_driver; /* 1.1.0 */
};

struct AdbcDriver;

/* Database, connection and statement handles share one shape. */
struct AdbcDatabase {
  void *private_data;
  struct AdbcDriver *private_driver;
};
struct AdbcConnection {
  void *private_data;
  struct AdbcDriver *private_driver;
};
struct AdbcStatement {
  void *private_data;
  struct AdbcDriver *private_driver;
};

typedef AdbcStatusCode (*adbc_fn)(void); /* a slot protium does not call */

struct AdbcDriver {
  void *private_data;
  void *private_manager;
  AdbcStatusCode (*release)(struct AdbcDriver *, struct AdbcError *);

  AdbcStatusCode (*DatabaseInit)(struct AdbcDatabase *, struct AdbcError *);
  AdbcStatusCode (*DatabaseNew)(struct AdbcDatabase *, struct AdbcError *);
  AdbcStatusCode (*DatabaseSetOption)(struct AdbcDatabase *, const char *, const char *,
                                      struct AdbcError *);
  AdbcStatusCode (*DatabaseRelease)(struct AdbcDatabase *, struct AdbcError *);

  adbc_fn ConnectionCommit, ConnectionGetInfo, ConnectionGetObjects, ConnectionGetTableSchema,
      ConnectionGetTableTypes;
  AdbcStatusCode (*ConnectionInit)(struct AdbcConnection *, struct AdbcDatabase *,
                                   struct AdbcError *);
  AdbcStatusCode (*ConnectionNew)(struct AdbcConnection *, struct AdbcError *);
  adbc_fn ConnectionSetOption, ConnectionReadPartition;
  AdbcStatusCode (*ConnectionRelease)(struct AdbcConnection *, struct AdbcError *);
  adbc_fn ConnectionRollback;

  adbc_fn StatementBind, StatementBindStream;
  AdbcStatusCode (*StatementExecuteQuery)(struct AdbcStatement *, struct ArrowArrayStream *,
                                          int64_t *, struct AdbcError *);
  adbc_fn StatementExecutePartitions, StatementGetParameterSchema;
  AdbcStatusCode (*StatementNew)(struct AdbcConnection *, struct AdbcStatement *,
                                 struct AdbcError *);
  adbc_fn StatementPrepare;
  AdbcStatusCode (*StatementRelease)(struct AdbcStatement *, struct AdbcError *);
  AdbcStatusCode (*StatementSetOption)(struct AdbcStatement *, const char *, const char *,
                                       struct AdbcError *);
  AdbcStatusCode (*StatementSetSqlQuery)(struct AdbcStatement *, const char *,
                                         struct AdbcError *);
  adbc_fn StatementSetSubstraitPlan;

  /* 1.1.0 only: read when the driver accepted ADBC_VERSION_1_1_0. */
  adbc_fn ErrorGetDetailCount, ErrorGetDetail, ErrorFromArrayStream;
  adbc_fn DatabaseGetOption, DatabaseGetOptionBytes, DatabaseGetOptionDouble,
      DatabaseGetOptionInt, DatabaseSetOptionBytes, DatabaseSetOptionDouble, DatabaseSetOptionInt;
  adbc_fn ConnectionCancel, ConnectionGetOption, ConnectionGetOptionBytes,
      ConnectionGetOptionDouble, ConnectionGetOptionInt, ConnectionGetStatistics,
      ConnectionGetStatisticNames, ConnectionSetOptionBytes, ConnectionSetOptionDouble,
      ConnectionSetOptionInt;
  adbc_fn StatementCancel;
  AdbcStatusCode (*StatementExecuteSchema)(struct AdbcStatement *, struct ArrowSchema *,
                                           struct AdbcError *);
  adbc_fn StatementGetOption, StatementGetOptionBytes, StatementGetOptionDouble,
      StatementGetOptionInt, StatementSetOptionBytes, StatementSetOptionDouble,
      StatementSetOptionInt;
};

typedef AdbcStatusCode (*AdbcDriverInitFunc)(int version, void *driver, struct AdbcError *error);

/* ------------------------------------------------------------------------ */
/* URLs and drivers */

int pt__adbc_url_split(const char *url, char *name, size_t name_size, const char **uri) {
  /* adbc:NAME:REST; NAME is letters, digits, '_' and '-'. */
  if (strncmp(url, "adbc:", 5) != 0) return PT_EINVAL;
  const char *p = url + 5, *e = p;
  while (*e && (isalnum((unsigned char)*e) || *e == '_' || *e == '-')) e++;
  if (e == p || *e != ':' || (size_t)(e - p) >= name_size) return PT_EINVAL;
  memcpy(name, p, (size_t)(e - p));
  name[e - p] = 0;
  /* SQLite takes a file name (or ":memory:"), not a URL: adbc:sqlite:///a.db
   * is the file /a.db. Other drivers take the URL as their scheme has it:
   * adbc:postgresql://host/db gives postgresql://host/db. */
  if (strcmp(name, "sqlite") == 0) {
    *uri = e + 1;
    if (strncmp(*uri, "//", 2) == 0) *uri += 2;
  } else {
    *uri = p;
  }
  return PT_OK;
}

static const char *status_word(AdbcStatusCode s) {
  static const char *const words[] = {
      "ok", "unknown error", "not implemented", "not found", "already exists",
      "invalid argument", "invalid state", "invalid data", "integrity error", "internal error",
      "I/O error", "cancelled", "timeout", "unauthenticated", "unauthorized"};
  return s < sizeof words / sizeof words[0] ? words[s] : "error";
}

/* The driver's message (or the status's word), url's password masked; the
 * driver's error released. */
static int adbc_fail(pt_error *err, int code, const char *what, const char *url,
                     AdbcStatusCode st, struct AdbcError *e) {
  char msg[PT_ERROR_SIZE];
  snprintf(msg, sizeof msg, "%s", e->message ? e->message : status_word(st));
  if (e->release) e->release(e);
  memset(e, 0, sizeof *e);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = 0;
  pt__sql_mask_password(msg, url);
  return pt__errorf(err, code, "sql: adbc: %s: %s", what, msg);
}

/* "AdbcDriver" + Name capitalised + "Init": the entry point a driver
 * exports under its own name beside the common AdbcDriverInit. */
static void own_entry(const char *name, char *out, size_t size) {
  char cap[64];
  snprintf(cap, sizeof cap, "%s", name);
  cap[0] = (char)toupper((unsigned char)cap[0]);
  for (char *c = cap; *c; c++)
    if (*c == '-' || *c == '_') *c = 'X'; /* never a symbol: the common one is tried next */
  snprintf(out, size, "AdbcDriver%sInit", cap);
}

typedef struct adbc_conn {
  struct AdbcDriver driver; /* the 1.1.0 size, whichever version was accepted */
  int version;
  char name[64];            /* the URL's driver name: sqlite, postgresql ... */
  struct AdbcDatabase db;
  struct AdbcConnection conn;
  int db_made, conn_made;
} adbc_conn;

static void conn_close(adbc_conn *c) {
  struct AdbcError e = {0};
  if (c->conn_made) c->driver.ConnectionRelease(&c->conn, &e);
  if (e.release) e.release(&e);
  memset(&e, 0, sizeof e);
  if (c->db_made) c->driver.DatabaseRelease(&c->db, &e);
  if (e.release) e.release(&e);
  memset(&e, 0, sizeof e);
  if (c->driver.release) c->driver.release(&c->driver, &e);
  if (e.release) e.release(&e);
  /* The library stays loaded: drivers keep process-wide state (type
   * tables, TLS, threads) that dlclose would pull from under them. */
}

/* Loads the driver library (driver: a path; NULL or empty: found by name as
 * libadbc_driver_NAME.so on the loader's path) and connects to uri. */
static int conn_open(const char *url, const char *driver, adbc_conn *c, pt_error *err) {
  memset(c, 0, sizeof *c);
  char name[64];
  const char *uri;
  if (pt__adbc_url_split(url, name, sizeof name, &uri) != PT_OK)
    return pt__errorf(err, PT_EINVAL,
                      "sql: adbc: URL must read adbc:DRIVER:..., e.g. adbc:sqlite:///path.db or "
                      "adbc:postgresql://user@host/db");
  snprintf(c->name, sizeof c->name, "%s", name);
  char lib[512];
  if (driver && *driver) snprintf(lib, sizeof lib, "%s", driver);
  else snprintf(lib, sizeof lib, "libadbc_driver_%s.so", name);
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h)
    return pt__errorf(err, PT_EINVAL,
                      "sql: adbc: cannot load the %s driver: %s; give the driver library's path "
                      "(read_sql's adbc_driver option) or a directory holding "
                      "libadbc_driver_%s.so (sql.adbc.driver_path)", name, dlerror(), name);
  char sym[96];
  own_entry(name, sym, sizeof sym);
  AdbcDriverInitFunc init = (AdbcDriverInitFunc)(uintptr_t)dlsym(h, sym);
  if (!init) init = (AdbcDriverInitFunc)(uintptr_t)dlsym(h, "AdbcDriverInit");
  if (!init)
    return pt__errorf(err, PT_ENOTSUP,
                      "sql: adbc: %s exports neither %s nor AdbcDriverInit; is it an ADBC "
                      "driver?", lib, sym);
  struct AdbcError e = {0};
  AdbcStatusCode st = init(ADBC_VERSION_1_1_0, &c->driver, &e);
  c->version = ADBC_VERSION_1_1_0;
  if (st != ADBC_STATUS_OK) {
    /* A 1.0.0 driver refuses 1.1.0: the fields past 1.0.0 are left alone. */
    if (e.release) e.release(&e);
    memset(&e, 0, sizeof e);
    memset(&c->driver, 0, sizeof c->driver);
    st = init(ADBC_VERSION_1_0_0, &c->driver, &e);
    c->version = ADBC_VERSION_1_0_0;
  }
  if (st != ADBC_STATUS_OK) return adbc_fail(err, PT_ENOTSUP, "the driver did not start", url, st, &e);
  if ((st = c->driver.DatabaseNew(&c->db, &e)) != ADBC_STATUS_OK) goto fail;
  c->db_made = 1;
  if ((st = c->driver.DatabaseSetOption(&c->db, "uri", uri, &e)) != ADBC_STATUS_OK) goto fail;
  if ((st = c->driver.DatabaseInit(&c->db, &e)) != ADBC_STATUS_OK) goto fail;
  if ((st = c->driver.ConnectionNew(&c->conn, &e)) != ADBC_STATUS_OK) goto fail;
  c->conn_made = 1;
  if ((st = c->driver.ConnectionInit(&c->conn, &c->db, &e)) != ADBC_STATUS_OK) goto fail;
  return PT_OK;
fail: {
  int rc = adbc_fail(err, PT_EIO, "cannot connect", url, st, &e);
  conn_close(c);
  return rc;
}
}

/* ------------------------------------------------------------------------ */
/* Reading */

struct pt__adbc_reader {
  adbc_conn c;
  struct AdbcStatement stmt;
  int stmt_made;
  struct ArrowArrayStream stream; /* release NULL when none */
  struct ArrowSchema schema;      /* what batches are given as; owned */
  struct ArrowSchema got;         /* the stream's own schema; owned */
  char *url;                      /* owned: masks passwords */
  int done;
  int executed; /* 0: the query runs at the first batch, when its size is known */
};

void pt__adbc_reader_free(pt__adbc_reader *r) {
  if (!r) return;
  if (r->stream.release) r->stream.release(&r->stream);
  if (r->schema.release) r->schema.release(&r->schema);
  if (r->got.release) r->got.release(&r->got);
  struct AdbcError e = {0};
  if (r->stmt_made) r->c.driver.StatementRelease(&r->stmt, &e);
  if (e.release) e.release(&e);
  conn_close(&r->c);
  free(r->url);
  free(r);
}

const struct ArrowSchema *pt__adbc_reader_schema(const pt__adbc_reader *r) { return &r->schema; }

static int stream_fail(pt__adbc_reader *r, const char *what, pt_error *err) {
  const char *m = r->stream.get_last_error ? r->stream.get_last_error(&r->stream) : NULL;
  char msg[PT_ERROR_SIZE];
  snprintf(msg, sizeof msg, "%s", m ? m : "error");
  pt__sql_mask_password(msg, r->url);
  return pt__errorf(err, PT_EIO, "sql: adbc: %s: %s", what, msg);
}

/* Bytes a row of schema takes about, for drivers that size batches in
 * bytes: fixed widths as they are, 24 for a variable-width value. */
static int64_t row_bytes(const struct ArrowSchema *schema) {
  int64_t n = 0;
  for (int64_t i = 0; i < schema->n_children; i++) {
    const char *f = schema->children[i]->format;
    switch (f ? f[0] : 0) {
    case 'b': case 'c': case 'C': n += 1; break;
    case 's': case 'S': case 'e': n += 2; break;
    case 'i': case 'I': case 'f': n += 4; break;
    case 'l': case 'L': case 'g': case 't': n += 8; break;
    case 'd': n += 16; break;
    default: n += 24; break;
    }
  }
  return n > 0 ? n : 1;
}

/* Runs the query into r->stream and reads its schema into r->got; first
 * tells the driver batch_rows (> 0) as the batch size where it has an
 * option for one: SQLite's rows, PostgreSQL's byte hint (the driver's
 * estimate, so its batches come out about that many rows). */
static int execute(pt__adbc_reader *r, int64_t batch_rows, pt_error *err) {
  struct AdbcError e = {0};
  AdbcStatusCode st;
  r->executed = 1;
  if (batch_rows > 0 && r->c.driver.StatementSetOption) {
    char key[64] = "", value[32];
    if (strcmp(r->c.name, "sqlite") == 0) {
      snprintf(key, sizeof key, "adbc.sqlite.query.batch_rows");
      snprintf(value, sizeof value, "%lld", (long long)batch_rows);
    } else if (strcmp(r->c.name, "postgresql") == 0) {
      snprintf(key, sizeof key, "adbc.postgresql.batch_size_hint_bytes");
      snprintf(value, sizeof value, "%lld", (long long)(batch_rows * row_bytes(&r->schema)));
    }
    /* A driver without the option batches as it likes: not an error. */
    if (key[0] && r->c.driver.StatementSetOption(&r->stmt, key, value, &e) != ADBC_STATUS_OK &&
        e.release)
      e.release(&e);
    memset(&e, 0, sizeof e);
  }
  int64_t affected = -1;
  st = r->c.driver.StatementExecuteQuery(&r->stmt, &r->stream, &affected, &e);
  if (st != ADBC_STATUS_OK) {
    memset(&r->stream, 0, sizeof r->stream);
    return adbc_fail(err, PT_EINVAL, "the query was refused", r->url, st, &e);
  }
  if (r->stream.get_schema(&r->stream, &r->got) != 0)
    return stream_fail(r, "the query's columns", err);
  return PT_OK;
}

int pt__adbc_reader_open(const char *url, const char *driver, const char *query,
                         const struct ArrowSchema *expect, int describe_only,
                         pt__adbc_reader **out, pt_error *err) {
  *out = NULL;
  pt__adbc_reader *r = calloc(1, sizeof *r);
  if (!r || !(r->url = strdup(url))) {
    free(r);
    return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  }
  int rc = conn_open(url, driver, &r->c, err);
  if (rc != PT_OK) {
    free(r->url);
    free(r);
    return rc;
  }
  struct AdbcError e = {0};
  AdbcStatusCode st = r->c.driver.StatementNew(&r->c.conn, &r->stmt, &e);
  if (st == ADBC_STATUS_OK) {
    r->stmt_made = 1;
    st = r->c.driver.StatementSetSqlQuery(&r->stmt, query, &e);
  }
  if (st != ADBC_STATUS_OK) {
    rc = adbc_fail(err, PT_EINVAL, "the query was refused", url, st, &e);
    goto fail;
  }
  if (describe_only && r->c.version >= ADBC_VERSION_1_1_0 && r->c.driver.StatementExecuteSchema) {
    /* The columns without running the query, where the driver can. */
    st = r->c.driver.StatementExecuteSchema(&r->stmt, &r->schema, &e);
    if (st == ADBC_STATUS_OK) {
      r->done = 1;
      *out = r;
      return PT_OK;
    }
    if (st != ADBC_STATUS_NOT_IMPLEMENTED) {
      rc = adbc_fail(err, PT_EINVAL, "the query was refused", url, st, &e);
      goto fail;
    }
    if (e.release) e.release(&e);
    memset(&e, 0, sizeof e);
  }
  if (expect && !describe_only) {
    /* A task's read: the columns are known, and the query runs when the
     * first batch is asked for, with the driver told its size. */
    rc = pt_schema_copy(expect, &r->schema, err);
    if (rc != PT_OK) goto fail;
    *out = r;
    return PT_OK;
  }
  /* Else the stream's schema: a driver that infers types from the rows
   * (SQLite) reads its first batch for it. */
  rc = execute(r, 0, err);
  if (rc != PT_OK) goto fail;
  rc = pt_schema_copy(expect ? expect : &r->got, &r->schema, err);
  if (rc == PT_OK && (!r->schema.format || strcmp(r->schema.format, "+s") != 0))
    rc = pt__errorf(err, PT_EFORMAT, "sql: adbc: the driver's result is not a struct of columns");
  if (rc != PT_OK) goto fail;
  if (describe_only) {
    r->stream.release(&r->stream);
    r->done = 1;
  }
  *out = r;
  return PT_OK;
fail:
  pt__adbc_reader_free(r);
  return rc;
}

/* A parent made here around children moved out of a driver's batch (and
 * null columns made here), released child by child. */
static void release_parent(struct ArrowArray *a) {
  for (int64_t i = 0; i < a->n_children; i++)
    if (a->children[i]->release) a->children[i]->release(a->children[i]);
  free(a->private_data); /* the children's block */
  free(a->children);
  free((void *)a->buffers);
  a->release = NULL;
}

/* A column of n nulls of the type of field. */
static int null_column(const struct ArrowSchema *field, int64_t n, struct ArrowArray *out,
                       pt_error *err) {
  struct ArrowSchema s = {0};
  pt_builder *b = NULL;
  struct ArrowArray whole = {0};
  int rc = pt_schema_init(&s, "+s", "", 0, 1, err);
  if (rc == PT_OK) {
    if (s.children[0]->release) s.children[0]->release(s.children[0]);
    rc = pt_schema_copy(field, s.children[0], err);
  }
  if (rc == PT_OK) rc = pt_builder_new(&s, &b, err);
  for (int64_t i = 0; i < n && rc == PT_OK; i++) {
    rc = pt_builder_append_null(pt_builder_child(b, 0), 1);
    if (rc == PT_OK) rc = pt_builder_append_row(b);
    if (rc != PT_OK) rc = pt__errorf(err, rc, "sql: adbc: %s", pt_builder_last_error(b));
  }
  if (rc == PT_OK) rc = pt_builder_finish(b, &whole, err);
  if (rc == PT_OK) {
    *out = *whole.children[0]; /* moved */
    whole.children[0]->release = NULL;
    whole.release(&whole);
  }
  pt_builder_free(b);
  if (s.release) s.release(&s);
  return rc;
}

/* Whether every row of c is null; null_count may be -1 (not computed). */
static int all_null(const struct ArrowArray *c) {
  if (c->null_count >= 0) return c->null_count == c->length;
  const uint8_t *v = c->n_buffers > 0 ? c->buffers[0] : NULL;
  if (!v) return c->length == 0;
  for (int64_t i = 0; i < c->length; i++) {
    int64_t j = c->offset + i;
    if (v[j >> 3] >> (j & 7) & 1) return 0;
  }
  return 1;
}

/* batch (of r->got's types) as r->schema's types: the same column by
 * column, but for columns whose type differs and that hold only nulls
 * (a driver that infers types from the rows sees no type in them), made
 * again as nulls of the expected type. Anything else that differs is
 * refused by name. */
static int conform(pt__adbc_reader *r, struct ArrowArray *batch, struct ArrowArray *out,
                   pt_error *err) {
  int64_t n = r->schema.n_children;
  if (r->got.n_children != n || batch->n_children != n) {
    batch->release(batch);
    return pt__errorf(err, PT_EINVAL,
                      "sql: adbc: this partition has %lld columns, not %lld as when the dataset "
                      "was made", (long long)r->got.n_children, (long long)n);
  }
  int same = 1;
  for (int64_t i = 0; i < n && same; i++) {
    char a[256], b[256];
    pt_type_name(r->schema.children[i], a, sizeof a);
    pt_type_name(r->got.children[i], b, sizeof b);
    same = strcmp(a, b) == 0;
  }
  if (same) {
    *out = *batch; /* moved */
    batch->release = NULL;
    return PT_OK;
  }
  if (batch->offset != 0 || batch->null_count != 0) {
    batch->release(batch);
    return pt__errorf(err, PT_ENOTSUP, "sql: adbc: the driver gave a sliced batch or a null row");
  }
  struct ArrowArray *kids = calloc((size_t)n, sizeof *kids);
  struct ArrowArray **ptrs = calloc((size_t)n, sizeof *ptrs);
  const void **bufs = calloc(1, sizeof *bufs);
  int rc = kids && ptrs && bufs ? PT_OK : pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  for (int64_t i = 0; i < n && rc == PT_OK; i++) {
    char a[256], b[256];
    pt_type_name(r->schema.children[i], a, sizeof a);
    pt_type_name(r->got.children[i], b, sizeof b);
    struct ArrowArray *c = batch->children[i];
    if (strcmp(a, b) == 0) {
      kids[i] = *c; /* moved */
      c->release = NULL;
    } else if (all_null(c)) {
      rc = null_column(r->schema.children[i], batch->length, &kids[i], err);
    } else {
      rc = pt__errorf(err, PT_EINVAL,
                      "sql: adbc: column \"%s\" is %s in this partition but %s in its first "
                      "rows; CAST it in the query",
                      r->schema.children[i]->name ? r->schema.children[i]->name : "", b, a);
    }
  }
  if (rc == PT_OK) {
    for (int64_t i = 0; i < n; i++) ptrs[i] = &kids[i];
    memset(out, 0, sizeof *out);
    out->length = batch->length;
    out->n_buffers = 1;
    out->buffers = bufs;
    out->n_children = n;
    out->children = ptrs;
    out->private_data = kids;
    out->release = release_parent;
    kids = NULL, ptrs = NULL, bufs = NULL; /* the parent's now */
  } else {
    for (int64_t i = 0; i < n; i++)
      if (kids && kids[i].release) kids[i].release(&kids[i]);
  }
  free(kids);
  free(ptrs);
  free((void *)bufs);
  batch->release(batch); /* what was not moved out */
  return rc;
}

int pt__adbc_reader_next(pt__adbc_reader *r, int64_t batch_rows, struct ArrowArray *out,
                         pt_error *err) {
  out->release = NULL;
  if (!r->done && !r->executed) {
    int rc = execute(r, batch_rows, err);
    if (rc != PT_OK) {
      r->done = 1;
      return rc;
    }
  }
  while (!r->done) {
    struct ArrowArray b = {0};
    if (r->stream.get_next(&r->stream, &b) != 0) {
      r->done = 1;
      return stream_fail(r, "reading rows failed", err);
    }
    if (!b.release) {
      r->done = 1;
      return PT_OK;
    }
    if (b.length == 0) {
      b.release(&b);
      continue;
    }
    return conform(r, &b, out, err);
  }
  return PT_OK;
}
