/* cluster.c — the local cluster backend: a driver thread running a libuv
 * loop that listens on <session_dir>/driver.sock, spawns executor processes
 * (this same program, see pt_session_open), frames control messages to and
 * from them, and declares them lost on EOF, exit or a missing heartbeat.
 * Starting and killing an executor process are the two operations another
 * backend (standalone, Slurm) provides: see pt__backend.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "net/net.h"
#include "sched/sched.h"

/* An accepted connection; bound to its executor by the Hello it sends. */
struct pt__driver_conn {
  union {
    uv_pipe_t pipe; /* net.transport = unix; also names the stream for both */
    uv_tcp_t tcp;   /* net.transport = tcp */
  };
  int authed;        /* TCP: the handshake passed (tcp.h); before it nothing is decoded */
  uint8_t nonce[PT__AUTH_NONCE];
  /* net.tls = on: the connection's TLS; what the socket brought lands in
   * raw and comes out of tls as plaintext in `in`. The HMAC challenge goes
   * once the TLS handshake is done (challenged). */
  pt__tls *tls;
  pt_buf raw;
  int challenged;
  pt__driver *d;
  pt__executor *ex;      /* NULL until Hello */
  pt_buf in;         /* bytes read, not yet parsed */
  int closing;
  int fd;            /* the socket, for submit_turn's writes; -1 until accepted */
  /* TCP, until the handshake passes: in d->unauthed, closed by the tick
   * after AUTH_DEADLINE_NS (a peer that never answers holds no socket). */
  uint64_t accepted_ns;
  pt__driver_conn *prev_unauthed, *next_unauthed;
  int in_unauthed;
};

#define AUTH_DEADLINE_NS (10 * 1000000000ull)

static void unauthed_unlink(pt__driver_conn *c) {
  if (!c->in_unauthed) return;
  if (c->prev_unauthed) c->prev_unauthed->next_unauthed = c->next_unauthed;
  else c->d->unauthed = c->next_unauthed;
  if (c->next_unauthed) c->next_unauthed->prev_unauthed = c->prev_unauthed;
  c->in_unauthed = 0;
}

/* ------------------------------------------------------------------------ */
/* Frames out */

int pt__cluster_send(pt__executor *ex, uint16_t type, const ProtobufCMessage *msg) {
  return pt__frame_append(&ex->out, (pt__msg_type)type, msg, NULL);
}

static void write_cb(uv_write_t *req, int status);

/* Output buffers keep their memory from write to write, but not the tens
 * of MiB one large all_gather reply needed. */
#define KEEP_OUT_BYTES (8u << 20)

static void shrink(pt_buf *b) {
  if (b->len == 0 && b->cap > KEEP_OUT_BYTES) pt_buf_free(b);
}

/* Moves lazy frames to the end of out when something else is to be written
 * (or with all set). */
static void take_lazy(pt__executor *ex, int all) {
  if (ex->lazy.len > 0 && (ex->out.len > 0 || all) && ex->frame_start < 0) {
    if (pt__buf_append(&ex->out, ex->lazy.data, ex->lazy.len) == PT_OK) ex->lazy.len = 0;
  }
}

/* Writes what is in out (with lazy frames riding along); with all set,
 * lazy frames alone too. */
static void exec_flush_lazy(pt__executor *ex, int all) {
  if (ex->writing || !ex->conn || ex->conn->closing) return;
  take_lazy(ex, all);
  if (ex->out.len == 0) return;
  if (ex->conn->tls) {
    /* Encrypted in place: out then holds records, written as frames were. */
    pt_error e = {0};
    int rc = pt__tls_send(ex->conn->tls, ex->out.data, ex->out.len, &e);
    ex->out.len = 0;
    if (rc == PT_OK) rc = pt__tls_take(ex->conn->tls, &ex->out, &e);
    if (rc != PT_OK) {
      char why[PT_ERROR_SIZE + 64];
      snprintf(why, sizeof why, "executor %lld lost: %s", (long long)ex->id, e.message);
      pt__cluster_lose(ex, why, 0, NULL);
      return;
    }
  }
  /* Frames usually fit in the socket buffer: write them now, without a
   * request whose callback costs the loop another turn. What does not fit,
   * and any error (reported by write_cb as before, after the EOF or exit
   * that usually explains it), goes through uv_write. */
  uv_buf_t b = uv_buf_init(ex->out.data, (unsigned)ex->out.len);
  int n = uv_try_write((uv_stream_t *)&ex->conn->pipe, &b, 1);
  if (n == (int)ex->out.len) {
    ex->out.len = 0;
    shrink(&ex->out);
    return;
  }
  size_t done = n > 0 ? (size_t)n : 0;
  pt_buf t = ex->wbuf;
  ex->wbuf = ex->out;
  ex->out = t;
  ex->out.len = 0;
  shrink(&ex->out);
  b = uv_buf_init(ex->wbuf.data + done, (unsigned)(ex->wbuf.len - done));
  ex->wreq.data = ex;
  if (uv_write(&ex->wreq, (uv_stream_t *)&ex->conn->pipe, &b, 1, write_cb) == 0) ex->writing = 1;
  else pt__cluster_lose(ex, "write to executor failed", 0, NULL);
}

static void exec_flush(pt__executor *ex) { exec_flush_lazy(ex, 0); }

static void write_cb_locked(uv_write_t *req, int status) {
  pt__executor *ex = req->data;
  ex->writing = 0;
  ex->wbuf.len = 0;
  shrink(&ex->wbuf);
  if (status < 0) {
    if (ex->state != PT__EXEC_LOST) {
      char why[128];
      snprintf(why, sizeof why, "executor %lld lost: write failed: %s", (long long)ex->id,
               uv_strerror(status));
      pt__cluster_lose(ex, why, 0, NULL);
    }
    return;
  }
  exec_flush(ex);
}

/* Every callback holds loop_mu (see sched.h). */
static void write_cb(uv_write_t *req, int status) {
  pt__driver *d_ = ((pt__executor *)req->data)->d;
  pthread_mutex_lock(&d_->loop_mu);
  write_cb_locked(req, status);
  pthread_mutex_unlock(&d_->loop_mu);
}

/* ------------------------------------------------------------------------ */
/* Executor table shared with the user thread */

static void infos_update(pt__driver *d, pt__executor *ex, int alive) {
  pthread_mutex_lock(&d->mu);
  int64_t i = 0;
  while (i < d->n_infos && d->infos[i].id != ex->id) i++;
  if (alive && i == d->n_infos) {
    if (d->n_infos == d->cap_infos) {
      int64_t cap = d->cap_infos ? d->cap_infos * 2 : 8;
      pt_executor_info *p = pt__realloc(d->infos, (size_t)cap * sizeof *p);
      if (!p) goto unlock;
      d->infos = p;
      d->cap_infos = cap;
    }
    pt_executor_info *info = &d->infos[d->n_infos++];
    memset(info, 0, sizeof *info);
    *info = (pt_executor_info){.id = ex->id, .pid = ex->pid, .slots = ex->slots, .alive = 1};
    pt__res_fill_info(ex->res, info);
  } else if (!alive && i < d->n_infos) {
    memmove(&d->infos[i], &d->infos[i + 1], (size_t)(d->n_infos - i - 1) * sizeof *d->infos);
    d->n_infos--;
  }
unlock:
  pthread_mutex_unlock(&d->mu);
}

int pt__driver_executors(pt__driver *d, pt_executor_info *out, int64_t cap, int64_t *n) {
  pthread_mutex_lock(&d->mu);
  for (int64_t i = 0; i < d->n_infos && i < cap; i++) out[i] = d->infos[i];
  *n = d->n_infos;
  pthread_mutex_unlock(&d->mu);
  return PT_OK;
}

void pt__driver_progress(pt__driver *d, pt_job_progress *out, int64_t cap, int64_t *n) {
  uint64_t now = uv_hrtime();
  int64_t k = 0;
  pthread_mutex_lock(&d->loop_mu);
  for (pt__job *j = d->active; j; j = j->next, k++) {
    if (k >= cap) continue;
    pt_job_progress *p = &out[k];
    memset(p, 0, sizeof *p);
    p->job_id = j->id;
    p->stages = j->n_stages;
    p->elapsed_us = pt__stats_job_elapsed_us(j, now);
    for (int64_t i = 0; i < j->n_stages; i++) {
      const pt__sched_stage *st = j->stages[i];
      p->stages_done += st->state == PT__STAGE_DONE;
      p->tasks += st->partitions;
      p->tasks_done += st->n_done;
      if (st->running)
        for (int64_t q = 0; q < st->partitions; q++) p->tasks_running += st->running[q];
    }
  }
  pthread_mutex_unlock(&d->loop_mu);
  *n = k;
}

