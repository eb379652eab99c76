/* sched.h — the driver: dataset nodes (the lazy plan), the planner that
 * splits a plan into stages at shuffles, the DAG scheduler with task retry
 * and lineage, and the cluster backend that starts and supervises executor
 * processes. What src/api may use is the first part; the rest is shared by
 * plan.c, scheduler.c and cluster.c only. Threads and lifetimes: README.md.
 */
#ifndef PT_SCHED_H
#define PT_SCHED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <uv.h>

#include "core/core.h"
#include "net/control.pb-c.h"
#include "net/tcp.h"
#include "net/tls.h"
#include "protium.h"
#include "sched/resources.h"

typedef struct pt__driver pt__driver;
typedef struct pt__slurm pt__slurm;

/* ------------------------------------------------------------------------ */
/* Dataset nodes. Immutable once made; reference-counted (the user's handles
 * and child nodes hold references), so plans can share parents. */

typedef enum pt__node_kind {
  PT__NODE_RANGE,
  PT__NODE_FILES,
  PT__NODE_MAP,
  PT__NODE_FILTER,
  PT__NODE_SHUFFLE,
  PT__NODE_MAP_PARTITIONS, /* fn, arg, out_schema_ipc as MAP */
  PT__NODE_BARRIER,        /* no op: marks its stage as a barrier stage */
  PT__NODE_PARQUET,
  PT__NODE_RESOURCES,      /* no op: gives its stage a resource profile */
  PT__NODE_KAFKA,          /* pt_read_kafka */
  PT__NODE_CSV,            /* pieces of CSV files (byte ranges at record starts) */
  PT__NODE_SQL,            /* one query per partition on a SQL database */
  PT__NODE_EXCLUDE,        /* drops the rows where parquet_filter is TRUE (internal:
                              pt_write_delta's replace_where) */
  PT__NODE_REQUIRE,        /* fails at a row where parquet_filter is not TRUE (internal:
                              pt_write_delta's replace_where) */
} pt__node_kind;

struct pt_dataset {
  atomic_int_fast64_t refs;
  pt_session *session;           /* borrowed: sessions outlive their datasets */
  pt__driver *driver;            /* borrowed, the session's */
  pt__node_kind kind;
  struct pt_dataset *parent;     /* holds a reference; NULL for sources */
  struct ArrowSchema schema;     /* owned: the node's output schema */
  void *schema_ipc;              /* owned: schema as an IPC stream (the IPC
                                    writer's buffer: free()) */
  int64_t schema_ipc_size;
  int64_t partitions;
  /* RANGE */
  int64_t start, end, batch_rows;
  /* FILES */
  char **paths;                  /* owned, n_paths = partitions */
  /* MAP, FILTER, MAP_PARTITIONS */
  char *fn;                      /* owned: registered name */
  void *arg;                     /* owned copy (may be NULL) */
  size_t arg_size;
  void *out_schema_ipc;          /* MAP, MAP_PARTITIONS: owned (pt__malloc), the IPC schema of schema;
                                    NULL = the input schema */
  int64_t out_schema_ipc_size;
  /* SHUFFLE */
  char **keys;                   /* owned; n_keys == 0: round robin */
  int64_t n_keys;
  atomic_int_fast64_t last_job;  /* the job id of the last action on it, 0 = none */
  /* PARQUET: pieces (a range of row groups of one file) of each partition */
  int64_t n_pieces;
  char **piece_paths;            /* owned, each owned */
  int64_t *piece_partition, *piece_rg_start, *piece_rg_count; /* owned */
  char **columns;                /* owned, each owned; n_columns == 0: all */
  int64_t n_columns;
  char **dictionary;             /* owned, each owned: read as dictionaries */
  int64_t n_dictionary;
  char **partition_keys;         /* owned, each owned: Hive-style directory keys */
  int64_t n_partition_keys;
  char **piece_values;           /* owned: n_pieces * n_partition_keys, each owned;
                                    NULL for a null value */
  int read_threads;              /* threads decoding each task's row groups (1-16; 0 = 1) */
  /* PARQUET made by pt_read_delta: what its log replay found (version -1: not Delta) */
  int64_t delta_version, delta_files, delta_skipped;
  /* PARQUET made by pt_read_parquet: what planning passed over (the files'
   * row groups, those the statistics ruled out; files and leaf directories
   * that partition values ruled out); parquet_files -1: not made by it */
  int64_t parquet_files, parquet_files_pruned, parquet_dirs_pruned;
  int64_t parquet_row_groups, parquet_rg_skipped;
  uint8_t *parquet_filter;       /* owned (pt__malloc): the read's filter as a
                                    packed ParquetFilter message; NULL = none.
                                    EXCLUDE, REQUIRE: the predicate, likewise */
  size_t parquet_filter_size;
  /* RESOURCES */
  pt_resource_profile *profile;  /* owned copy */
  /* BARRIER */
  int64_t max_attempts;          /* attempts of the stage; 0 = barrier.max_attempts */
  /* KAFKA: the packed KafkaSource message (one range per partition) */
  uint8_t *kafka_source;         /* owned (pt__malloc) */
  size_t kafka_source_size;
  /* CSV: pieces in piece_paths / piece_partition (n_pieces), their byte
   * ranges and first lines here; the reader's options */
  int64_t *piece_begin, *piece_end, *piece_line; /* owned */
  pt_csv_options csv;            /* schema NULL (the node's schema is used);
                                    null_values and corrupt_column point into
                                    the fields below */
  char **csv_null_values;        /* owned, each owned; csv.n_null_values of them */
  char *csv_corrupt;             /* owned or NULL */
  /* SQL */
  char *sql_url;                 /* owned; holds the password (sql.password included) */
  char *sql_adbc_driver;         /* owned or NULL: an ADBC URL's driver library */
  char **sql_queries;            /* owned, each owned; one per partition */
  int64_t sql_fetch_size;        /* rows per batch */
};

