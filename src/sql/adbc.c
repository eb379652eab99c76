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
#include <strings.h>

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

  AdbcStatusCode (*StatementBind)(struct AdbcStatement *, struct ArrowArray *,
                                  struct ArrowSchema *, struct AdbcError *);
  adbc_fn StatementBindStream;
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

/* The suffix that names the driver library in a URL (kept out of what the
 * driver is given). */
static const char DRIVER_MARK[] = "#adbc_driver=";

int pt__adbc_url_driver(const char *url, char *out, size_t size) {
  const char *m = strstr(url, DRIVER_MARK), *next;
  while (m && (next = strstr(m + 1, DRIVER_MARK)) != NULL) m = next; /* the last one */
  out[0] = 0;
  if (!m) return PT_OK;
  if (strlen(m + sizeof DRIVER_MARK - 1) >= size) return PT_ERANGE;
  snprintf(out, size, "%s", m + sizeof DRIVER_MARK - 1);
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
  char lib[512], own[512];
  /* What the driver is given ends where the URL names the library. */
  char uri_buf[4096];
  const char *mark = strstr(uri, DRIVER_MARK);
  if (mark) {
    snprintf(uri_buf, sizeof uri_buf, "%.*s", (int)(mark - uri), uri);
    uri = uri_buf;
  }
  if (pt__adbc_url_driver(url, own, sizeof own) != PT_OK) own[0] = 0;
  if (driver && *driver) snprintf(lib, sizeof lib, "%s", driver);
  else if (own[0]) snprintf(lib, sizeof lib, "%s", own);
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

/* ------------------------------------------------------------------------ */
/* Writing: stage.c's calls (pt__sql_db) over an ADBC connection. Statements
 * run with the connection's autocommit (each lands on its own) unless
 * stage.c's BEGIN opened a transaction; a task attempt's batches go into
 * its staging table through the driver's bulk ingest (adbc.ingest.*), the
 * driver's own fast path (COPY for PostgreSQL, a prepared INSERT for
 * SQLite). The column DDL is the database's: PostgreSQL's as pgwrite.c
 * writes it, SQLite's type affinities; other drivers are refused. */

typedef struct adbc_wconn {
  adbc_conn c;
  char *url; /* owned: masks passwords */
} adbc_wconn;

static void w_close(void *conn) {
  adbc_wconn *w = conn;
  if (!w) return;
  conn_close(&w->c);
  free(w->url);
  free(w);
}

static int w_exec(void *conn, const char *sql, const char *what, const char *url, pt_error *err);

static int w_connect(const char *url, void **out, pt_error *err) {
  *out = NULL;
  adbc_wconn *w = calloc(1, sizeof *w);
  if (!w || !(w->url = strdup(url))) {
    free(w);
    return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  }
  int rc = conn_open(url, NULL, &w->c, err);
  if (rc != PT_OK) {
    free(w->url);
    free(w);
    return rc;
  }
  if (strcmp(w->c.name, "sqlite") != 0 && strcmp(w->c.name, "postgresql") != 0) {
    rc = pt__errorf(err, PT_ENOTSUP,
                    "sql: adbc: writing supports the sqlite and postgresql drivers, not %s; "
                    "read through ADBC and write with a postgresql:// or mysql:// URL",
                    w->c.name);
    w_close(w);
    return rc;
  }
  /* One writer at a time in a SQLite file: the tasks' loads and the
   * commit wait for each other instead of failing on a busy database. */
  if (strcmp(w->c.name, "sqlite") == 0 &&
      (rc = w_exec(w, "PRAGMA busy_timeout = 60000", "cannot connect", url, err)) != PT_OK) {
    w_close(w);
    return rc;
  }
  *out = w;
  return PT_OK;
}

/* A new statement on w (st_made set), or an error naming what. */
static int w_statement(adbc_wconn *w, struct AdbcStatement *st, const char *what,
                       pt_error *err) {
  struct AdbcError e = {0};
  memset(st, 0, sizeof *st);
  AdbcStatusCode s = w->c.driver.StatementNew(&w->c.conn, st, &e);
  return s == ADBC_STATUS_OK ? PT_OK : adbc_fail(err, PT_EIO, what, w->url, s, &e);
}

static void w_statement_free(adbc_wconn *w, struct AdbcStatement *st) {
  struct AdbcError e = {0};
  w->c.driver.StatementRelease(st, &e);
  if (e.release) e.release(&e);
}

static int w_exec(void *conn, const char *sql, const char *what, const char *url, pt_error *err) {
  adbc_wconn *w = conn;
  (void)url;
  struct AdbcStatement st;
  PT_RETURN_NOT_OK(w_statement(w, &st, what, err));
  struct AdbcError e = {0};
  int64_t affected = -1;
  AdbcStatusCode s = w->c.driver.StatementSetSqlQuery(&st, sql, &e);
  if (s == ADBC_STATUS_OK) s = w->c.driver.StatementExecuteQuery(&st, NULL, &affected, &e);
  int rc = s == ADBC_STATUS_OK ? PT_OK : adbc_fail(err, PT_EIO, what, w->url, s, &e);
  w_statement_free(w, &st);
  return rc;
}

static int w_quote(pt_buf *out, const char *name) {
  PT_RETURN_NOT_OK(pt__buf_putc(out, '"'));
  for (const char *p = name; *p; p++) {
    if (*p == '"') PT_RETURN_NOT_OK(pt__buf_putc(out, '"'));
    PT_RETURN_NOT_OK(pt__buf_putc(out, *p));
  }
  return pt__buf_putc(out, '"');
}

/* SQLite's column types: its affinities for the Arrow types the SQLite
 * driver binds as they are. */
static int sqlite_columns_ddl(const struct ArrowSchema *schema, pt_buf *out, pt_error *err) {
  if (!schema || !schema->format || strcmp(schema->format, "+s") != 0 || schema->n_children < 1)
    return pt__errorf(err, PT_EINVAL, "sql: write: the data needs at least one column");
  for (int64_t c = 0; c < schema->n_children; c++) {
    const struct ArrowSchema *f = schema->children[c];
    const char *t = NULL;
    switch (f->dictionary ? 0 : f->format[0]) {
    case 'b': case 'c': case 'C': case 's': case 'S': case 'i': case 'I': case 'l': case 'L':
      t = "INTEGER";
      break;
    case 'e': case 'f': case 'g': t = "REAL"; break;
    case 'u': case 'U': t = f->format[1] ? NULL : "TEXT"; break;
    case 'z': case 'Z': t = f->format[1] ? NULL : "BLOB"; break;
    default: break;
    }
    if (!t) {
      char tn[128];
      pt_type_name(f, tn, sizeof tn);
      return pt__errorf(err, PT_ENOTSUP,
                        "sql: write: column \"%s\" is %s, which protium does not write to "
                        "SQLite; cast it to an integer, float, string or binary column",
                        f->name ? f->name : "", tn);
    }
    if ((c && pt__sql_put(out, ", ")) || w_quote(out, f->name ? f->name : "") ||
        pt__buf_putc(out, ' ') || pt__sql_put(out, t))
      return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  }
  if (pt__buf_putc(out, 0) != PT_OK) return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  out->len--; /* NUL-terminated, the NUL not counted */
  return PT_OK;
}

/* The DDL of the database behind an ADBC URL (stage.c asks by URL only
 * through pt__sql_columns_ddl, which passes the schema alone: the driver's
 * name decides). */
static int w_columns_ddl_for(const char *url, const struct ArrowSchema *schema, pt_buf *out,
                             pt_error *err) {
  char name[64];
  const char *uri;
  if (pt__adbc_url_split(url, name, sizeof name, &uri) != PT_OK)
    return pt__errorf(err, PT_EINVAL, "sql: adbc: URL must read adbc:DRIVER:...");
  if (strcmp(name, "sqlite") == 0) return sqlite_columns_ddl(schema, out, err);
  if (strcmp(name, "postgresql") == 0) return pt__pg_columns_ddl(schema, out, err);
  return pt__errorf(err, PT_ENOTSUP,
                    "sql: adbc: writing supports the sqlite and postgresql drivers, not %s; "
                    "read through ADBC and write with a postgresql:// or mysql:// URL", name);
}

static int w_bulk_load(void *conn, const char *table, const char *url,
                       const struct ArrowSchema *schema, const struct ArrowArray *batch,
                       pt_buf *scratch, pt_error *err) {
  adbc_wconn *w = conn;
  (void)url, (void)scratch;
  /* The driver takes the batch (and its schema) as its own: it gets copies. */
  struct ArrowArray values = {0};
  struct ArrowSchema types = {0};
  PT_RETURN_NOT_OK(pt_array_copy(schema, batch, &values, err));
  int rc = pt_schema_copy(schema, &types, err);
  if (rc != PT_OK) {
    values.release(&values);
    return rc;
  }
  struct AdbcStatement st;
  rc = w_statement(w, &st, "cannot load rows into the staging table", err);
  if (rc != PT_OK) {
    values.release(&values);
    types.release(&types);
    return rc;
  }
  struct AdbcError e = {0};
  AdbcStatusCode s =
      w->c.driver.StatementSetOption(&st, "adbc.ingest.target_table", table, &e);
  if (s == ADBC_STATUS_OK)
    s = w->c.driver.StatementSetOption(&st, "adbc.ingest.mode", "adbc.ingest.mode.append", &e);
  if (s == ADBC_STATUS_OK) s = w->c.driver.StatementBind(&st, &values, &types, &e);
  int64_t affected = -1;
  if (s == ADBC_STATUS_OK) s = w->c.driver.StatementExecuteQuery(&st, NULL, &affected, &e);
  rc = s == ADBC_STATUS_OK
           ? PT_OK
           : adbc_fail(err, PT_EIO, "cannot load rows into the staging table", w->url, s, &e);
  w_statement_free(w, &st);
  /* Moved into the driver unless it refused them before. */
  if (values.release) values.release(&values);
  if (types.release) types.release(&types);
  return rc;
}

/* The values of the first column (strings) of sql's rows; on PT_OK the
 * caller owns *names and each name (pt__free). */
static int w_query_names(adbc_wconn *w, const char *sql, const char *what, char ***names,
                         int64_t *n, pt_error *err) {
  *names = NULL;
  *n = 0;
  struct AdbcStatement st;
  PT_RETURN_NOT_OK(w_statement(w, &st, what, err));
  struct AdbcError e = {0};
  struct ArrowArrayStream stream = {0};
  struct ArrowSchema sch = {0};
  int64_t affected = -1, cap = 0;
  int rc = PT_OK;
  AdbcStatusCode s = w->c.driver.StatementSetSqlQuery(&st, sql, &e);
  if (s == ADBC_STATUS_OK) s = w->c.driver.StatementExecuteQuery(&st, &stream, &affected, &e);
  if (s != ADBC_STATUS_OK) {
    rc = adbc_fail(err, PT_EIO, what, w->url, s, &e);
    goto done;
  }
  if (stream.get_schema(&stream, &sch) != 0 || sch.n_children < 1) {
    rc = pt__errorf(err, PT_EIO, "sql: adbc: %s: the driver gave no columns", what);
    goto done;
  }
  for (;;) {
    struct ArrowArray b = {0};
    if (stream.get_next(&stream, &b) != 0) {
      rc = pt__errorf(err, PT_EIO, "sql: adbc: %s: reading the result failed", what);
      break;
    }
    if (!b.release) break;
    const struct ArrowArray *c = b.n_children > 0 ? b.children[0] : NULL;
    /* An empty result may carry any type (SQLite infers it from no rows). */
    int text = strcmp(sch.children[0]->format, "u") == 0;
    for (int64_t i = 0; c && text && i < c->length && rc == PT_OK; i++) {
      int64_t j = c->offset + i;
      const uint8_t *valid = c->buffers[0];
      if (valid && !(valid[j >> 3] >> (j & 7) & 1)) continue;
      const int32_t *off = c->buffers[1];
      const char *data = c->buffers[2];
      char *dup = pt__malloc((size_t)(off[j + 1] - off[j]) + 1);
      if (!dup || pt__grow((void **)names, &cap, *n + 1, sizeof **names) != PT_OK) {
        pt__free(dup);
        rc = pt__errorf(err, PT_ENOMEM, "sql: out of memory");
        break;
      }
      memcpy(dup, data + off[j], (size_t)(off[j + 1] - off[j]));
      dup[off[j + 1] - off[j]] = 0;
      (*names)[(*n)++] = dup;
    }
    if (c && !text && c->length > 0 && rc == PT_OK)
      rc = pt__errorf(err, PT_EIO, "sql: adbc: %s: the driver's names are not strings", what);
    b.release(&b);
    if (rc != PT_OK) break;
  }
done:
  if (sch.release) sch.release(&sch);
  if (stream.release) stream.release(&stream);
  w_statement_free(w, &st);
  if (rc != PT_OK) {
    for (int64_t i = 0; i < *n; i++) pt__free((*names)[i]);
    pt__free(*names);
    *names = NULL;
    *n = 0;
  }
  return rc;
}

static int w_list_tables(void *conn, const char *pattern, const char *url, char ***names,
                         int64_t *n, pt_error *err) {
  adbc_wconn *w = conn;
  (void)url;
  pt_buf q = {0};
  int rc = strcmp(w->c.name, "sqlite") == 0
               ? pt__sql_put(&q, "SELECT name FROM sqlite_master WHERE type = 'table' AND "
                                 "name LIKE '")
               : pt__sql_put(&q, "SELECT tablename::text FROM pg_tables WHERE schemaname = "
                                 "current_schema() AND tablename LIKE '");
  for (const char *p = pattern; *p && rc == PT_OK; p++)
    rc = (*p == '\'' ? pt__buf_putc(&q, '\'') : PT_OK) || pt__buf_putc(&q, *p);
  if (rc == PT_OK) rc = pt__sql_put(&q, "' ESCAPE '\\'") || pt__buf_putc(&q, 0);
  if (rc != PT_OK) {
    pt_buf_free(&q);
    return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  }
  rc = w_query_names(w, q.data, "cannot list the tables", names, n, err);
  pt_buf_free(&q);
  return rc;
}

static int w_table_exists(void *conn, const char *table, const char *url, pt_error *err) {
  char pattern[512];
  size_t k = 0;
  for (const char *p = table; *p && k + 3 < sizeof pattern; p++) {
    if (*p == '_' || *p == '%' || *p == '\\') pattern[k++] = '\\';
    pattern[k++] = *p;
  }
  pattern[k] = 0;
  char **names = NULL;
  int64_t n = 0;
  if (w_list_tables(conn, pattern, url, &names, &n, err) != PT_OK) return -1;
  int found = 0;
  for (int64_t i = 0; i < n; i++) {
    /* LIKE in SQLite ignores case, as SQLite's table names do. */
    found |= ((adbc_wconn *)conn)->c.name[0] == 's' ? strcasecmp(names[i], table) == 0
                                                     : strcmp(names[i], table) == 0;
    pt__free(names[i]);
  }
  pt__free(names);
  return found;
}

static int w_columns_ddl_unbound(const struct ArrowSchema *schema, pt_buf *out, pt_error *err) {
  (void)schema, (void)out;
  return pt__errorf(err, PT_EINVAL, "sql: adbc: the column DDL depends on the URL's driver");
}

const pt__sql_db pt__adbc_db = {
    .create_staging = "CREATE TABLE ",
    .begin = "BEGIN",
    .clear = "DELETE FROM ",
    .ddl_in_transaction = 1, /* SQLite and PostgreSQL */
    .connect = w_connect,
    .close = w_close,
    .exec = w_exec,
    .quote = w_quote,
    .columns_ddl = w_columns_ddl_unbound, /* see pt__adbc_columns_ddl */
    .bulk_load = w_bulk_load,
    .table_exists = w_table_exists,
    .list_tables = w_list_tables,
};

int pt__adbc_columns_ddl(const char *url, const struct ArrowSchema *schema, pt_buf *out,
                         pt_error *err) {
  return w_columns_ddl_for(url, schema, out, err);
}