/* ------------------------------------------------------------------------ */
/* Spawning and losing executors */

static void exit_cb(uv_process_t *proc, int64_t status, int signo);

/* This program and its argv[0], found once per process. */
static pthread_once_t self_once = PTHREAD_ONCE_INIT;
static char self_exe[4096];
static char argv0[4096];
static int self_errno;

static void find_self(void) {
  ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
  if (n <= 0) {
    self_errno = errno;
    self_exe[0] = 0;
    return;
  }
  self_exe[n] = 0;
  FILE *f = fopen("/proc/self/cmdline", "r");
  size_t got = f ? fread(argv0, 1, sizeof argv0 - 1, f) : 0;
  if (f) fclose(f);
  argv0[got] = 0;
  if (!argv0[0]) snprintf(argv0, sizeof argv0, "%s", self_exe);
}

static void proc_close_cb(uv_handle_t *h) { (void)h; }

/* A new executor: an entry in the table, its directory, then its process
 * from the backend. */
static int exec_spawn(pt__driver *d, pt_error *err) {
  pt__executor *ex = pt__calloc(1, sizeof *ex);
  if (!ex) return pt__errorf(err, PT_ENOMEM, "out of memory");
  if (d->n_execs == d->cap_execs) {
    int32_t cap = d->cap_execs ? d->cap_execs * 2 : 8;
    pt__executor **p = pt__realloc(d->execs, (size_t)cap * sizeof *p);
    if (!p) {
      pt__free(ex);
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    }
    d->execs = p;
    d->cap_execs = cap;
  }
  ex->d = d;
  /* The first seat no live executor holds: a replacement inherits the
   * resources of the executor it replaces. */
  for (ex->seat = 0; ex->seat < d->opts.n_executors - 1; ex->seat++) {
    int taken = 0;
    for (int32_t i = 0; i < d->n_execs; i++)
      taken |= d->execs[i]->state != PT__EXEC_LOST && d->execs[i]->seat == ex->seat;
    if (!taken) break;
  }
  ex->res = &d->res[ex->seat];
  ex->id = ++d->next_exec_id;
  ex->slots = d->opts.slots;
  ex->head = ex->tail = -1;
  ex->frame_start = -1;
  ex->state = PT__EXEC_STARTING;
  size_t dl = strlen(d->session_dir) + 32;
  ex->dir = pt__malloc(dl);
  if (!ex->dir) {
    pt__free(ex);
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  snprintf(ex->dir, dl, "%s/exec-%lld", d->session_dir, (long long)ex->id);
  if (mkdir(ex->dir, 0700) != 0 && errno != EEXIST) {
    int e = errno;
    pt__errorf(err, PT_EIO, "cannot create executor directory '%s': %s", ex->dir, strerror(e));
    pt__free(ex->dir);
    pt__free(ex);
    return PT_EIO;
  }
  d->execs[d->n_execs] = ex;
  ex->index = d->n_execs++;
  pt__stats_on_executor(d, 0);
  int rc = d->backend->start(d, ex, err);
  if (rc != PT_OK) {
    /* no process: nothing to kill or wait for */
    ex->state = PT__EXEC_LOST;
    ex->exited = 1;
    pt__rm_rf(ex->dir);
  }
  return rc;
}

/* ------------------------------------------------------------------------ */
/* The local backend: executors are this program, spawned with uv_spawn; the
 * loop's exit callback reports their end. */

static int dropped(const char *var, const char *const *drop) {
  for (; drop && *drop; drop++)
    if (strncmp(var, *drop, strlen(*drop)) == 0) return 1;
  return 0;
}

int pt__cluster_spawn(pt__driver *d, pt__executor *ex, const char *const *prefix,
                      const char *const *drop, const char *const *extra, pt_error *err) {
  char buf[2][64];
  /* Environment: ours plus the four PROTIUM_EXECUTOR_* variables. */
  extern char **environ;
  size_t n_env = 0, n_prefix = 0, n_extra = 0;
  while (environ[n_env]) n_env++;
  while (prefix && prefix[n_prefix]) n_prefix++;
  while (extra && extra[n_extra]) n_extra++;
  char **env = pt__calloc(n_env + n_extra + 11, sizeof *env);
  char **args = pt__calloc(n_prefix + 8, sizeof *args);
  const char *where = d->connect_addr ? d->connect_addr : d->sock_path;
  char *sock_var = pt__malloc(strlen(where) + 32);
  char secret_var[32 + 2 * PT__SECRET_MAX] = "";
  char *dir_var = pt__malloc(strlen(ex->dir) + 32);
  char *san[2] = {NULL, NULL};
  int rc = PT_OK;
  if (!env || !args || !sock_var || !dir_var) {
    rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    goto free_env;
  }
  size_t k = 0;
  if (pt__sanitized()) {
    /* Reports into the session (<dir>/sanitizer/exec-<id>.<pid>), checked
     * by pt__driver_stop; see src/core/sanitize.c. */
    char prefix[4200];
    snprintf(prefix, sizeof prefix, "%s/sanitizer/exec-%lld", d->session_dir, (long long)ex->id);
    san[0] = pt__sanitizer_env("ASAN_OPTIONS", prefix);
    san[1] = pt__sanitizer_env("UBSAN_OPTIONS", prefix);
    for (int i = 0; i < 2; i++)
      if (san[i]) env[k++] = san[i];
  }
  for (size_t i = 0; i < n_env; i++)
    if (strncmp(environ[i], "PROTIUM_EXECUTOR_", 17) != 0 &&
        strncmp(environ[i], "PROTIUM_SECRET=", 15) != 0 &&
        !(san[0] && strncmp(environ[i], "ASAN_OPTIONS=", 13) == 0) &&
        !(san[1] && strncmp(environ[i], "UBSAN_OPTIONS=", 14) == 0) &&
        !dropped(environ[i], drop))
      env[k++] = environ[i];
  for (size_t i = 0; i < n_extra; i++) env[k++] = (char *)extra[i];
  sprintf(sock_var, "PROTIUM_EXECUTOR_SOCKET=%s", where);
  sprintf(dir_var, "PROTIUM_EXECUTOR_DIR=%s", ex->dir);
  snprintf(buf[0], sizeof buf[0], "PROTIUM_EXECUTOR_ID=%lld", (long long)ex->id);
  snprintf(buf[1], sizeof buf[1], "PROTIUM_EXECUTOR_SLOTS=%d", (int)ex->slots);
  env[k++] = sock_var;
  env[k++] = dir_var;
  env[k++] = buf[0];
  env[k++] = buf[1];
  if (d->connect_addr) {
    /* The environment, not argv: ps shows every user's command lines, and
     * the executor unsets it before it runs a task. */
    strcpy(secret_var, "PROTIUM_EXECUTOR_SECRET=");
    pt__secret_hex(&d->secret, secret_var + 24, sizeof secret_var - 24);
    env[k++] = secret_var;
  }
  for (int i = 0; i < 3 && d->tls; i++) env[k++] = d->tls_files[i];
  env[k] = NULL;

  /* argv[0] preserved: programs that look at it see themselves. */
  pthread_once(&self_once, find_self);
  if (!self_exe[0] && !d->command) {
    rc = pt__errorf(err, PT_EIO, "cannot find this program (/proc/self/exe): %s",
                    strerror(self_errno));
    goto free_env;
  }
  /* A configured command (executor.command: a Python driver's executor is
   * the Python package's, not the interpreter started bare) goes through
   * the shell so that its quoting is the shell's; exec keeps the pid. */
  char sh_name[] = "sh", sh_c[] = "-c", sh_path[] = "/bin/sh";
  size_t a = 0;
  for (size_t i = 0; i < n_prefix; i++) args[a++] = (char *)prefix[i];
  if (d->command) {
    args[a++] = n_prefix ? sh_path : sh_name;
    args[a++] = sh_c;
    args[a++] = d->command;
  } else {
    /* Behind a prefix (srun) the program is named by its path. */
    args[a++] = n_prefix ? self_exe : argv0;
  }
  args[a] = NULL;
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = 1},
      {.flags = UV_INHERIT_FD, .data.fd = 2}};
  uv_process_options_t po = {0};
  po.exit_cb = exit_cb;
  po.file = n_prefix ? prefix[0] : d->command ? "/bin/sh" : self_exe;
  po.args = args;
  po.env = env;
  po.stdio = stdio;
  po.stdio_count = 3;
  ex->proc.data = ex;
  int uvrc = uv_spawn(&d->loop, &ex->proc, &po);
  if (uvrc != 0) {
    rc = pt__errorf(err, PT_EIO, "cannot start executor %lld (%s): %s", (long long)ex->id,
                    n_prefix ? prefix[0] : d->command ? d->command + 5 : self_exe,
                    uv_strerror(uvrc));
    ex->state = PT__EXEC_LOST;
    ex->exited = 1;
    uv_close((uv_handle_t *)&ex->proc, proc_close_cb);
    goto free_env;
  }
  ex->pid = ex->proc.pid;
  ex->last_seen_ns = uv_hrtime();