/* A node of `kind` over parent (which gains a reference; NULL for sources)
 * with its schema copied from `schema` and its IPC form made. On PT_OK the
 * caller owns the one reference of *out. */
int pt__node_new(pt_session *s, pt__driver *d, pt__node_kind kind, pt_dataset *parent,
                 const struct ArrowSchema *schema, pt_dataset **out, pt_error *err);
/* Drops one reference; the last one releases the node and, in turn, its
 * parents' references (iteratively: long chains do not recurse). NULL is
 * fine. */
void pt__node_unref(pt_dataset *ds);

/* ------------------------------------------------------------------------ */
/* The driver, as src/api uses it. */

typedef struct pt__driver_opts {
  const char *session_dir;       /* exists; executors get exec-<id> below it */
  const char *results_dir;       /* exists or NULL: result files in memory (local.results_dir)
                                  * below it, else below session_dir */
  int n_executors;
  int slots;                     /* per executor */
  int queue_depth;               /* queued tasks per slot beyond the running one */
  int64_t heartbeat_interval_ms;
  int64_t heartbeat_timeout_ms;
  int64_t start_timeout_ms;      /* spawned to Hello; 0 = 30 s */
  int64_t task_timeout_ms;       /* 0 = none */
  int max_failures;              /* attempts per partition */
  int stage_max_attempts;        /* resubmissions of a map stage */
  int barrier_max_attempts;      /* attempts of a barrier stage */
  int64_t barrier_timeout_ms;    /* a barrier() step waiting longer fails the attempt */
  int64_t barrier_admission_ms;  /* how long a barrier stage waits for free slots */
  int barrier_shared_memory;     /* tasks of an attempt on one host meet in shared memory */
  int64_t barrier_stop_grace_ms; /* a stopped barrier task's time to return before its
                                    executor is killed */
  const char *command;           /* NULL or "": executors are this program;
                                    else a shell command that starts one
                                    (executor.command); borrowed for the call */
  int barrier_spread;            /* barrier.placement: 1 = spread, 0 = pack */
  const pt__res_spec *resources; /* resources.<name>.*: n_resources specs */
  size_t n_resources;
  int64_t discovery_timeout_ms;  /* resources.discovery_timeout */
  size_t n_conf;                 /* sent to executors in Welcome */
  const char *const *conf_keys;
  const char *const *conf_values;
  /* net.transport = tcp: executors connect to driver_host:driver_port
   * (0 = any free port) over TCP, authenticated with the session's secret
   * (PROTIUM_SECRET, else secret_file, else generated). Borrowed. */
  int tcp;
  const char *driver_host;
  int driver_port;
  const char *secret_file;
  /* tcp: the address executors are told to connect to; NULL = the one
   * listened on. Borrowed. */
  const char *advertise_host;
  /* master "slurm": the allocation (pt__slurm_open); the driver takes it
   * over, also when its start fails. NULL = the local backend. */
  pt__slurm *slurm;
  /* net.tls = on: every TCP connection is TLS (src/net/tls.h) with these
   * PEM files, which executors read at the same paths. Borrowed. */
  int tls;
  const char *tls_cert;
  const char *tls_key;
  const char *tls_ca;
  /* net.results: how result partitions reach the driver (PT__RESULTS_*). */
  int results;
} pt__driver_opts;

enum {
  PT__RESULTS_AUTO,   /* fetched from executors on another host, files otherwise */
  PT__RESULTS_FILES,  /* always files in the session directory */
  PT__RESULTS_STREAM, /* always fetched from the executor's block server */
};

/* Starts the driver thread and the executors; returns once every executor
 * said Hello. On PT_OK the caller owns *out (stop with pt__driver_stop). */
int pt__driver_start(const pt__driver_opts *opts, pt__driver **out, pt_error *err);
/* Shuts the executors down (SIGKILL after a grace period), joins the driver
 * thread, frees d. */
