/* sql.h — what the SQL connectors share inside protium: the decoder of
 * PostgreSQL's binary COPY format into Arrow builders. It needs no server and
 * no libpq, so it is unit-tested and fuzzed on bytes alone.
 */
#ifndef PT_SQL_H
#define PT_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "protium.h"

/* The column kinds the binary COPY decoder understands; each maps one or more
 * PostgreSQL type OIDs to one Arrow type (docs/sql.md has the table). */
typedef enum pt__pg_kind {
  PT__PG_BOOL,        /* bool -> bool */
  PT__PG_INT2,        /* int2 -> int16 */
  PT__PG_INT4,        /* int4 -> int32 */
  PT__PG_INT8,        /* int8 -> int64 */
  PT__PG_FLOAT4,      /* float4 -> float32 */
  PT__PG_FLOAT8,      /* float8 -> float64 */
  PT__PG_TEXT,        /* text, varchar, bpchar, name, json -> utf8 */
  PT__PG_JSONB,       /* jsonb (version byte 1, then text) -> utf8 */
  PT__PG_BYTEA,       /* bytea -> binary */
  PT__PG_DATE,        /* date -> date32 */
  PT__PG_TIMESTAMP,   /* timestamp -> timestamp[us] */
  PT__PG_TIMESTAMPTZ, /* timestamptz -> timestamp[us, tz=UTC] */
  PT__PG_UUID,        /* uuid -> fixed_size_binary(16) */
  PT__PG_NUMERIC,     /* numeric(p, s), p <= 38 -> decimal128(p, s) */
  PT__PG_TIME,        /* time -> time64[us] */
  PT__PG_INTERVAL,    /* interval -> month_day_nano interval */
} pt__pg_kind;

/* A one-dimensional array of a kind (list<item: the kind's type>); enum
 * columns (and arrays of them) are read as PT__PG_TEXT, their labels. */
#define PT__PG_ARRAY 0x100
#define PT__PG_ARRAY_OF(k) ((pt__pg_kind)(PT__PG_ARRAY | (int)(k)))
#define PT__PG_IS_ARRAY(k) (((int)(k) & PT__PG_ARRAY) != 0)
#define PT__PG_ELEM(k) ((pt__pg_kind)((int)(k) & ~PT__PG_ARRAY))

/* The kind of a PostgreSQL type OID. PT_ENOTSUP (message naming column and
 * type_name) if protium has no mapping for it: the read is refused rather
 * than a column silently dropped. */
int pt__pg_kind_of(uint32_t oid, const char *column, const char *type_name, pt__pg_kind *out,
                   pt_error *err);

/* The Arrow format string of a kind ("b", "s", "tsu:UTC" ...; "+l" for an
 * array), numeric aside (its format depends on the type modifier). Static. */
const char *pt__pg_kind_format(pt__pg_kind kind);

/* A struct schema of n columns (names[i], kinds[i]), all nullable, into *out
 * (caller owns it). typmods (may be NULL: all -1) are PostgreSQL's type
 * modifiers; a numeric column needs one with precision <= 38 and
 * 0 <= scale <= precision, else it is refused by name (PT_ENOTSUP). */
int pt__pg_schema(int64_t n, const char *const *names, const pt__pg_kind *kinds,
                  const int32_t *typmods, struct ArrowSchema *out, pt_error *err);

/* State of one binary COPY stream being decoded into a struct builder made
 * from pt__pg_schema. Fields are private to pgcopy.c. */
typedef struct pt__pgcopy {
  int64_t n_columns;
  const pt__pg_kind *kinds; /* borrowed, n_columns long; must outlive the decoder */
  pt_builder *builder;      /* borrowed struct builder, one child per column */
  int header_done;          /* 1 once the 11-byte signature and header are read */
  int trailer_seen;         /* 1 after the -1 field count: nothing may follow */
  int64_t rows;             /* tuples decoded so far */
  const int32_t *typmods;   /* borrowed, n_columns long, or NULL: numeric columns'
                               precision and scale (pt__pgcopy_set_typmods) */
} pt__pgcopy;