free_env:
  OPENSSL_cleanse(secret_var, sizeof secret_var);
  pt__free(env);
  pt__free(args);
  pt__free(san[0]);
  pt__free(san[1]);
  pt__free(sock_var);
  pt__free(dir_var);
  return rc;
}

static int local_start(pt__driver *d, pt__executor *ex, pt_error *err) {
  return pt__cluster_spawn(d, ex, NULL, NULL, NULL, err);
}

void pt__cluster_kill_process(pt__executor *ex) {
  /* pid 0 would be our own process group */
  if (!ex->exited && ex->pid > 0) uv_process_kill(&ex->proc, SIGKILL);
}

static void local_kill(pt__executor *ex) { pt__cluster_kill_process(ex); }

static const pt__backend local_backend = {"local", local_start, local_kill};

static void conn_close_cb(uv_handle_t *h) {
  pt__driver_conn *c = h->data;
  pt_buf_free(&c->in);
  pt_buf_free(&c->raw);
  pt__tls_free(c->tls);
  pt__free(c);
}

static void conn_close(pt__driver_conn *c) {
  if (c->closing) return;
  c->closing = 1;
  unauthed_unlink(c);
  if (c->ex && c->ex->conn == c) c->ex->conn = NULL;
  uv_close((uv_handle_t *)&c->pipe, conn_close_cb);
}

static void start_failed(pt__driver *d, const char *why) {
  pthread_mutex_lock(&d->mu);
  if (!d->start_failed) {
    d->start_failed = 1;
    snprintf(d->start_error, sizeof d->start_error, "%s", why);
  }
  pthread_cond_broadcast(&d->cv);
  pthread_mutex_unlock(&d->mu);
}

/* Starts executors until there are n_executors (not lost). When none can be
 * started and none is left, running jobs fail rather than wait forever; a
 * later tick tries again for later jobs. */
static void replace_executors(pt__driver *d) {
  int live = 0;
  for (int32_t i = 0; i < d->n_execs; i++) live += d->execs[i]->state != PT__EXEC_LOST;
  while (live < d->opts.n_executors) {
    pt_error err = {0};
    if (exec_spawn(d, &err) != PT_OK) {
      if (live == 0) {
        char why[PT_ERROR_SIZE];
        snprintf(why, sizeof why, "no executor left and none can be started: %.900s",
                 err.message);
        pt__sched_fail_all(d, PT_EIO, why);
      }
      return;
    }
    live++;
  }
}

/* The task named by the crash note in the executor's directory, or 0. */
static int64_t read_crash_note(const char *dir) {
  char path[4096], text[32];
  if (dir == NULL) return 0;
  int n = snprintf(path, sizeof path, "%s/%s", dir, PT__CRASH_NOTE);
  if (n < 0 || (size_t)n >= sizeof path) return 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t got = read(fd, text, sizeof text - 1);
  close(fd);
  if (got <= 0) return 0;
  text[got] = '\0';
  char *end;
  long long id = strtoll(text, &end, 10);
  return end != text && *end == '\n' && id > 0 ? (int64_t)id : 0;
}

void pt__cluster_lose(pt__executor *ex, const char *cause, int64_t timed_out_task,
                   const char *cause_timeout) {
  pt__driver *d = ex->d;
  if (ex->state == PT__EXEC_LOST) return;
  int was_ready = ex->state == PT__EXEC_READY;
  ex->state = PT__EXEC_LOST;
  pt__slurm_on_lost(ex);
  d->backend->kill(ex);
  if (ex->conn) conn_close(ex->conn);
  ex->out.len = 0;
  ex->lazy.len = 0;
  ex->frame_start = -1;
  int64_t crashed_task = read_crash_note(ex->dir);
  pt__rm_rf(ex->dir); /* its shuffle outputs are gone with it */
  infos_update(d, ex, 0);
  pt__sched_on_executor_lost(d, ex, cause, timed_out_task, cause_timeout, crashed_task);
  if (d->stopping) return;
  if (!was_ready) {
    /* Lost before Hello: during pt_session_open that fails the open; later
     * a few in a row mean executors cannot start at all. */
    pthread_mutex_lock(&d->mu);
    int starting = d->n_hello < d->opts.n_executors;
    pthread_mutex_unlock(&d->mu);
    if (starting) {
      start_failed(d, cause);
      return;
    }
    if (++d->start_failures >= 3) {
      /* No fork storm: from now on the tick starts at most one round of
       * executors per tick, and jobs fail at once until one connects. */
      pt__sched_fail_all(d, PT_EIO, "executors keep exiting before they connect to the driver; run "
                            "the program alone to see their messages");
      return;
    }
  }
  /* A replacement; if it cannot be started now, the tick tries again. */
  replace_executors(d);
  d->need_schedule = 1;
}

void pt__cluster_lose_unreachable(pt__driver *d, int64_t exec_id, const pt__executor *reporter) {
  for (int32_t i = 0; i < d->n_execs; i++) {
    pt__executor *ex = d->execs[i];
    if (ex->id != exec_id || ex == reporter || ex->state == PT__EXEC_LOST) continue;
    char why[200];
    snprintf(why, sizeof why, "executor %lld lost: its block server cannot be reached from "
             "executor %lld", (long long)ex->id, (long long)reporter->id);
    pt__cluster_lose(ex, why, 0, NULL);
  }
}

static void exit_cb_locked(uv_process_t *proc, int64_t status, int signo) {
  pt__executor *ex = proc->data;
  ex->exited = 1;
  uv_close((uv_handle_t *)proc, proc_close_cb);
  if (ex->state != PT__EXEC_LOST) {
    char why[256];
    if (signo)
      snprintf(why, sizeof why, "executor %lld lost: killed by signal %d (%s)",
               (long long)ex->id, signo, strsignal(signo));
    else if (ex->state == PT__EXEC_STARTING)
      snprintf(why, sizeof why,
               "executor %lld exited with status %lld before it connected to the driver; "
               "is the program linked with libprotium's executor (see pt_session_open)?",
               (long long)ex->id, (long long)status);
    else
      snprintf(why, sizeof why, "executor %lld lost: exited with status %lld", (long long)ex->id,
               (long long)status);
    pt__cluster_lose(ex, why, 0, NULL);
  }
  /* During shutdown: stop once every process is gone. */
  if (ex->d->stopping) {
    int all = 1;
    for (int32_t i = 0; i < ex->d->n_execs; i++) all &= ex->d->execs[i]->exited;
    if (all) uv_stop(&ex->d->loop);
  }
}

/* Every callback holds loop_mu (see sched.h). */
static void exit_cb(uv_process_t *proc, int64_t status, int signo) {
  pt__driver *d_ = ((pt__executor *)proc->data)->d;
  pthread_mutex_lock(&d_->loop_mu);
  exit_cb_locked(proc, status, signo);
  pthread_mutex_unlock(&d_->loop_mu);
}

/* ------------------------------------------------------------------------ */
/* Frames in */