void pt__driver_stop(pt__driver *d);
int pt__driver_executors(pt__driver *d, pt_executor_info *out, int64_t cap, int64_t *n);
/* Snapshot of the running jobs (pt_session_progress). */
void pt__driver_progress(pt__driver *d, pt_job_progress *out, int64_t cap, int64_t *n);
/* A fresh job id (jobs are numbered 1, 2, ... per session). */
int64_t pt__driver_new_job_id(pt__driver *d);
const char *pt__driver_session_dir(const pt__driver *d);
/* Where a job's result files go: <memory>/<job> (NULL: no such directory)
 * while it has room, else <disk>/<job> (pt__results_job_dir). */
const char *pt__driver_results_memory(const pt__driver *d);
const char *pt__driver_results_disk(const pt__driver *d);

typedef enum pt__sink_kind {
  PT__SINK_RESULT, /* files under <results dir>/<job_id>/ (pt__driver_results_memory) */
  PT__SINK_COUNT,
  PT__SINK_IPC,    /* files under ipc_temp_dir, committed by the caller */
  PT__SINK_KAFKA,  /* records into a topic, one transaction per partition */
  PT__SINK_SQL,    /* staging tables named by each task's status, committed by
                      the caller */
} pt__sink_kind;

typedef struct pt__action {
  int64_t job_id;                /* from pt__driver_new_job_id */
  pt__sink_kind sink;
  const char *ipc_temp_dir;      /* PT__SINK_IPC */
  int ipc_format;
  int ipc_compression;
  /* PT__SINK_IPC writing Parquet instead (pt_write_parquet) */
  int parquet;
  int parquet_codec, parquet_page_version, parquet_no_dictionary;
  int64_t parquet_row_group_rows;
  int parquet_compression_level, parquet_no_statistics;
  int parquet_threads;           /* each task's writer's threads (0 = 1) */
  int64_t parquet_page_bytes, parquet_dictionary_page_bytes;
  char *const *parquet_partition_by; /* the caller's, for the job's time */
  int64_t parquet_n_partition_by;
  char *const *parquet_metadata_keys;   /* the caller's, for the job's time */
  char *const *parquet_metadata_values; /* likewise; no NULL entries */
  int64_t parquet_n_metadata;
  /* PT__SINK_KAFKA: the packed KafkaSink message (borrowed for the call) */
  const uint8_t *kafka_sink;
  size_t kafka_sink_size;
  /* PT__SINK_IPC writing CSV instead (pt_write_csv) */
  int csv, csv_header;
  char csv_delimiter;
  /* PT__SINK_SQL (the caller's strings: it waits for the job) */
  const char *sql_url, *sql_staging_prefix, *sql_columns_ddl;
  int sql_shared_staging; /* see SqlSink.shared_staging */
} pt__action;

/* What a finished job produced, per partition of its final stage: the first
 * successful attempt's output file (RESULT, IPC) and its rows; the summed
 * count (COUNT). */
typedef struct pt__job_result {
  int64_t n_partitions;
  char **paths;                  /* owned, each owned */
  int64_t *rows;                 /* owned */
  int64_t count;
  pt_job_stats *stats;           /* owned: the job's metrics, success or not
                                    (NULL without memory) */
} pt__job_result;

/* Plans ds, runs the job on the executors and waits for it. On PT_OK the
 * caller owns *out (reset with pt__job_result_reset). */
int pt__driver_run(pt__driver *d, pt_dataset *ds, const pt__action *action, pt__job_result *out,
                   pt_error *err);
void pt__job_result_reset(pt__job_result *r);
/* Waits (at most timeout_ms) until no task of job job_id is in flight any
 * more: after a job ends, its running tasks go on as orphans, and one that
 * writes into a directory (write_ipc's temporary one) must be done before
 * the caller removes it. Returns 1 when none is left, 0 on timeout. */
int pt__driver_quiesce(pt__driver *d, int64_t job_id, int64_t timeout_ms);


/* ------------------------------------------------------------------------ */
/* Internal to src/sched. */

typedef enum pt__stage_state {
  PT__STAGE_WAITING, /* a parent stage's output is incomplete */
  PT__STAGE_RUNNING, /* tasks may be launched */
  PT__STAGE_DONE,    /* every partition has its output */
} pt__stage_state;

typedef struct pt__job pt__job;
typedef struct pt__jstats pt__jstats; /* stats.c */
typedef struct pt__barrier pt__barrier;

