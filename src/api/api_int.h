/* api_int.h — private structs shared by the files of src/api: the session
 * (its configuration, directory and driver) and configuration helpers. The
 * dataset node itself is struct pt_dataset in sched/sched.h, since the
 * planner reads it.
 */
#ifndef PT_API_INT_H
#define PT_API_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/core.h"
#include "protium.h"
#include "sched/sched.h"

/* Metrics of this many finished jobs are kept per session. */
#define PT__JOBS_KEPT 64

struct pt_session {
  pt_conf *conf;          /* owned copy */
  char *dir;              /* <local.dir>/protium-<pid>-XXXXXX, owned */
  char *results_dir;      /* <local.results_dir>/protium-<pid>-XXXXXX, owned; NULL: results
                           * go below dir */
  pt__driver *driver;     /* owned; the driver thread and its executors */
  atomic_int_fast64_t next_input; /* numbering of pt_from_batches inputs */
  pthread_mutex_t jobs_mu;        /* guards the fields below */
  pt_job_stats *jobs[PT__JOBS_KEPT]; /* owned: the last finished jobs' metrics,
                                        ring by jobs_seen */
  int64_t jobs_seen;              /* jobs recorded so far */
};

/* Keeps the metrics of a finished job (moving res->stats) and notes the
 * job id in ds. jobs.c. */
void pt__session_record_job(pt_dataset *ds, pt__job_result *res);

/* Keeps f in ds->parquet_filter as a packed ParquetFilter message (a
 * Parquet read's filter, an EXCLUDE node's predicate). parquet.c. */
int pt__dataset_store_filter(pt_dataset *ds, const pt_parquet_filter *f, pt_error *err);

/* The configuration table, in one place (README mirrors it). */
typedef enum pt__conf_kind {
  PT__CONF_INT,      /* an integer >= the entry's minimum */
  PT__CONF_DURATION, /* "500ms", "2s", "1m", or a plain number of seconds */
  PT__CONF_PATH,     /* any non-empty string */
  PT__CONF_STRING,   /* any string, empty included */
  PT__CONF_CHOICE,   /* one of the words of the entry's choices */
} pt__conf_kind;

typedef struct pt__conf_key {
  const char *name;
  const char *default_value; /* NULL: computed (local.dir) */
  pt__conf_kind kind;
  int64_t min;               /* PT__CONF_INT: smallest accepted value */
  const char *description;
  const char *choices;       /* PT__CONF_CHOICE: "pack|spread" */
} pt__conf_key;

/* The table and its length. Static storage. */
const pt__conf_key *pt__conf_keys(size_t *n);
/* Typed reads of a key known to exist (values were validated when set). */
int64_t pt__conf_int(const pt_conf *conf, const char *key);
/* The password for a database at host (and port, NULL or "" when none):
 * sql.password.<host>:<port>, else sql.password.<host>, else sql.password
 * (""). Owned by conf. */
const char *pt__conf_sql_password(const pt_conf *conf, const char *host, const char *port);

/* The files a read_ipc / read_parquet / read_csv path names: the file
 * itself, a directory's *.arrow/.arrows/.ipc/.feather (parquet = 1:
 * *.parquet; parquet = PT__FILES_CSV: *.csv, *.tsv) files, or a glob's
 * matches; absolute, sorted. On PT_OK the caller owns *paths (each and the
 * array, pt__free), *n >= 1. */
#define PT__FILES_CSV 2
int pt__list_files(const char *path, int parquet, char ***paths, int64_t *n, pt_error *err);

/* How many partitions a file read of total bytes gets, as Spark's
 * FilePartition.maxSplitBytes sizes them: enough that none passes cap (the
 * read's *.partition_bytes key); at least one per task slot of s when the
 * data is under the cap, but none under 4 MiB; over the cap, a multiple of
 * the slots. >= 1. split.c. */
int64_t pt__split_parts(pt_session *s, int64_t total, int64_t cap);

/* Deals pieces of a read, in order, into partitions of about equal size:
 * init with their total bytes, the partitions wanted (pt__split_parts) and
 * the cap, then pt__deal_next gives each piece's partition (0, 1, ...; the
 * last + 1 partitions in all). No partition passes cap unless one piece
 * does. split.c. */
typedef struct pt__deal {
  int64_t total, parts, cap; /* bytes of all pieces; partitions wanted; bytes */
  int64_t before;            /* bytes of the pieces dealt so far */
  int64_t acc;               /* bytes of the current partition */
  int64_t share;             /* the highest share of the total reached */
  int64_t partition;         /* the current partition */
} pt__deal;
void pt__deal_init(pt__deal *d, int64_t total, int64_t parts, int64_t cap);
/* bytes: the piece's, >= 1 (the same as counted in total). */
int64_t pt__deal_next(pt__deal *d, int64_t bytes);
int64_t pt__conf_ms(const pt_conf *conf, const char *key);
/* Parses a duration into milliseconds; -1 if malformed. */
int64_t pt__parse_duration_ms(const char *text);
/* The resources configured with resources.<name>.* keys, in the order
 * first set: fills out[0..cap) (strings borrowed from conf, valid until
 * the next pt_conf_set) and returns their number. */
size_t pt__conf_resources(const pt_conf *conf, pt__res_spec *out, size_t cap);
/* On PT_OK the caller owns *out, a copy of conf (or the defaults for NULL). */
int pt__conf_copy(const pt_conf *conf, pt_conf **out, pt_error *err);
/* 1 when key was set (not left to its default). */
int pt__conf_given(const pt_conf *conf, const char *key);
/* pt_write_kafka without its wait for read_committed readers to see the
 * records (the streaming sink, whose next batch need not wait). */
int pt__write_kafka(pt_dataset *ds, const pt_kafka_options *o, const char *topic,
                    const char *transactional_prefix, int64_t batch_id, pt_error *err);

#endif /* PT_API_INT_H */