static void on_hello(pt__driver_conn *c, const Protium__Hello *h) {
  pt__driver *d = c->d;
  pt__executor *ex = NULL;
  for (int32_t i = 0; i < d->n_execs; i++)
    if (d->execs[i]->id == h->executor_id) ex = d->execs[i];
  if (!ex || ex->state != PT__EXEC_STARTING || h->protocol_version != PT__PROTOCOL_VERSION) {
    conn_close(c); /* a stranger, a replaced executor, or another version */
    return;
  }
  c->ex = ex;
  ex->conn = c;
  ex->state = PT__EXEC_READY;
  if (h->slots > 0) ex->slots = h->slots;
  pt__free(ex->host);
  ex->host = pt__strdup(h->host ? h->host : "");
  pt__free(ex->block_address);
  ex->block_address = h->block_address && *h->block_address ? pt__strdup(h->block_address) : NULL;
  ex->last_seen_ns = uv_hrtime();
  d->start_failures = 0;
  /* Slurm: the GPUs its step was given are its seat's (the seat's last
   * executor is lost, and with it every grant). */
  if (d->slurm && ex->res &&
      pt__res_ledger_set(ex->res, h->resources, h->n_resources, NULL) != PT_OK) {
    pt__cluster_lose(ex, "out of memory", 0, NULL);
    return;
  }

  Protium__Welcome w = PROTIUM__WELCOME__INIT;
  size_t n = d->opts.n_conf;
  Protium__ConfEntry *entries = pt__calloc(n + 1, sizeof *entries);
  Protium__ConfEntry **ptrs = pt__calloc(n + 1, sizeof *ptrs);
  if (!entries || !ptrs) {
    pt__free(entries);
    pt__free(ptrs);
    pt__cluster_lose(ex, "out of memory", 0, NULL);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    protium__conf_entry__init(&entries[i]);
    entries[i].key = d->conf_kv[2 * i];
    entries[i].value = d->conf_kv[2 * i + 1];
    ptrs[i] = &entries[i];
  }
  w.session_dir = d->session_dir;
  /* Executors on this machine write results where the driver maps them,
   * in memory; one on another host writes below the (shared) session
   * directory or streams them. */
  w.results_dir = d->results_memory && pt__executor_here(ex) ? d->results_memory : (char *)"";
  ex->results_stream = pt__results_stream_for(d, ex);
  w.results_stream = ex->results_stream;
  w.heartbeat_interval_ms = d->opts.heartbeat_interval_ms;
  w.heartbeat_timeout_ms = d->opts.heartbeat_timeout_ms;
  w.n_conf = n;
  w.conf = ptrs;
  /* Its seat's resources, which its tasks' grants index. */
  int32_t n_res = ex->res ? ex->res->n : 0, n_addrs = 0;
  for (int32_t i = 0; i < n_res; i++) n_addrs += ex->res->pools[i].n;
  Protium__Resource *res = pt__calloc((size_t)n_res + 1, sizeof *res);
  Protium__Resource **res_ptrs = pt__calloc((size_t)n_res + 1, sizeof *res_ptrs);
  char **addrs = pt__calloc((size_t)n_addrs + 1, sizeof *addrs);
  int rc = res && res_ptrs && addrs ? PT_OK : PT_ENOMEM;
  for (int32_t i = 0, a = 0; i < n_res && rc == PT_OK; a += ex->res->pools[i++].n) {
    pt__res_table_entry(ex->res, i, &res[i], &addrs[a]);
    res_ptrs[i] = &res[i];
  }
  w.n_resources = (size_t)n_res;
  w.resources = res_ptrs;
  if (rc == PT_OK) rc = pt__cluster_send(ex, PT__MSG_WELCOME, &w.base);
  pt__free(entries);
  pt__free(ptrs);
  pt__free(res);
  pt__free(res_ptrs);
  pt__free(addrs);
  if (rc != PT_OK) {
    pt__cluster_lose(ex, "out of memory", 0, NULL);
    return;
  }
  /* Welcome goes out now: the executor is blocked waiting for it. */
  exec_flush(ex);
  infos_update(d, ex, 1);
  pthread_mutex_lock(&d->mu);
  d->n_hello++;
  pthread_cond_broadcast(&d->cv);
  pthread_mutex_unlock(&d->mu);
  d->need_schedule = 1;
}

static void protocol_error(pt__driver_conn *c, const char *what) {
  if (c->ex) {
    char why[256];
    snprintf(why, sizeof why, "executor %lld lost: protocol error: %s", (long long)c->ex->id,
             what);
    pt__cluster_lose(c->ex, why, 0, NULL);
  }
  conn_close(c);
}

static void on_frame(pt__driver_conn *c, uint16_t type, const uint8_t *p, size_t n) {
  if (!c->ex && type != PT__MSG_HELLO) {
    protocol_error(c, "first message is not Hello");
    return;
  }
  switch (type) {
  case PT__MSG_HELLO: {
    Protium__Hello *h = protium__hello__unpack(&pt__pb_allocator, n, p);
    if (!h) return protocol_error(c, "bad Hello");
    if (c->ex) protocol_error(c, "second Hello");
    else on_hello(c, h);
    protium__hello__free_unpacked(h, &pt__pb_allocator);
    return;
  }
  case PT__MSG_HEARTBEAT:
    return;
  case PT__MSG_BARRIER_CALL: {
    if (c->d->fault_stall_ms > 0) {
      struct timespec ts = {.tv_sec = c->d->fault_stall_ms / 1000,
                            .tv_nsec = (c->d->fault_stall_ms % 1000) * 1000000};
      c->d->fault_stall_ms = 0;
      nanosleep(&ts, NULL);
    }
    Protium__BarrierCall *bc = protium__barrier_call__unpack(&pt__pb_allocator, n, p);
    if (!bc) return protocol_error(c, "bad BarrierCall");
    if (c->ex->state == PT__EXEC_READY) pt__barrier_on_call(c->d, c->ex, bc);
    protium__barrier_call__free_unpacked(bc, &pt__pb_allocator);
    return;
  }
  case PT__MSG_BARRIER_FAULT: {
    Protium__BarrierFault *bf = protium__barrier_fault__unpack(&pt__pb_allocator, n, p);
    if (!bf) return protocol_error(c, "bad BarrierFault");
    if (c->ex->state == PT__EXEC_READY) pt__barrier_on_fault(c->d, c->ex, bf);
    protium__barrier_fault__free_unpacked(bf, &pt__pb_allocator);
    return;
  }
  case PT__MSG_STATUS_BATCH: {
    Protium__StatusBatch *b = protium__status_batch__unpack(&pt__pb_allocator, n, p);
    if (!b) return protocol_error(c, "bad StatusBatch");
    for (size_t i = 0; i < b->n_statuses && c->ex && c->ex->state == PT__EXEC_READY; i++)
      pt__sched_on_status(c->d, c->ex, b->statuses[i]);
    protium__status_batch__free_unpacked(b, &pt__pb_allocator);
    c->d->need_schedule = 1;
    return;
  }
  default:
    protocol_error(c, "unexpected message type");
  }
}

/* Before the connection is bound to an executor: writes len bytes (through
 * TLS when on) at once. A fresh socket's buffer always takes them; one that
 * does not is a peer to drop. */
static int send_small(pt__driver_conn *c, const void *data, size_t len) {
  pt_buf enc = {0};
  const void *p = data;
  if (c->tls) {
    if (len > 0 && pt__tls_send(c->tls, data, len, NULL) != PT_OK) return PT_EIO;
    if (pt__tls_take(c->tls, &enc, NULL) != PT_OK) {
      pt_buf_free(&enc);
      return PT_ENOMEM;
    }
    p = enc.data;
    len = enc.len;
  }
  int rc = PT_OK;
  if (len > 0) {
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    if (uv_try_write((uv_stream_t *)&c->tcp, &b, 1) != (int)len) rc = PT_EIO;
  }
  pt_buf_free(&enc);
  return rc;
}

static void refused(pt__driver_conn *c, const char *why) {
  char peer[128];
  pt__peer_name(c->fd, peer, sizeof peer);
  fprintf(stderr, "protium: refused a connection from %s: %s\n", peer, why);
  conn_close(c);
}

/* The HMAC challenge: first thing on a plain TCP connection, first thing
 * inside TLS on a TLS one. */
static int send_challenge(pt__driver_conn *c) {
  uint8_t ch[PT__AUTH_CHALLENGE];
  c->challenged = 1;
  if (pt__auth_challenge(ch, c->nonce, NULL) != PT_OK) return PT_EIO;
  return send_small(c, ch, sizeof ch);
}

/* net.tls = on: decrypts what came into raw, appending the plaintext to in.
 * 0 when the connection was closed (refused before the handshake, lost
 * after). */
static int tls_input(pt__driver_conn *c) {
  pt_error e = {0};
  int closed = 0;
  int rc = pt__tls_recv(c->tls, c->raw.data, c->raw.len, &c->in, &closed, &e);
  c->raw.len = 0;
  if (!c->authed || rc != PT_OK) {
    /* Handshake messages, or the alert that tells the peer why not. Once
     * authenticated, what TLS has to say rides with the next frames. */
    (void)send_small(c, NULL, 0);
  }
  if (rc == PT_OK && closed) rc = pt__errorf(&e, PT_EIO, "connection closed");
  if (rc != PT_OK) {
    if (c->ex) {
      char why[PT_ERROR_SIZE + 64];
      snprintf(why, sizeof why, "executor %lld lost: %s", (long long)c->ex->id, e.message);
      pt__cluster_lose(c->ex, why, 0, NULL);
      conn_close(c);
    } else {
      refused(c, e.message);
    }
    return 0;
  }
  if (!c->challenged && pt__tls_ready(c->tls) && send_challenge(c) != PT_OK) {
    conn_close(c);
    return 0;
  }
  return 1;
}

/* TCP: checks the handshake bytes received so far; on success answers with
 * the proof and drops them from c->in. 0 while it is not done (or refused:
 * then the connection is closed, logged, and nothing it sent is decoded). */