typedef struct pt__sched_stage {
  int64_t id;
  int64_t attempt;                /* of the current StageDef; -1 before the first */
  pt__job *job;
  int64_t partitions;
  struct pt__sched_stage *parent;       /* the map stage whose shuffle this one reads */
  int64_t shuffle_id;             /* shuffle written (a map stage), or -1 */
  Protium__Op **ops;              /* owned structs; strings borrowed from nodes */
  size_t n_ops;
  Protium__ShuffleSource *read;   /* ops[0] when the source is a shuffle */
  const void *schema_ipc;         /* borrowed from the source node */
  int64_t schema_ipc_size;
  /* Under the driver's loop_mu, from here on. */
  pt__stage_state state;
  int64_t n_done;
  uint8_t *done;                  /* [partitions] output available */
  uint8_t *queued;                /* [partitions] in pending */
  int32_t *running;               /* [partitions] running attempts */
  int32_t *failures;              /* [partitions] counted failures */
  int32_t *launches;              /* [partitions] attempts launched: the next attempt number */
  int64_t *last_exec;             /* [partitions] executor of the last failure, or 0 */
  char **last_error;              /* [partitions] owned, lazily */
  int32_t *last_code;             /* [partitions] PT_* code of the last counted failure */
  int64_t *pending;               /* ring of partitions to launch */
  int64_t pend_head, n_pending;
  Protium__ShuffleOutput *outputs; /* [partitions] map stage: output of done partitions */
  int64_t *output_exec;           /* [partitions] executor holding it */
  char **paths;                   /* [partitions] final stage: committed attempt file */
  int64_t *rows, *counts;         /* [partitions] final stage */
  int64_t resubmits;              /* times a done map stage lost output */
  int64_t resubmit_child_attempt; /* 1 + the reducer attempt whose fetch failures
                                     caused the last resubmission; 0 = none */
  uint8_t *def;                   /* packed StageDef of `attempt`; NULL = stale */
  size_t def_size;
  int barrier;                    /* a pt_barrier node is in the stage's chain */
  pt__barrier *bar;               /* owned: its coordinator (barrier stages), else NULL */
  char *checkpoint_dir;           /* owned: <session_dir>/checkpoints/<job>/stage-<id> */
  const char *barrier_area;       /* borrowed from bar: the attempt's shared area, or NULL */
  const pt_resource_profile *profile; /* borrowed from the RESOURCES node nearest the
                                         stage's end, or NULL */
  int32_t res_pools[PT__RES_MAX_REQS]; /* per request of profile: its pool's index in
                                          every seat's ledger, -1 = none (set at
                                          submission; seats list resources alike) */
  int64_t max_attempts;           /* barrier stages: from the BARRIER node nearest the
                                     stage's end; 0 = barrier.max_attempts */
  /* Locality: partitions whose task keeps state in its executor process
   * from one job to the next (a Kafka sink partition's initialized
   * transactional producer, which another process's would fence). */
  char *locality;                 /* owned: what they are tied to, or NULL (no preference) */
  int64_t *loc_part;              /* [partitions] the partition's number under locality */
  int32_t *prefer;                /* [partitions] 1 + index of the executor that ran it
                                     last (set when the stage starts), 0: none */
} pt__sched_stage;

/* Where a partition tied to executor state (pt__sched_stage.locality) last
 * ran, kept across jobs by the driver. */
typedef struct pt__sched_place {
  char *key;                      /* owned: the stage's locality */
  int64_t part;
  int32_t exec;                   /* executor index */
  uint64_t used;                  /* d->place_seq when last set: the oldest goes first */
} pt__sched_place;

typedef enum pt__job_state { PT__JOB_RUNNING, PT__JOB_SUCCEEDED, PT__JOB_FAILED } pt__job_state;

struct pt__job {
  int64_t id;
  pt__action action;
  pt_dataset *ds;                 /* holds a reference: nodes outlive the stages */
  pt__sched_stage **stages;             /* owned; parents before children */
  int64_t n_stages;
  pt__sched_stage *final;
  pt__job_state state;            /* written under loop_mu; read after `finished` */
  pt_error error;
  atomic_int finished;            /* set under the driver mutex; read without it too */
  pt__jstats *stats;              /* owned: metrics being recorded (NULL: none) */
  struct pt__job *next;           /* active list / finished this turn (loop_mu) */
};

/* plan.c */
int pt__plan_build(pt__driver *d, pt_dataset *ds, const pt__action *action, pt__job **out,
                   pt_error *err);
void pt__plan_free(pt__job *job);
/* Packs the stage's StageDef for its current attempt (map outputs of the
 * parent filled in) into st->def. */
int pt__plan_encode_stage(pt__sched_stage *st, pt_error *err);
int64_t pt__driver_next_id(pt__driver *d); /* stage and shuffle ids */

/* Task ids: (sequence << PT__TASK_INDEX_BITS) | pool index. */
#define PT__TASK_INDEX_BITS 24
#define PT__TASK_INDEX_MASK ((1 << PT__TASK_INDEX_BITS) - 1)

/* A task attempt in flight, in the driver's pool; linked into its
 * executor's list in launch order. */