/* Starts a decoder; borrows kinds and builder. */
void pt__pgcopy_init(pt__pgcopy *d, int64_t n_columns, const pt__pg_kind *kinds,
                     pt_builder *builder);

/* Gives the decoder the columns' type modifiers (as pt__pg_schema took
 * them; borrowed, must outlive the decoder): numeric values then go
 * straight from base-10000 digits to decimal128, without text. */
void pt__pgcopy_set_typmods(pt__pgcopy *d, const int32_t *typmods);

/* Decodes the next piece of the stream: data holds whole tuples (the first
 * piece starts with the file header; PostgreSQL sends one tuple per CopyData
 * message). Every length is checked against what remains, fixed-width fields
 * against their width, the field count against n_columns: a corrupt or
 * hostile stream gives PT_EFORMAT naming the row and column, never a read
 * out of bounds. On failure the builder may hold a partial row: discard it. */
int pt__pgcopy_feed(pt__pgcopy *d, const uint8_t *data, int64_t len, pt_error *err);

/* Checks the stream ended properly (trailer seen). */
int pt__pgcopy_finish(const pt__pgcopy *d, pt_error *err);

/* Runs query on the PostgreSQL server of url (a libpq connection URI or
 * key=value string; the password may also come from PGPASSWORD) and reads
 * every row as one struct array. On PT_OK the caller owns *schema_out and
 * *array_out; on failure both are left released. Error messages never hold
 * the URL's password. */
int pt__pg_read_query(const char *url, const char *query, struct ArrowSchema *schema_out,
                      struct ArrowArray *array_out, pt_error *err);

/* A query read in batches: described at open (an unmappable column is
 * refused by name before any row moves), then streamed through binary COPY.
 * Fields are private to pg.c. */
typedef struct pt__pg_reader pt__pg_reader;

/* Connects to url and describes query; unless describe_only, starts its
 * COPY. On PT_OK the caller owns *out (pt__pg_reader_free). */
int pt__pg_reader_open(const char *url, const char *query, int describe_only,
                       pt__pg_reader **out, pt_error *err);
/* The query's Arrow schema; borrowed from r. */
const struct ArrowSchema *pt__pg_reader_schema(const pt__pg_reader *r);
/* The next batch of at most batch_rows rows into *out (caller owns it);
 * out->release NULL once the rows are all read. */
int pt__pg_reader_next(pt__pg_reader *r, int64_t batch_rows, struct ArrowArray *out,
                       pt_error *err);
/* Closes the connection (abandoning a COPY under way) and frees r. NULL is
 * fine. */
void pt__pg_reader_free(pt__pg_reader *r);

/* The password of a scheme://user:password@host URL (or of libpq's
 * key=value form's password keyword) into out (empty if there is none). PT_ERANGE if it does not fit in size bytes. */
int pt__sql_url_password(const char *url, char *out, size_t size);

/* url with password put in when url holds none (a URL's userinfo, %XX
 * encoded; libpq's key=value form: a password keyword); url as it is when
 * it has a password or password is NULL or empty. On PT_OK the caller owns
 * *out (pt__free). */
/* The host and port url names ("" where it names none): scheme://...@host:port/,
 * [IPv6] hosts without brackets, adbc:DRIVER: URLs by their driver's URL,
 * libpq's key=value form by its host= and port=. Truncated to the sizes. */
void pt__sql_url_host(const char *url, char *host, size_t host_size, char *port,
                      size_t port_size);
int pt__sql_url_with_password(const char *url, const char *password, char **out,
                              pt_error *err);

/* Replaces every occurrence of url's password (as written and %XX-decoded)
 * and of the environment's password for url's database (PGPASSWORD, or
 * MYSQL_PWD for mysql:// and mariadb:// URLs) in text (NUL-terminated,
 * edited in place) by "***". */
void pt__sql_mask_password(char *text, const char *url);

/* Spark JDBC's partitioning of a read on a numeric column: *n_out WHERE
 * predicates (fewer than num_partitions when upper - lower is smaller), the
 * first "col < b1 OR col IS NULL", the middle ones "col >= a AND col < b",
 * the last "col >= a"; one partition gives "1=1". The column text is used
 * as given (quote it if it needs quoting). On PT_OK the caller owns *out
 * (free with pt__sql_predicates_free). */