static int authenticate(pt__driver_conn *c) {
  uint8_t proof[PT__AUTH_PROOF];
  int done = 0;
  pt_error e = {0};
  if (pt__auth_check(&c->d->secret, c->nonce, (const uint8_t *)c->in.data, c->in.len, &done,
                     proof, &e) != PT_OK) {
    refused(c, e.message);
    return 0;
  }
  if (!done) return 0;
  if (send_small(c, proof, sizeof proof) != PT_OK) {
    conn_close(c);
    return 0;
  }
  c->authed = 1;
  unauthed_unlink(c);
  memmove(c->in.data, c->in.data + PT__AUTH_RESPONSE, c->in.len - PT__AUTH_RESPONSE);
  c->in.len -= PT__AUTH_RESPONSE;
  return 1;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  pt__driver_conn *c = h->data;
  (void)suggested;
  pt_buf *into = c->tls ? &c->raw : &c->in;
  if (pt__buf_reserve(into, 65536) != PT_OK) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  *buf = uv_buf_init(into->data + into->len, (unsigned)(into->cap - into->len));
}

static void read_cb_locked(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  pt__driver_conn *c = s->data;
  (void)buf;
  if (nread < 0) {
    if (c->ex) {
      char why[160];
      snprintf(why, sizeof why, "executor %lld lost: connection %s", (long long)c->ex->id,
               nread == UV_EOF ? "closed" : uv_strerror((int)nread));
      pt__cluster_lose(c->ex, why, 0, NULL);
    }
    conn_close(c);
    return;
  }
  /* Bytes count as a sign of life, not whole frames: a peer sending a
   * frame of many MiB over a slow link is still there. */
  if (nread > 0 && c->ex) c->ex->last_seen_ns = uv_hrtime();
  if (c->tls) {
    c->raw.len += (size_t)nread;
    if (!tls_input(c)) return;
  } else {
    c->in.len += (size_t)nread;
  }
  if (!c->authed && (!c->challenged || !authenticate(c))) return;
  size_t off = 0;
  while (!c->closing && c->in.len - off >= 4) {
    const uint8_t *h = (const uint8_t *)c->in.data + off;
    uint32_t len = pt__load_u32(h);
    if (len < 4 || len > PT__MAX_FRAME) return protocol_error(c, "bad frame length");
    if (c->in.len - off < 4 + (size_t)len) break;
    uint16_t version = (uint16_t)(h[4] | h[5] << 8);
    uint16_t type = (uint16_t)(h[6] | h[7] << 8);
    if (version != PT__PROTOCOL_VERSION) return protocol_error(c, "unknown protocol version");
    on_frame(c, type, h + PT__FRAME_HEADER, len - 4);
    off += 4 + (size_t)len;
  }
  if (c->closing) return;
  if (off) {
    memmove(c->in.data, c->in.data + off, c->in.len - off);
    c->in.len -= off;
  }
}

/* Every callback holds loop_mu (see sched.h). */
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  pt__driver *d_ = ((pt__driver_conn *)s->data)->d;
  pthread_mutex_lock(&d_->loop_mu);
  read_cb_locked(s, nread, buf);
  pthread_mutex_unlock(&d_->loop_mu);
}

static void reject_close_cb(uv_handle_t *h) {
  pt__driver *d = h->data;
  d->reject_busy = 0;
}

static void connection_cb_locked(uv_stream_t *server, int status) {
  pt__driver *d = server->data;
  int tcp = server == (uv_stream_t *)&d->tcp_server;
  if (status < 0) return;
  pt__driver_conn *c = pt__calloc(1, sizeof *c);
  if (!c && tcp) {
    if (d->reject_busy) return;
    d->reject_busy = 1;
    uv_tcp_init(&d->loop, &d->tcp_reject);
    d->tcp_reject.data = d;
    (void)uv_accept(server, (uv_stream_t *)&d->tcp_reject);
    uv_close((uv_handle_t *)&d->tcp_reject, reject_close_cb);
    return;
  }
  if (!c) {
    /* libuv accepts nothing more until this one is taken: take it with a
     * spare handle and close it; the executor sees EOF, exits, and is
     * replaced. */
    if (d->reject_busy) return;
    d->reject_busy = 1;
    uv_pipe_init(&d->loop, &d->reject, 0);
    d->reject.data = d;
    (void)uv_accept(server, (uv_stream_t *)&d->reject);
    uv_close((uv_handle_t *)&d->reject, reject_close_cb);
    return;
  }
  c->d = d;
  c->fd = -1;
  c->authed = !tcp; /* unix: the session directory (0700) is the check */
  if (tcp) uv_tcp_init(&d->loop, &c->tcp);
  else uv_pipe_init(&d->loop, &c->pipe, 0);
  c->pipe.data = c;
  uv_os_fd_t fd;
  if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 ||
      uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0) {
    conn_close(c);
    return;
  }
  c->fd = fd;
  if (tcp) {
    /* The challenge goes first, or TLS's handshake (the client speaks
     * first there), then the challenge inside it. */
    (void)uv_tcp_nodelay(&c->tcp, 1);
    if (d->tls ? pt__tls_new(d->tls, 1, &c->tls, NULL) != PT_OK : send_challenge(c) != PT_OK) {
      conn_close(c);
      return;
    }
  }
  if (uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb) != 0) {
    conn_close(c);
    return;
  }
  if (tcp) {
    c->accepted_ns = uv_hrtime();
    c->next_unauthed = d->unauthed;
    if (d->unauthed) d->unauthed->prev_unauthed = c;
    d->unauthed = c;
    c->in_unauthed = 1;
  }
}

/* Every callback holds loop_mu (see sched.h). */
static void connection_cb(uv_stream_t *server, int status) {
  pt__driver *d_ = (pt__driver *)server->data;
  pthread_mutex_lock(&d_->loop_mu);
  connection_cb_locked(server, status);
  pthread_mutex_unlock(&d_->loop_mu);
}

/* ------------------------------------------------------------------------ */
/* The loop */

static void handle_close_noop(uv_handle_t *h) { (void)h; }

static void kill_timer_cb_locked(uv_timer_t *t) {
  pt__driver *d = t->data;
  for (int32_t i = 0; i < d->n_execs; i++) {
    d->execs[i]->asked_to_stop = 0;
    d->backend->kill(d->execs[i]);
  }
}

/* Every callback holds loop_mu (see sched.h). */
static void kill_timer_cb(uv_timer_t *t) {
  pt__driver *d_ = (pt__driver *)t->data;
  pthread_mutex_lock(&d_->loop_mu);
  kill_timer_cb_locked(t);
  pthread_mutex_unlock(&d_->loop_mu);
}

/* Shutdown: ask executors to exit, SIGKILL those still there after 2 s (30 s
 * in a sanitizer build, where an executor's exit runs a leak check that takes
 * seconds on a loaded machine, and a killed one would lose its report); the
 * loop stops once every process has exited (exit_cb). */
static void begin_stop(pt__driver *d) {
  d->stopping = 1;
  pt__sched_fail_all(d, PT_ECANCELED, "the session was closed");
  int all = 1;
  for (int32_t i = 0; i < d->n_execs; i++) {
    pt__executor *ex = d->execs[i];
    if (ex->state == PT__EXEC_READY) {
      Protium__Shutdown sd = PROTIUM__SHUTDOWN__INIT;
      if (pt__cluster_send(ex, PT__MSG_SHUTDOWN, &sd.base) == PT_OK) {
        ex->asked_to_stop = 1;
        exec_flush(ex);
      }
    } else if (!ex->exited) {
      d->backend->kill(ex);
    }
    all &= ex->exited;
  }
  if (all) {
    uv_stop(&d->loop);
  } else {
    uv_timer_start(&d->kill_timer, kill_timer_cb, pt__sanitized() ? 30000 : 2000, 0);
  }
}

/* Wakes the loop thread (any thread). */
static void driver_wake(pt__driver *d) {
  uint64_t one = 1;
  ssize_t r = write(d->wake_fd, &one, sizeof one); /* fails only if the counter is full */
  (void)r;
}

void pt__cluster_wake(pt__driver *d) { driver_wake(d); }

static void wake_cb_locked(uv_poll_t *h, int status, int events) {
  pt__driver *d = h->data;
  uint64_t n;
  (void)status, (void)events;
  ssize_t r = read(d->wake_fd, &n, sizeof n); /* nonblocking: EAGAIN when drained */
  (void)r;
  pthread_mutex_lock(&d->mu);
  int stop = d->stop_requested;
  pthread_mutex_unlock(&d->mu);
  /* A submitting thread left work behind (a write that did not fit): the
   * prepare callback of this turn does it. */
  d->need_schedule = 1;
  if (stop && !d->stopping) begin_stop(d);
  if (!d->stopping) pt__results_poll(d);
  pt__sched_flush_done(d);
}