typedef struct pt__sched_task {
  int64_t id;                     /* (sequence << 24) | pool index; 0 = free */
  pt__sched_stage *stage;               /* NULL once its job finished (orphan) */
  int64_t job_id;                 /* kept for orphans: pt__driver_quiesce */
  int64_t partition;
  int32_t attempt;
  int32_t stage_attempt;          /* the StageDef attempt it was launched under */
  int32_t exec;                   /* index into the driver's executor table */
  int32_t prev, next;             /* executor list, or free list (next) */
  uint64_t start_ns;              /* 0 while queued on the executor */
  uint64_t stop_ns;               /* orphaned barrier task told to stop then (grace), or 0 */
  pt__res_grant *grant;           /* owned: the addresses it holds (profiled stages), or NULL */
  int32_t cpus;                   /* slots it takes, counted in its executor's units; 0
                                     until linked */
} pt__sched_task;

typedef enum pt__executor_state {
  PT__EXEC_STARTING, /* spawned, no Hello yet */
  PT__EXEC_READY,    /* takes tasks */
  PT__EXEC_LOST,     /* killed or gone; kept in the table until the driver stops */
} pt__executor_state;

typedef struct pt__driver_conn pt__driver_conn;
typedef struct pt__rfetch pt__rfetch;

/* One executor process (under the driver's loop_mu). */
typedef struct pt__executor {
  pt__driver *d;
  int32_t index;                  /* in d->execs */
  int64_t id;
  int64_t pid;
  pt__executor_state state;
  int exited;                     /* the exit callback ran */
  int asked_to_stop;              /* Shutdown sent at the session's close; cleared when
                                     the 2 s grace is over */
  int32_t slots;
  uv_process_t proc;
  pt__driver_conn *conn;                 /* NULL until Hello, and once lost */
  uint64_t last_seen_ns;          /* uv_hrtime of its last message */
  int32_t head, tail;             /* in-flight tasks, launch order (pool indices; -1) */
  int32_t n_inflight;             /* launched, no status yet */
  int32_t n_started;              /* the first n_started of the list are running */
  pt_buf out;                     /* frames to write at the end of this loop turn */
  pt_buf lazy;                    /* Cleanup frames: ride with the next write, or the tick's */
  pt_buf wbuf;                    /* frames being written */
  uv_write_t wreq;
  int writing;
  int64_t frame_start;            /* offset in out of the open LaunchBatch frame, or -1 */
  int64_t (*sent_defs)[2];        /* (stage id, attempt) whose StageDef it has */
  size_t n_sent, cap_sent;
  char *dir;                      /* <session_dir>/exec-<id>, owned */
  char *host;                     /* from Hello, owned; NULL before */
  char *block_address;            /* from Hello, owned; NULL = serves no blocks (unix) */
  int results_stream;             /* its results are fetched from its block server
                                     (Welcome.results_stream; results.c) */
  int32_t units;                  /* cpus of the tasks in flight (each >= 1) */
  int32_t n_multi;                /* tasks in flight of more than one cpu */
  int32_t seat;                   /* its share of the host's resources: d->res[seat] */
  int32_t node;                   /* slurm: index of its node in the allocation; else 0 */
  pt__res_ledger *res;            /* borrowed: d->res + seat */
} pt__executor;

/* How executor processes come to exist and go: the one part of the driver a
 * cluster manager (standalone daemons, Slurm's srun) replaces. */
typedef struct pt__backend {
  const char *name;
  /* Starts the process of ex (id and dir set; the dir exists) so that it
   * connects to the driver's socket; sets ex->pid. Its end is reported to
   * the driver (pt__cluster_lose) however the backend learns of it. */
  int (*start)(pt__driver *d, pt__executor *ex, pt_error *err);
  /* Kills it (SIGKILL); a no-op if it is gone. */
  void (*kill)(pt__executor *ex);
} pt__backend;