int pt__sql_partition_predicates(const char *column, int64_t lower, int64_t upper,
                                 int64_t num_partitions, char ***out, int64_t *n_out,
                                 pt_error *err);
void pt__sql_predicates_free(char **preds, int64_t n);

/* ------------------------------------------------------------------------ */
/* Writing: each task attempt loads its rows into a staging table of its
 * own (stage.c, through the database's bulk load: COPY in pgwrite.c,
 * INSERTs in mysql.c), or, into a new PostgreSQL table, into the job's one
 * shared staging table in a transaction of its own; the driver's commit
 * moves the winners into the target in one transaction and drops the job's
 * staging tables. */

typedef enum pt__sql_mode {
  PT__SQL_APPEND = 0,    /* create the table if missing, add the rows */
  PT__SQL_OVERWRITE = 1, /* create it if missing, else replace its rows */
  PT__SQL_ERROR = 2,     /* the table must not exist: created with the rows */
} pt__sql_mode;

/* "a" bigint, "b" text ... for schema's columns into out (NUL-terminated,
 * the NUL not counted in out->len). PT_ENOTSUP naming a column of a type
 * protium does not write. */
int pt__pg_columns_ddl(const struct ArrowSchema *schema, pt_buf *out, pt_error *err);

/* Appends batch's rows to out in binary COPY format: the file header first
 * when header is set; no trailer (add the int16 -1 when the stream ends).
 * On failure out is as it was. */
int pt__pgcopy_encode(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                      int header, pt_buf *out, pt_error *err);

/* The database-specific half of the exactly-once write (stage.c holds the
 * other half, the same for every database): pt__pg_db (pgwrite.c) and
 * pt__my_db (mysql.c). conn is the database's connection handle. Every
 * function that takes url masks its password in messages; err may be
 * NULL. */
typedef struct pt__sql_db {
  const char *create_staging; /* "CREATE UNLOGGED TABLE " ... (a trailing space) */
  /* The job's one shared staging table, which may become the target itself
   * (a write into a new table renames it in the commit, so it must be
   * logged); NULL where the database has no such path. */
  const char *create_staging_logged;
  /* The system column holding the id of the transaction that wrote a row
   * (PostgreSQL's xmin): it tells the attempts in the shared staging table
   * apart. NULL where the database has no shared staging (its DDL commits
   * on its own, or rows carry no such id). */
  const char *row_xact;
  const char *begin;          /* the statement that starts a transaction */
  const char *clear;          /* the overwrite's "TRUNCATE TABLE " or "DELETE FROM ",
                                 run inside the transaction */
  int ddl_in_transaction;     /* 1: CREATE TABLE rolls back with the transaction;
                                 0: it commits on its own (the commit then drops a
                                 table it made when the transaction fails) */
  /* On PT_OK the caller owns *conn (close). */
  int (*connect)(const char *url, void **conn, pt_error *err);
  void (*close)(void *conn);
  /* Runs one NUL-terminated statement; PT_EIO "sql: <what>: <server's message>". */
  int (*exec)(void *conn, const char *sql, const char *what, const char *url, pt_error *err);
  /* Appends name as a quoted identifier. */
  int (*quote)(pt_buf *out, const char *name);
  /* As pt__sql_columns_ddl. */
  int (*columns_ddl)(const struct ArrowSchema *schema, pt_buf *out, pt_error *err);
  /* Loads batch into table, committed when it returns unless a transaction
   * is open on conn; scratch (len 0) is the caller's buffer to reuse. */
  int (*bulk_load)(void *conn, const char *table, const char *url,
                   const struct ArrowSchema *schema, const struct ArrowArray *batch,
                   pt_buf *scratch, pt_error *err);
  /* 1 when table exists, 0 when not, -1 with err. */
  int (*table_exists)(void *conn, const char *table, const char *url, pt_error *err);
  /* The names of the tables LIKE pattern (backslash escapes); on PT_OK the
   * caller owns *names and each name (pt__free). */
  int (*list_tables)(void *conn, const char *pattern, const char *url, char ***names,
                     int64_t *n, pt_error *err);
  /* Where row_xact is set (NULL elsewhere). query_int: the one integer a
   * query gives, into *out. lock_exclusive: inside the transaction under
   * way, waits at most wait_ms for every other transaction that used table
   * to end and keeps all others out of it until the commit; PT_EIO when the
   * wait ran out, the transaction then failed. */
  int (*query_int)(void *conn, const char *sql, const char *what, const char *url,
                   int64_t *out, pt_error *err);
  int (*lock_exclusive)(void *conn, const char *table, int64_t wait_ms, const char *url,
                        pt_error *err);
} pt__sql_db;