/* Every callback holds loop_mu (see sched.h). */
static void wake_cb(uv_poll_t *h, int status, int events) {
  pt__driver *d_ = (pt__driver *)h->data;
  pthread_mutex_lock(&d_->loop_mu);
  wake_cb_locked(h, status, events);
  pthread_mutex_unlock(&d_->loop_mu);
}

static void tick_cb_locked(uv_timer_t *t) {
  pt__driver *d = t->data;
  uint64_t now = uv_hrtime();
  uint64_t hb = (uint64_t)d->opts.heartbeat_timeout_ms * 1000000u;
  /* Timers run before the loop reads its sockets: after the loop itself
   * was held up (no CPU for seconds on a loaded machine), the heartbeats
   * of that time are still unread. Silence counts only up to the last
   * read. */
  uint64_t read_until = d->polled_ns < now ? d->polled_ns : now;
  for (int32_t i = 0; i < d->n_execs; i++) {
    pt__executor *ex = d->execs[i];
    /* an executor started or heard from after that read has last_seen_ns > read_until */
    uint64_t silent = read_until > ex->last_seen_ns ? read_until - ex->last_seen_ns : 0;
    if (ex->state == PT__EXEC_READY && silent > hb) {
      char why[160];
      snprintf(why, sizeof why, "executor %lld lost: no heartbeat for %lld ms", (long long)ex->id,
               (long long)d->opts.heartbeat_timeout_ms);
      pt__cluster_lose(ex, why, 0, NULL);
    } else if (ex->state == PT__EXEC_STARTING &&
               silent > (uint64_t)d->opts.start_timeout_ms * 1000000u) {
      char why[160];
      snprintf(why, sizeof why, "executor %lld did not connect to the driver within %lld ms "
               "(executor.start_timeout)", (long long)ex->id, (long long)d->opts.start_timeout_ms);
      pt__cluster_lose(ex, why, 0, NULL);
    }
  }
  /* Peers that never finished the handshake: refused like the others. */
  for (pt__driver_conn *c = d->unauthed, *next; c; c = next) {
    next = c->next_unauthed;
    if (now - c->accepted_ns < AUTH_DEADLINE_NS) continue;
    char peer[128];
    pt__peer_name(c->fd, peer, sizeof peer);
    fprintf(stderr, "protium: refused a connection from %s: auth: no handshake within 10 s\n",
            peer);
    conn_close(c);
  }
  /* Keep n_executors: a replacement that could not be started (out of
   * memory, fork failing) is tried again here. */
  if (!d->stopping) replace_executors(d);
  if (!d->stopping) pt__sched_on_tick(d, now);
  /* Cleanup that found nothing to ride with goes now. */
  for (int32_t i = 0; i < d->n_execs && !d->stopping; i++)
    if (d->execs[i]->state == PT__EXEC_READY) exec_flush_lazy(d->execs[i], 1);
}

/* Every callback holds loop_mu (see sched.h). */
static void tick_cb(uv_timer_t *t) {
  pt__driver *d_ = (pt__driver *)t->data;
  pthread_mutex_lock(&d_->loop_mu);
  tick_cb_locked(t);
  pthread_mutex_unlock(&d_->loop_mu);
}

/* Runs once per loop turn before it waits for I/O: launch what can be
 * launched, then one write per executor. */
static void prepare_cb_locked(uv_prepare_t *p) {
  pt__driver *d = p->data;
  d->polled_ns = uv_hrtime();
  if (d->need_schedule && !d->stopping) {
    d->need_schedule = 0;
    pt__sched_schedule(d);
  }
  pt__sched_flush_done(d);
  for (int32_t i = 0; i < d->n_execs; i++)
    if (d->execs[i]->state == PT__EXEC_READY) exec_flush(d->execs[i]);
}

/* Every callback holds loop_mu (see sched.h). */
static void prepare_cb(uv_prepare_t *p) {
  pt__driver *d_ = (pt__driver *)p->data;
  pthread_mutex_lock(&d_->loop_mu);
  prepare_cb_locked(p);
  pthread_mutex_unlock(&d_->loop_mu);
}

static void close_walk_cb(uv_handle_t *h, void *arg) {
  pt__driver *d = arg;
  if (uv_is_closing(h)) return;
  if ((h->type == UV_NAMED_PIPE && h != (uv_handle_t *)&d->server &&
       h != (uv_handle_t *)&d->reject) ||
      (h->type == UV_TCP && h != (uv_handle_t *)&d->tcp_server &&
       h != (uv_handle_t *)&d->tcp_reject))
    conn_close(h->data);
  else uv_close(h, handle_close_noop);
}