struct pt__driver {
  /* Set before the thread starts, then read-only. */
  const pt__backend *backend;
  pt__slurm *slurm;               /* owned; NULL unless the slurm backend (its strikes: loop_mu) */
  pt__driver_opts opts;           /* strings point into the copies below */
  char *session_dir;
  char *results_memory;          /* owned: <opts.results_dir>/results, NULL without one */
  char *results_disk;            /* owned: <session_dir>/results */
  char *command;                 /* owned copy of opts.command; NULL = this program */
  char *sock_path;
  char **conf_kv;                 /* 2 * n_conf owned strings */
  pt__res_ledger *res;            /* owned: n_executors seats' resources (usage under loop_mu) */
  uint64_t tick_ns;
  atomic_int_fast64_t next_id;    /* stage and shuffle ids */
  atomic_int_fast64_t next_job_id;
  pthread_t thread;
  uv_loop_t loop;
  /* Wakes the loop: user threads write to this eventfd (a uv_async_t
   * makes the loop thread spin until the waker's write returns). */
  int wake_fd;
  uv_poll_t wake;
  uv_timer_t tick;
  uv_timer_t kill_timer;
  uv_prepare_t prep;
  /* uv_hrtime when the loop last went to read its sockets (prepare_cb): what
   * executors sent before then has been read, what came after may wait in
   * a socket while the loop is late (a loaded machine), so silence is only
   * counted up to here. Loop thread only. */
  uint64_t polled_ns;
  /* PROTIUM_FAULT_DRIVER_STALL_MS (tests): the loop stops this long once, at
   * the first BarrierCall, as a driver given no CPU on a loaded machine
   * does; 0 = never. Loop thread only. */
  int64_t fault_stall_ms;
  uv_pipe_t server;
  uv_pipe_t reject;               /* takes connections we cannot serve */
  int reject_busy;
  /* net.transport = tcp (see tcp_listen in cluster.c): the listening socket
   * instead of server, its reject handle, the address executors connect to
   * ("tcp:HOST:PORT", owned), the secret every connection must prove. */
  uv_tcp_t tcp_server;
  uv_tcp_t tcp_reject;
  char *connect_addr;
  pt__secret secret;
  pt__tls_ctx *tls;               /* net.tls = on: every connection's TLS (owned); else NULL */
  char *tls_files[3];             /* its cert, key, ca paths, for executors (owned) */
  pt__driver_conn *unauthed;      /* TCP connections still in the handshake (loop_mu) */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* Guarded by mu. */
  int stop_requested;
  int n_hello;                    /* executors that said Hello during start */
  int start_failed;
  char start_error[PT_ERROR_SIZE];
  pt_executor_info *infos;        /* live executors, for pt_session_executors */
  int64_t n_infos, cap_infos;

  /* Guarded by loop_mu: held by the loop thread in every callback, and by
   * a user thread submitting a job (pt__driver_run). */
  pthread_mutex_t loop_mu;
  pt__executor **execs;               /* every executor ever started, by index */
  int32_t n_execs, cap_execs;
  pt__sched_task *tasks;                /* pool */
  int32_t cap_tasks, free_task;
  int64_t task_seq;
  pt__job *active;                /* running jobs, submission order */
  pt__job *done_jobs;             /* finished this loop turn; handed back in prepare */
  int need_schedule;
  int stopping;
  int64_t next_exec_id;
  int start_failures;             /* executors lost before Hello, in a row */
  int32_t rr;                     /* round-robin start of the launch pass */
  pt__rfetch *rfetch;             /* owned (results.c): result fetches; NULL until the first */
  pt__sched_place *places;        /* owned, n_places <= PT__SCHED_MAX_PLACES */
  int32_t n_places;
  uint64_t place_seq;
};

/* Places the driver remembers; a long stream has a few per sink partition. */
#define PT__SCHED_MAX_PLACES 1024

/* cluster.c (loop_mu held) */
/* Appends one frame with msg to ex->out (sent at the end of the loop turn). */
int pt__cluster_send(pt__executor *ex, uint16_t type, const ProtobufCMessage *msg);
/* Declares an executor lost: SIGKILL, deletes its directory, fails/requeues
 * its tasks through the scheduler, starts a replacement. */
void pt__cluster_lose(pt__executor *ex, const char *cause, int64_t timed_out_task,
                   const char *cause_timeout);
/* A reduce task on reporter could not reach the block server of executor
 * exec_id (TCP): that executor is lost with all its map outputs at once, so
 * that one loss costs one resubmission of the map stage however its news
 * arrives first (a fetch failure or the end of its connection). */
void pt__cluster_lose_unreachable(pt__driver *d, int64_t exec_id, const pt__executor *reporter);
/* Wakes the loop thread (any thread). */
void pt__cluster_wake(pt__driver *d);
/* Wakes the user thread waiting for job (which then owns it). */
void pt__driver_job_done(pt__driver *d, pt__job *job);

/* Starts executor ex's process: prefix (NULL-terminated, may be NULL) then
 * this program or executor.command, with the driver's environment less the
 * variables starting with an entry of drop (NULL-terminated, may be NULL),
 * plus extra and the PROTIUM_EXECUTOR_* variables. Sets ex->pid; its exit
 * is reported through the loop (an executor lost). */
int pt__cluster_spawn(pt__driver *d, pt__executor *ex, const char *const *prefix,
                      const char *const *drop, const char *const *extra, pt_error *err);
/* SIGKILL to the process pt__cluster_spawn started, unless it is gone. */
void pt__cluster_kill_process(pt__executor *ex);

/* slurm.c */
extern const pt__backend pt__slurm_backend;
/* Reads the allocation from the environment (SLURM_JOB_ID, the node list,
 * tasks per node, GPUs per task). mode: slurm.executors (auto, node,
 * task). On PT_OK the caller owns *out (pt__slurm_free) and *n_executors
 * is how many executors it holds. */
int pt__slurm_open(const char *mode, pt__slurm **out, int *n_executors, pt_error *err);
void pt__slurm_free(pt__slurm *s);
/* The address of this host on the way to the allocation's first node,
 * into out: what executors connect to. */