extern const pt__sql_db pt__pg_db, pt__my_db, pt__adbc_db;
/* pt__adbc_db's column DDL, which depends on the database behind url's
 * driver (SQLite's affinities, PostgreSQL's types as pt__pg_columns_ddl). */
int pt__adbc_columns_ddl(const char *url, const struct ArrowSchema *schema, pt_buf *out,
                         pt_error *err);

/* The database of url's scheme. */
int pt__sql_db_of(const char *url, const pt__sql_db **out, pt_error *err);
/* Appends s (NUL-terminated, the NUL not appended). */
int pt__sql_put(pt_buf *out, const char *s);

/* ------------------------------------------------------------------------ */
/* MySQL and MariaDB (mysql.c): the same reader and writer over libmariadb.
 * URLs: mysql://user:password@host:port/db (or mariadb://); the password
 * may come from MYSQL_PWD. Sessions run in UTC. */

typedef struct pt__my_reader pt__my_reader;
int pt__my_reader_open(const char *url, const char *query, int describe_only,
                       pt__my_reader **out, pt_error *err);
const struct ArrowSchema *pt__my_reader_schema(const pt__my_reader *r);
int pt__my_reader_next(pt__my_reader *r, int64_t batch_rows, struct ArrowArray *out,
                       pt_error *err);
void pt__my_reader_free(pt__my_reader *r);
/* ------------------------------------------------------------------------ */
/* ADBC (adbc.c): any database with an ADBC driver, through the ADBC C ABI.
 * URLs: adbc:DRIVER:..., e.g. adbc:sqlite:///path.db (the driver gets the
 * file name) or adbc:postgresql://user:pw@host/db (the driver gets
 * postgresql://...). */

/* Splits an ADBC URL: the driver's name into name (size bytes) and *uri
 * (pointing into url) what the driver is given. PT_EINVAL if url is not
 * adbc:NAME:... */
int pt__adbc_url_split(const char *url, char *name, size_t name_size, const char **uri);
/* The driver library an ADBC URL names at its end ("...#adbc_driver=PATH";
 * what the driver is given stops before it) into out, "" when none;
 * PT_ERANGE when it does not fit. */
int pt__adbc_url_driver(const char *url, char *out, size_t size);

typedef struct pt__adbc_reader pt__adbc_reader;
/* Loads driver (a library path; NULL or "": libadbc_driver_NAME.so as the
 * loader finds it), connects and runs query (describing it only, where the
 * driver can, when describe_only). The reader's schema is expect when given
 * (batches conform to it: a column of another type holding only nulls is
 * made again as nulls of the expected type; anything else is refused by
 * name), else the driver's. On PT_OK the caller owns *out. */
int pt__adbc_reader_open(const char *url, const char *driver, const char *query,
                         const struct ArrowSchema *expect, int describe_only,
                         pt__adbc_reader **out, pt_error *err);
const struct ArrowSchema *pt__adbc_reader_schema(const pt__adbc_reader *r);
/* The driver's next batch into *out (caller owns it); release NULL at the end.
 * A reader opened with expect runs its query at the first call, telling
 * the driver batch_rows (> 0) as its batch size where the driver has an
 * option for that (SQLite: rows; PostgreSQL: a byte hint from the
 * columns' widths); other drivers batch as they like. */