static void *driver_main(void *arg) {
  pt__driver *d = arg;
  /* A write to an executor that just died must fail with EPIPE, not kill
   * the user's program: SIGPIPE goes to the writing thread, this one. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  uv_run(&d->loop, UV_RUN_DEFAULT);
  /* Stopped: close every handle, then let the loop run their callbacks. */
  pthread_mutex_lock(&d->loop_mu);
  pt__sched_flush_done(d);
  uv_walk(&d->loop, close_walk_cb, d);
  pthread_mutex_unlock(&d->loop_mu);
  uv_run(&d->loop, UV_RUN_DEFAULT);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Lifecycle, called by the user thread */

/* How long a user thread yields its CPU after submitting a job. */
#define SUBMIT_YIELD_NS 5000

/* What prepare_cb does at the end of a loop turn, on a submitting user
 * thread (loop_mu held): launch, hand back finished jobs, write. It changes
 * no libuv state (the loop thread may be inside libuv meanwhile, between
 * callbacks): frames are written with send() on the socket, which libuv
 * does not write to while no uv_write of ours is in flight (ex->writing).
 * Returns 1 when the loop thread must finish the job (a write in flight,
 * one that did not fit or failed: its turn reports the error as usual). */
static int submit_turn(pt__driver *d) {
  if (d->need_schedule && !d->stopping) {
    d->need_schedule = 0;
    pt__sched_schedule(d);
  }
  pt__sched_flush_done(d);
  int wake = 0;
  for (int32_t i = 0; i < d->n_execs; i++) {
    pt__executor *ex = d->execs[i];
    if (ex->state != PT__EXEC_READY || ex->out.len == 0) continue;
    /* TLS: the loop thread encrypts (one thread drives a connection's TLS). */
    if (ex->writing || !ex->conn || ex->conn->closing || ex->conn->fd < 0 || ex->conn->tls) {
      wake = 1;
      continue;
    }
    take_lazy(ex, 0);
    /* MSG_NOSIGNAL: SIGPIPE is blocked on the loop thread only */
    ssize_t n = send(ex->conn->fd, ex->out.data, ex->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == (ssize_t)ex->out.len) {
      ex->out.len = 0;
      continue;
    }
    if (n > 0) {
      memmove(ex->out.data, ex->out.data + n, ex->out.len - (size_t)n);
      ex->out.len -= (size_t)n;
    }
    wake = 1;
  }
  return wake;
}

/* net.transport = tcp: listens on host:port (port 0: any free one) and
 * keeps the address executors connect to, the loopback one of the family
 * when host is a wildcard. */
static int tcp_listen(pt__driver *d, const char *host, int port, const char *advertise,
                      pt_error *err) {
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                  *res = NULL;
  int g = getaddrinfo(host && *host ? host : NULL, service, &hints, &res);
  if (g != 0)
    return pt__errorf(err, PT_EINVAL, "session: cannot resolve driver.host '%s': %s; set it to "
                      "an address of this machine", host, gai_strerror(g));
  uv_tcp_init(&d->loop, &d->tcp_server);
  d->tcp_server.data = d;
  int uvrc = UV_EINVAL;
  struct addrinfo *ai = res;
  for (; ai; ai = ai->ai_next)
    if ((uvrc = uv_tcp_bind(&d->tcp_server, ai->ai_addr, 0)) == 0 &&
        (uvrc = uv_listen((uv_stream_t *)&d->tcp_server, 128, connection_cb)) == 0)
      break;
  freeaddrinfo(res);
  if (uvrc != 0)
    return pt__errorf(err, PT_EIO, "session: cannot listen on driver.host '%s' port %d: %s; "
                      "choose another driver.port or driver.host", host, port, uv_strerror(uvrc));
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  uv_tcp_getsockname(&d->tcp_server, (struct sockaddr *)&ss, &sl);
  char name[PT__HOST_MAX] = "";
  int bound = 0;
  /* With its scope when link-local (fe80::1%eth0): executors name the
   * interface of their own host, which must be called alike. */
  (void)pt__sockaddr_host(&ss, name, sizeof name, &bound);
  if (ss.ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr))
    strcpy(name, "::1");
  else if (ss.ss_family == AF_INET &&
           ((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_ANY))
    strcpy(name, "127.0.0.1");
  if (advertise && *advertise) snprintf(name, sizeof name, "%s", advertise);
  char addr[PT__HOST_MAX + 16];
  pt__addr_join(name, bound, addr, sizeof addr);
  d->connect_addr = pt__malloc(strlen(addr) + 8);
  if (!d->connect_addr) return pt__errorf(err, PT_ENOMEM, "session: out of memory");
  sprintf(d->connect_addr, "tcp:%s", addr);
  return PT_OK;
}

static void driver_free(pt__driver *d) {
  pt__results_stop(d); /* its threads use the secret and TLS context */
  for (int32_t i = 0; i < d->n_execs; i++) {
    pt__executor *ex = d->execs[i];
    pt_buf_free(&ex->out);
    pt_buf_free(&ex->lazy);
    pt_buf_free(&ex->wbuf);
    pt__free(ex->sent_defs);
    pt__free(ex->dir);
    pt__free(ex->host);
    pt__free(ex->block_address);
    pt__free(ex);
  }
  pt__free(d->execs);
  pt__sched_places_free(d);
  pt__free(d->tasks);
  pt__free(d->infos);
  pt__res_ledgers_free(d->res, d->opts.n_executors);
  if (d->conf_kv)
    for (size_t i = 0; i < 2 * d->opts.n_conf; i++) pt__free(d->conf_kv[i]);
  pt__free(d->conf_kv);
  pt__free(d->session_dir);
  pt__free(d->results_memory);
  pt__free(d->results_disk);
  pt__free(d->command);
  pt__tls_ctx_free(d->tls);
  for (int i = 0; i < 3; i++) pt__free(d->tls_files[i]);
  pt__free(d->sock_path);
  pt__free(d->connect_addr);
  pt__slurm_free(d->slurm);
  OPENSSL_cleanse(&d->secret, sizeof d->secret);
  if (d->wake_fd >= 0) close(d->wake_fd);
  pthread_mutex_destroy(&d->mu);
  pthread_mutex_destroy(&d->loop_mu);
  pthread_cond_destroy(&d->cv);
  pt__free(d);
}

int pt__driver_start(const pt__driver_opts *opts, pt__driver **out, pt_error *err) {
  int rc = PT_OK;
  *out = NULL;
  pt__driver *d = pt__calloc(1, sizeof *d);
  if (!d) {
    pt__slurm_free(opts->slurm);
    return pt__errorf(err, PT_ENOMEM, "session: out of memory");
  }
  pthread_mutex_init(&d->mu, NULL);
  pthread_mutex_init(&d->loop_mu, NULL);
  pthread_cond_init(&d->cv, NULL);
  d->wake_fd = -1;
  d->opts = *opts;
  if (d->opts.start_timeout_ms <= 0) d->opts.start_timeout_ms = 30000;
  d->backend = opts->slurm ? &pt__slurm_backend : &local_backend;
  d->slurm = opts->slurm;
  d->opts.slurm = NULL;
  d->free_task = -1;
  atomic_init(&d->next_id, 1);
  atomic_init(&d->next_job_id, 1);
  d->session_dir = pt__strdup(opts->session_dir);
  if (opts->command && *opts->command) {
    d->command = pt__malloc(strlen(opts->command) + 6);
    if (!d->command) {
      driver_free(d);
      return pt__errorf(err, PT_ENOMEM, "session: out of memory");
    }
    sprintf(d->command, "exec %s", opts->command);
  }
  d->opts.command = NULL;
  d->opts.driver_host = NULL;
  d->opts.advertise_host = NULL;
  d->opts.secret_file = NULL;
  if (opts->tcp) {
    int generated;
    rc = pt__secret_load(opts->secret_file, &d->secret, &generated, err);
    if (rc != PT_OK) {
      driver_free(d);
      return rc;
    }
  }
  if (opts->tcp && opts->tls) {
    /* Checked here, where the user sees the error, not in every executor. */
    rc = pt__tls_ctx_new(opts->tls_cert, opts->tls_key, opts->tls_ca, &d->tls, err);
    if (rc != PT_OK) {
      driver_free(d);
      return pt__error_prefix(err, rc, "session: ");
    }
    const char *vars[3] = {"PROTIUM_EXECUTOR_TLS_CERT", "PROTIUM_EXECUTOR_TLS_KEY",
                           "PROTIUM_EXECUTOR_TLS_CA"};
    const char *files[3] = {opts->tls_cert, opts->tls_key, opts->tls_ca};
    for (int i = 0; i < 3; i++) {
      d->tls_files[i] = pt__malloc(strlen(vars[i]) + strlen(files[i]) + 2);
      if (!d->tls_files[i]) {
        driver_free(d);
        return pt__errorf(err, PT_ENOMEM, "session: out of memory");
      }
      sprintf(d->tls_files[i], "%s=%s", vars[i], files[i]);
    }
  }
  d->opts.tls_cert = d->opts.tls_key = d->opts.tls_ca = NULL;
  size_t sl = strlen(opts->session_dir) + 16;
  size_t rl = opts->results_dir ? strlen(opts->results_dir) + 16 : 0;
  d->sock_path = pt__malloc(sl);
  d->results_disk = pt__malloc(sl);
  d->results_memory = rl ? pt__malloc(rl) : NULL;
  d->opts.results_dir = NULL;
  d->conf_kv = pt__calloc(2 * opts->n_conf + 1, sizeof *d->conf_kv);
  if (!d->session_dir || !d->sock_path || !d->results_disk || (rl && !d->results_memory) ||
      !d->conf_kv) {
    driver_free(d);
    return pt__errorf(err, PT_ENOMEM, "session: out of memory");
  }
  snprintf(d->sock_path, sl, "%s/driver.sock", opts->session_dir);
  snprintf(d->results_disk, sl, "%s/results", opts->session_dir);
  if (rl) snprintf(d->results_memory, rl, "%s/results", opts->results_dir);
  if (pt__sanitized()) {
    char san[4200];
    snprintf(san, sizeof san, "%s/sanitizer", opts->session_dir);
    (void)mkdir(san, 0700); /* executors' sanitizer reports (sanitize.c) */
  }
  for (size_t i = 0; i < opts->n_conf; i++) {
    d->conf_kv[2 * i] = pt__strdup(opts->conf_keys[i]);
    d->conf_kv[2 * i + 1] = pt__strdup(opts->conf_values[i]);
    if (!d->conf_kv[2 * i] || !d->conf_kv[2 * i + 1]) {
      driver_free(d);
      return pt__errorf(err, PT_ENOMEM, "session: out of memory");
    }
  }
  /* Discovery once for the host; each executor seat gets its own part. */
  rc = pt__res_discover(opts->resources, opts->n_resources, opts->n_executors,
                        opts->discovery_timeout_ms > 0 ? opts->discovery_timeout_ms : 60000,
                        &d->res, err);
  if (rc != PT_OK) {
    driver_free(d);
    return rc;
  }
  d->opts.resources = NULL;
  d->opts.n_resources = 0;
  /* conf_kv holds keys at even, values at odd indices */
  d->opts.conf_keys = NULL;
  d->opts.conf_values = NULL;
  d->opts.session_dir = d->session_dir;
  const char *stall = getenv("PROTIUM_FAULT_DRIVER_STALL_MS");
  d->fault_stall_ms = stall ? strtoll(stall, NULL, 10) : 0;
  uint64_t tick_ms = (uint64_t)opts->heartbeat_timeout_ms / 4;
  if (opts->task_timeout_ms > 0 && (uint64_t)opts->task_timeout_ms / 4 < tick_ms)
    tick_ms = (uint64_t)opts->task_timeout_ms / 4;
  if (opts->barrier_timeout_ms > 0 && (uint64_t)opts->barrier_timeout_ms / 4 < tick_ms)
    tick_ms = (uint64_t)opts->barrier_timeout_ms / 4;
  if (opts->barrier_admission_ms > 0 && (uint64_t)opts->barrier_admission_ms / 4 < tick_ms)
    tick_ms = (uint64_t)opts->barrier_admission_ms / 4;
  if (tick_ms < 10) tick_ms = 10;
  if (tick_ms > 1000) tick_ms = 1000;

  int uvrc = uv_loop_init(&d->loop);
  if (uvrc != 0) {
    driver_free(d);
    return pt__errorf(err, PT_EIO, "session: cannot start the event loop: %s", uv_strerror(uvrc));
  }
  d->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (d->wake_fd < 0) {
    int e = errno;
    uv_loop_close(&d->loop);
    driver_free(d);
    return pt__errorf(err, PT_EIO, "session: cannot create an eventfd: %s", strerror(e));
  }
  uv_poll_init(&d->loop, &d->wake, d->wake_fd);
  d->wake.data = d;
  uv_poll_start(&d->wake, UV_READABLE, wake_cb);
  uv_timer_init(&d->loop, &d->tick);
  d->tick.data = d;
  uv_timer_init(&d->loop, &d->kill_timer);
  d->kill_timer.data = d;
  uv_prepare_init(&d->loop, &d->prep);
  d->prep.data = d;
  uv_prepare_start(&d->prep, prepare_cb);
  if (opts->tcp) {
    rc = tcp_listen(d, opts->driver_host, opts->driver_port, opts->advertise_host, err);
    if (rc != PT_OK) goto close_loop;
  } else {
    uv_pipe_init(&d->loop, &d->server, 0);
    d->server.data = d;
    if ((uvrc = uv_pipe_bind(&d->server, d->sock_path)) != 0 ||
        (uvrc = uv_listen((uv_stream_t *)&d->server, 128, connection_cb)) != 0) {
      rc = pt__errorf(err, PT_EIO, "session: cannot listen on '%s': %s", d->sock_path,
                      uv_strerror(uvrc));
      goto close_loop;
    }
  }
  uv_timer_start(&d->tick, tick_cb, tick_ms, tick_ms);
  for (int i = 0; i < opts->n_executors; i++) {
    rc = exec_spawn(d, err);
    if (rc != PT_OK) goto kill_execs;
  }
  if (pthread_create(&d->thread, NULL, driver_main, d) != 0) {
    rc = pt__errorf(err, PT_EIO, "session: cannot start the driver thread");
    goto kill_execs;
  }

  /* Wait for every Hello (executor.start_timeout, 30 s by default: enough
   * for a loaded machine). */
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += d->opts.start_timeout_ms / 1000;
  deadline.tv_nsec += (d->opts.start_timeout_ms % 1000) * 1000000;
  if (deadline.tv_nsec >= 1000000000) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock(&d->mu);
  while (d->n_hello < opts->n_executors && !d->start_failed)
    if (pthread_cond_timedwait(&d->cv, &d->mu, &deadline) == ETIMEDOUT) break;
  if (d->start_failed)
    rc = pt__errorf(err, PT_EIO, "session: %s", d->start_error);
  else if (d->n_hello < opts->n_executors)
    rc = pt__errorf(err, PT_ETIMEDOUT,
                    "session: %d of %d executors connected within %lld ms "
                    "(executor.start_timeout); is the machine overloaded?",
                    d->n_hello, opts->n_executors, (long long)d->opts.start_timeout_ms);
  pthread_mutex_unlock(&d->mu);
  if (rc != PT_OK) {
    pt__driver_stop(d);
    return rc;
  }
  *out = d;
  return PT_OK;

kill_execs:
  for (int32_t i = 0; i < d->n_execs; i++)
    d->backend->kill(d->execs[i]);
  /* The loop (on this thread) reaps them, then closes everything. */
  d->stopping = 1;
  {
    int all = 0;
    while (!all) {
      uv_run(&d->loop, UV_RUN_ONCE);
      all = 1;
      for (int32_t i = 0; i < d->n_execs; i++) all &= d->execs[i]->exited;
    }
  }
close_loop:
  uv_walk(&d->loop, close_walk_cb, d);
  uv_run(&d->loop, UV_RUN_DEFAULT);
  uv_loop_close(&d->loop);
  driver_free(d);
  return rc;
}

void pt__driver_stop(pt__driver *d) {
  if (!d) return;
  pthread_mutex_lock(&d->mu);
  d->stop_requested = 1;
  pthread_mutex_unlock(&d->mu);
  driver_wake(d);
  pthread_join(d->thread, NULL);
  uv_loop_close(&d->loop);
  if (pt__sanitized()) {
    /* A finding in an executor fails the program, as one in the driver
     * would (sanitizer builds only: the executor's end looked like a lost
     * executor, retried). */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/sanitizer", d->session_dir);
    if (pt__sanitizer_report(dir) > 0) {
      fprintf(stderr, "protium: an executor had sanitizer findings (above); stopping\n");
      abort();
    }
  }
  driver_free(d);
}

int64_t pt__driver_new_job_id(pt__driver *d) { return atomic_fetch_add(&d->next_job_id, 1); }
int64_t pt__driver_next_id(pt__driver *d) { return atomic_fetch_add(&d->next_id, 1); }
const char *pt__driver_session_dir(const pt__driver *d) { return d->session_dir; }
const char *pt__driver_results_memory(const pt__driver *d) { return d->results_memory; }
const char *pt__driver_results_disk(const pt__driver *d) { return d->results_disk; }

void pt__driver_job_done(pt__driver *d, pt__job *job) {
  pthread_mutex_lock(&d->mu);
  atomic_store_explicit(&job->finished, 1, memory_order_release);
  pthread_mutex_unlock(&d->mu);
  /* After unlocking, so the woken thread does not block on mu at once; the
   * cv lives as long as the driver. */
  pthread_cond_broadcast(&d->cv);
}

int pt__driver_run(pt__driver *d, pt_dataset *ds, const pt__action *action, pt__job_result *out,
                   pt_error *err) {
  memset(out, 0, sizeof *out);
  pt__job *job;
  PT_RETURN_NOT_OK(pt__plan_build(d, ds, action, &job, err));
  /* Submit, launch and write on this thread: the loop thread need not be
   * woken, which saves one thread wake-up per job (several µs). */
  pthread_mutex_lock(&d->loop_mu);
  if (d->stopping) {
    job->state = PT__JOB_FAILED;
    pt__errorf(&job->error, PT_ESTATE, "the session is closing");
    pt__driver_job_done(d, job);
  } else {
    pt__sched_submit(d, job);
  }
  int wake = submit_turn(d);
  pthread_mutex_unlock(&d->loop_mu);
  if (wake) driver_wake(d);
  /* Yield for a few µs before sleeping: the executor thread just woken by
   * our write is often queued on this CPU and runs at once, rather than
   * after this thread has gone to sleep (measured on 2 vCPUs: p50 of a
   * one-task job ~33 -> ~28 µs; 2 to 20 µs of yielding alike). Spinning
   * without yielding took the CPU the job needs. */
  uint64_t yield_end = uv_hrtime() + SUBMIT_YIELD_NS;
  while (!atomic_load_explicit(&job->finished, memory_order_acquire) && uv_hrtime() < yield_end)
    sched_yield();
  pthread_mutex_lock(&d->mu);
  while (!atomic_load_explicit(&job->finished, memory_order_acquire))
    pthread_cond_wait(&d->cv, &d->mu);
  pthread_mutex_unlock(&d->mu);

  /* Checkpoints belong to the job's stages: gone with the job. */
  char cp[4096];
  snprintf(cp, sizeof cp, "%s/checkpoints/%lld", d->session_dir, (long long)job->id);
  (void)pt__rm_rf(cp);
  int rc = PT_OK;
  if (job->state != PT__JOB_SUCCEEDED) rc = job->error.code ? job->error.code : PT_EINTERNAL;
  out->stats = pt__stats_take(job, rc);
  if (rc != PT_OK) {
    if (err) *err = job->error;
    goto free_job;
  }
  pt__sched_stage *st = job->final;
  out->n_partitions = st->partitions;
  if (st->paths) {
    out->paths = st->paths;
    st->paths = NULL;
  }
  if (st->rows) {
    out->rows = st->rows;
    st->rows = NULL;
  }
  if (st->counts)
    for (int64_t p = 0; p < st->partitions; p++) out->count += st->counts[p];
free_job:
  pt__plan_free(job);
  return rc;
}

int pt__driver_quiesce(pt__driver *d, int64_t job_id, int64_t timeout_ms) {
  uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
  for (;;) {
    int left = 0;
    pthread_mutex_lock(&d->loop_mu);
    for (int32_t e = 0; e < d->n_execs && !left; e++)
      for (int32_t i = d->execs[e]->head; i >= 0 && !left; i = d->tasks[i].next)
        left = d->tasks[i].job_id == job_id;
    pthread_mutex_unlock(&d->loop_mu);
    if (!left) return 1;
    if (uv_hrtime() >= deadline) return 0;
    usleep(1000); /* a failure path: no need to be woken */
  }
}

void pt__job_result_reset(pt__job_result *r) {
  if (r->paths)
    for (int64_t i = 0; i < r->n_partitions; i++) pt__free(r->paths[i]);
  pt__free(r->paths);
  pt__free(r->rows);
  pt_job_stats_free(r->stats);
  memset(r, 0, sizeof *r);
}