int pt__slurm_driver_host(const pt__slurm *s, char *out, size_t cap, pt_error *err);
/* A loss while the session runs counts against the executor's node (loop_mu). */
void pt__slurm_on_lost(pt__executor *ex);
/* Expands Slurm's compressed node list ("pn[1-3,07],gpu01") into names: on
 * PT_OK the caller owns *out (pt__res_strings_free). */
int pt__slurm_hostlist(const char *list, char ***out, int32_t *n, pt_error *err);
/* Expands "2(x3),1" into n counts; anything else, or another number of
 * counts, is PT_EFORMAT. */
int pt__slurm_counts(const char *spec, int32_t *out, int32_t n, pt_error *err);

/* results.c: result partitions of executors whose files the driver cannot
 * read (Welcome.results_stream), fetched from their block servers by
 * threads of the driver, off the loop. */
/* Whether the driver streams ex's results (at its Hello: another host, or
 * net.results = stream). */
int pt__results_stream_for(const pt__driver *d, const pt__executor *ex);
/* 1 when ex runs on the driver's machine (its host name is the driver's),
 * so that it can write result files into the driver's memory directory. */
int pt__executor_here(const pt__executor *ex);
/* Queues the fetch of partition p's attempt file (ts, a succeeded status
 * from ex) into the job's results directory (loop_mu held). Fails for want
 * of memory or of the directory; on PT_OK its end comes back through
 * pt__results_poll. */
int pt__results_fetch(pt__driver *d, pt__executor *ex, pt__sched_stage *st, int64_t p,
                      const Protium__TaskStatus *ts, pt_error *err);
/* Hands the fetches that ended to the scheduler (loop thread, loop_mu
 * held). */
void pt__results_poll(pt__driver *d);
/* Whether ts->result_inline is at most PT__INLINE_RESULT_MAX bytes and a
 * valid IPC stream of ts->rows rows; err says what is wrong with it (p, the
 * partition, goes in the message). */
int pt__results_inline_check(const Protium__TaskStatus *ts, int64_t p, pt_error *err);
/* A result that came in its status (TaskStatus.result_inline, at most
 * PT__INLINE_RESULT_MAX bytes, a valid IPC stream of ts->rows rows): written
 * to the job's results directory. On PT_OK the caller owns *out, its path;
 * otherwise err says what was wrong with it and nothing is left behind. */
int pt__results_inline(pt__driver *d, pt__sched_stage *st, int64_t p, int32_t attempt,
                       const Protium__TaskStatus *ts, char **out, pt_error *err);
/* Stops the fetching threads (after the loop ended) and frees what is
 * left; a no-op without fetches. */
void pt__results_stop(pt__driver *d);

/* scheduler.c (loop_mu held) */
/* A result fetch ended: on PT_OK the attempt counts as succeeded
 * (local_path, owned by the caller, is the partition's file now); else it
 * failed (counted unless the executor could not be reached, which loses
 * it). */
void pt__sched_result_fetched(pt__driver *d, int64_t job_id, int64_t stage_id,
                              int64_t stage_attempt, int64_t p, int64_t exec_id, int64_t rows,
                              int64_t count, const char *local_path, int rc, int unreachable,
                              const char *error);
void pt__sched_submit(pt__driver *d, pt__job *job);
void pt__sched_schedule(pt__driver *d);
void pt__sched_on_status(pt__driver *d, pt__executor *ex, const Protium__TaskStatus *st);
/* Fails or requeues the executor's tasks (cause for those that had started),
 * marks its map outputs lost. timed_out_task: the task whose timeout killed
 * it (cause_timeout is its own cause), or 0. crashed_task: the task whose
 * code ended the process (its crash note), or 0: when it was running there,
 * it alone fails and the tasks that ran beside it are requeued uncounted. */
void pt__sched_on_executor_lost(pt__driver *d, pt__executor *ex, const char *cause,
                                int64_t timed_out_task, const char *cause_timeout,
                                int64_t crashed_task);
void pt__sched_on_tick(pt__driver *d, uint64_t now_ns);
/* Hands finished jobs back to their waiting user threads (once per loop
 * turn, so that no callback still holds pointers into them). */
void pt__sched_flush_done(pt__driver *d);
/* Fails every active job (executors cannot be started). */
void pt__sched_fail_all(pt__driver *d, int code, const char *why);
/* For barrier.c: fails job with code and message (a no-op once it ended). */
void pt__sched_job_fail(pt__driver *d, pt__job *job, int code, const char *msg);
/* Makes st runnable, or waiting for its parent's output. */
void pt__sched_stage_submit(pt__driver *d, pt__sched_stage *st);
/* Frees the remembered places of partitions (driver teardown). */
void pt__sched_places_free(pt__driver *d);
/* Launches partition p of st on ex (in this pass's LaunchBatch), the
 * TaskLaunch carrying infos (barrier stages). On PT_OK *task_id is its id. */