int pt__adbc_reader_next(pt__adbc_reader *r, int64_t batch_rows, struct ArrowArray *out,
                         pt_error *err);
void pt__adbc_reader_free(pt__adbc_reader *r);

/* ------------------------------------------------------------------------ */
/* connect.c: the database the URL names, behind one set of calls (each as
 * its PostgreSQL counterpart above says). */

typedef enum pt__sql_dialect { PT__SQL_POSTGRES, PT__SQL_MYSQL, PT__SQL_ADBC } pt__sql_dialect;

/* PT_ENOTSUP naming the scheme when protium speaks no such database. */
int pt__sql_dialect_of(const char *url, pt__sql_dialect *out, pt_error *err);

/* driver: an ADBC URL's driver library (NULL: found by name); expect: the
 * columns described when the dataset was made (NULL when describing), which
 * an ADBC reader gives its batches as (see pt__adbc_reader_open). */
typedef struct pt__sql_reader pt__sql_reader;
int pt__sql_reader_open(const char *url, const char *driver, const char *query,
                        const struct ArrowSchema *expect, int describe_only,
                        pt__sql_reader **out, pt_error *err);
const struct ArrowSchema *pt__sql_reader_schema(const pt__sql_reader *r);
int pt__sql_reader_next(pt__sql_reader *r, int64_t batch_rows, struct ArrowArray *out,
                        pt_error *err);
void pt__sql_reader_free(pt__sql_reader *r);

/* stage.c: the exactly-once write, through the database's pt__sql_db.
 * A task attempt's staging: connects; then either creates its own table,
 * attempt (columns_ddl), with the database's create_staging, or, when
 * shared (pt__sql_stage_prepare made the job's shared staging table),
 * opens the transaction that loads every batch into <prefix>all. On PT_OK
 * the caller owns *out (pt__sql_stage_free). */
typedef struct pt__sql_stage pt__sql_stage;
int pt__sql_stage_open(const char *url, const char *prefix, const char *attempt,
                       const char *columns_ddl, int shared, pt__sql_stage **out, pt_error *err);
int pt__sql_stage_write(pt__sql_stage *w, const struct ArrowSchema *schema,
                        const struct ArrowArray *batch, pt_error *err);
/* After the last batch: a shared attempt records its name in
 * <prefix>attempts and commits, its rows and the record at once (its own
 * table's batches landed one by one: nothing to do). */
int pt__sql_stage_finish(pt__sql_stage *w, pt_error *err);
/* Closes the connection: a shared attempt not finished rolls back. */
void pt__sql_stage_free(pt__sql_stage *w);
int pt__sql_columns_ddl(const char *url, const struct ArrowSchema *schema, pt_buf *out,
                        pt_error *err);
/* Before the job: where the database has a shared staging path (row_xact)
 * and table does not exist, creates <prefix>all (logged, columns_ddl) and
 * <prefix>attempts and sets *shared to 1; else *shared is 0. Tables it made
 * before a failure are left to pt__sql_drop_staging. */
int pt__sql_stage_prepare(const char *url, const char *table, const char *prefix,
                          const char *columns_ddl, int *shared, pt_error *err);
/* In one transaction: creates table (missing; mode ERROR: refused when it
 * exists), clears it (OVERWRITE), then moves in the rows of the n winning
 * attempts (their names, as the tasks reported them): with INSERT ...
 * SELECT from each one's staging table, or, when shared_prefix is given
 * (pt__sql_stage_prepare's), from <shared_prefix>all, the winners told by
 * their transactions. There, when table is still missing, the shared table
 * itself becomes table (the losers' rows deleted, then renamed) unless an
 * attempt still holds it after a bounded wait. Nothing changes unless all
 * of it succeeds. */
int pt__sql_commit(const char *url, const char *table, pt__sql_mode mode,
                   const struct ArrowSchema *schema, const char *const *winners, int64_t n,
                   const char *shared_prefix, pt_error *err);
/* Drops every table whose name starts with prefix. */
int pt__sql_drop_staging(const char *url, const char *prefix, pt_error *err);

#endif