int pt__sched_launch(pt__driver *d, pt__executor *ex, pt__sched_stage *st, int64_t p,
                     uint64_t now, Protium__TaskInfo **infos, size_t n_infos, int64_t *task_id);

/* barrier.c (loop_mu held): the coordinator of barrier stages. Every
 * attempt of a barrier stage launches all its tasks in one pass; their
 * barrier()/all_gather() steps meet here; any failure stops the whole
 * attempt and, up to barrier.max_attempts, runs the stage again. */
pt__barrier *pt__barrier_new(int64_t n_tasks);
void pt__barrier_free(pt__barrier *b);
/* At submission: fails job at once if a barrier stage has more tasks than
 * the cluster has slots. Returns 0 when it failed the job. */
int pt__barrier_check_job(pt__driver *d, pt__job *job);
/* At the start of a scheduling pass: launches every runnable barrier stage
 * whose tasks all fit in free slots now. Returns 1 while one waits for
 * slots (ordinary tasks then wait too, so that the slots come free). */
int pt__barrier_admit(pt__driver *d, uint64_t now);
void pt__barrier_on_call(pt__driver *d, pt__executor *ex, const Protium__BarrierCall *c);
/* An executor's report of what the shared area saw: stops the attempt. */
void pt__barrier_on_fault(pt__driver *d, pt__executor *ex, const Protium__BarrierFault *f);
/* A task of st's current attempt failed (cause): stop the attempt. */
void pt__barrier_task_failed(pt__driver *d, pt__sched_stage *st, int64_t p, const char *cause,
                             int code);
/* A task of st ended with output. Returns 0 when that stopped the attempt
 * (others wait for it in a barrier step): its output is discarded. */
int pt__barrier_task_succeeded(pt__driver *d, pt__sched_stage *st, int64_t p);
/* Task t (a copy; its executor was lost) was running st: stops the
 * attempt if t belongs to it. */
void pt__barrier_task_lost(pt__driver *d, const pt__sched_task *t, const char *cause, int code);
/* A barrier stage lost shuffle output: every partition's output is
 * forgotten (never a subset reruns). The stage runs again now, as a new
 * attempt, unless only_forget (its reader is done: it runs again, whole,
 * only if the reader must). */
void pt__barrier_output_lost(pt__driver *d, pt__sched_stage *st, const char *cause,
                             int only_forget);
/* st's job ends: its running tasks (if any) are told to stop. */
void pt__barrier_job_ended(pt__driver *d, pt__sched_stage *st);
/* Step timeouts, admission timeouts, stopped tasks past their grace. */
void pt__barrier_on_tick(pt__driver *d, uint64_t now);

/* resources.c (loop_mu held) */
/* At submission: fails job at once if a stage's profile asks what no
 * executor could ever give (or a barrier stage more than the cluster has
 * at once). Returns 0 when it failed the job. */
int pt__res_check_job(pt__driver *d, pt__job *job);
/* Whether ex could take one more task of st's profile now. */
int pt__res_fits(pt__driver *d, pt__executor *ex, const pt__sched_stage *st);
/* Places every task of barrier stage st (execs[p] = executor index) on
 * free slots and resources, packed or spread (barrier.placement). Returns
 * 1 when all fit now, 0 when it must wait. */
int pt__res_barrier_place(pt__driver *d, const pt__sched_stage *st, int32_t *execs);

/* stats.c: one hook per scheduler event (loop_mu held; each a no-op when
 * the job has no stats). */
void pt__stats_job_start(pt__job *job);
/* Microseconds since the job's submission (0 without stats). */
int64_t pt__stats_job_elapsed_us(const pt__job *job, uint64_t now_ns);
void pt__stats_on_launch(const pt__sched_stage *st, const pt__sched_task *t);
/* Before the status changes the stage: tells a first success from a
 * duplicate. */
void pt__stats_on_status(const pt__sched_stage *st, const pt__sched_task *t,
                         const Protium__TaskStatus *ts);
/* A task in flight on a lost executor: failed if it had started (or timed
 * out), requeued if it was only queued or is innocent (it ran beside the
 * task whose crash ended the process). */
void pt__stats_on_lost_task(const pt__sched_stage *st, const pt__sched_task *t, int timed_out,
                            int innocent);
/* A task still in flight when its job ended (t->stage still set). */
void pt__stats_on_orphan(const pt__sched_task *t);
void pt__stats_on_output_lost(const pt__sched_stage *st, int64_t m);
/* An executor lost (lost = 1) or started (0): counted for every active job. */
void pt__stats_on_executor(pt__driver *d, int lost);
/* The finished job's metrics, moved into a new pt_job_stats (caller owns;
 * NULL without memory). */
pt_job_stats *pt__stats_take(pt__job *job, int status);
void pt__stats_free(pt__jstats *js);
/* Deep copy; on PT_OK the caller owns *out. */
int pt__stats_copy(const pt_job_stats *src, pt_job_stats **out);

#endif /* PT_SCHED_H */
