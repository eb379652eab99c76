/* session.c — pt_session_*: parses the master URL, makes the session's
 * temporary directory and starts the driver (src/sched), which spawns and
 * supervises the executor processes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_int.h"

/* Defined by src/exec/executor.c; referencing it keeps the executor (and
 * its constructor that enters executor mode) in statically linked programs. */
extern const int pt__executor_linked;

static int parse_master(const char *master, int *n, pt_error *err) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1) cores = 1;
  if (!master || strcmp(master, "local") == 0 || strcmp(master, "local[*]") == 0) {
    *n = (int)cores;
    return PT_OK;
  }
  if (strncmp(master, "local[", 6) == 0) {
    char *end;
    errno = 0;
    long v = strtol(master + 6, &end, 10);
    if (!errno && end != master + 6 && strcmp(end, "]") == 0 && v >= 1 && v <= 4096) {
      *n = (int)v;
      return PT_OK;
    }
    return pt__errorf(err, PT_EINVAL,
                      "master '%s': the number of executors must be an integer from 1 to 4096 "
                      "or *, as in local[4] or local[*]", master);
  }
  return pt__errorf(err, PT_EINVAL, "master '%s' is not supported; use local[N] or slurm",
                    master);
}

/* PROTIUM_NET_TRANSPORT=tcp puts every session of the process on TCP
 * whatever net.transport says: how a test suite written for local[N] runs
 * over TCP unchanged. */
static int tcp_forced(void) {
  const char *v = getenv("PROTIUM_NET_TRANSPORT");
  return v && strcmp(v, "tcp") == 0;
}

/* PROTIUM_SHUFFLE_FETCH=remote does the same for shuffle.fetch. */
static int fetch_forced(void) {
  const char *v = getenv("PROTIUM_SHUFFLE_FETCH");
  return v && strcmp(v, "remote") == 0;
}

/* PROTIUM_NET_RESULTS=stream does the same for net.results (with TCP):
 * the engine's tests then collect every result through the block servers. */
static int results_forced(void) {
  const char *v = getenv("PROTIUM_NET_RESULTS");
  return v && strcmp(v, "stream") == 0;
}

/* PROTIUM_CONF_PAD=N (tests): N placeholder keys go to the executors
 * before the real ones, so that a test sees a later key arrive. */
static size_t conf_pad(void) {
  const char *v = getenv("PROTIUM_CONF_PAD");
  long long n = v ? atoll(v) : 0;
  return n > 0 && n <= 100000 ? (size_t)n : 0;
}

/* Makes <base>/protium-<pid>-XXXXXX into *out (owned by the caller); key:
 * the configuration key that named base, for the message. */
static int session_dir_in(const char *base, const char *key, char **out, pt_error *err) {
  size_t len = strlen(base) + 64;
  char *dir = pt__malloc(len);
  if (!dir) return pt__errorf(err, PT_ENOMEM, "session: out of memory");
  snprintf(dir, len, "%s/protium-%d-XXXXXX", base, (int)getpid());
  if (!mkdtemp(dir)) {
    int rc = pt__errorf(err, PT_EIO,
                        "session: cannot create a directory in '%s' (%s): %s; set %s to a "
                        "writable directory", base, key, strerror(errno), key);
    pt__free(dir);
    return rc;
  }
  *out = dir;
  return PT_OK;
}

int pt_session_open(const char *master, const pt_conf *conf, pt_session **out, pt_error *err) {
  if (!out) return pt__errorf(err, PT_EINVAL, "session_open: out must not be NULL");
  *out = NULL;
  pt__keep_freed_memory();
  (void)*(const volatile int *)&pt__executor_linked;
  /* An executor unsets these before any user code runs; still set here means
   * this process was started as an executor but main() ran instead (the
   * executor hook of protium.h was not compiled in). Starting executors from
   * here would start them without end. */
  if (getenv("PROTIUM_EXECUTOR_SOCKET") != NULL)
    return pt__errorf(err, PT_ESTATE,
                      "session: this process was started as a protium executor but is running "
                      "main(); include protium.h in the program (its constructor serves tasks) "
                      "and build with GCC or clang");
  /* No master: the environment's (protium submit --slurm sets it for the
   * job it submits), else one executor per core. */
  if (!master || !*master) master = getenv("PROTIUM_MASTER");
  if (master && !*master) master = NULL;
  int n_exec = 1;
  int slurm = master && strcmp(master, "slurm") == 0;
  if (!slurm) PT_RETURN_NOT_OK(parse_master(master, &n_exec, err));
  int rc = PT_OK;
  pt__slurm *alloc = NULL;
  pt_session *s = pt__calloc(1, sizeof *s);
  if (!s) return pt__errorf(err, PT_ENOMEM, "session: out of memory");
  atomic_init(&s->next_input, 0);
  pthread_mutex_init(&s->jobs_mu, NULL);
  rc = pt__conf_copy(conf, &s->conf, err);
  if (rc != PT_OK) goto free_session;
  char advertise[64] = "";
  if (slurm) {
    /* Executors on the allocation's nodes, over TCP (srun carries the
     * secret in the environment); they connect to this host's address on
     * the nodes' network unless driver.host names one. */
    rc = pt__slurm_open(pt_conf_get(s->conf, "slurm.executors"), &alloc, &n_exec, err);
    if (rc != PT_OK) goto free_session;
    if (strcmp(pt_conf_get(s->conf, "driver.host"), "127.0.0.1") == 0) {
      rc = pt__slurm_driver_host(alloc, advertise, sizeof advertise, err);
      if (rc != PT_OK) goto free_session;
    }
  }

  const char *local = pt_conf_get(s->conf, "local.dir");
  rc = session_dir_in(local, "local.dir", &s->dir, err);
  if (rc != PT_OK) goto free_session;
  /* The result files the driver maps get a directory of their own where
   * local.results_dir is elsewhere (/dev/shm by default: in memory, they
   * skip the disk). Without it they go below dir, as when it cannot be
   * made and nobody asked for it. */
  const char *rbase = pt_conf_get(s->conf, "local.results_dir");
  if (strcmp(rbase, local) != 0) {
    pt__sweep_session_dirs(rbase);
    rc = session_dir_in(rbase, "local.results_dir", &s->results_dir, err);
    if (rc == PT_EIO && !pt__conf_given(s->conf, "local.results_dir")) rc = PT_OK;
    if (rc != PT_OK) goto remove_dir;
  }

  size_t n_keys;
  const pt__conf_key *keys = pt__conf_keys(&n_keys);
  /* Every key goes to the executors in Welcome: the driver copies them, so
   * these arrays live until pt__driver_start returns. */
  size_t n_pad = conf_pad(), n_kv = n_pad + n_keys;
  const char **kv_keys = pt__calloc(2 * n_kv + 1, sizeof *kv_keys);
  char (*pad_names)[32] = pt__calloc(n_pad + 1, sizeof *pad_names);
  if (!kv_keys || !pad_names) {
    pt__free(kv_keys);
    pt__free(pad_names);
    rc = pt__errorf(err, PT_ENOMEM, "session: out of memory");
    goto remove_dir;
  }
  const char **kv_values = kv_keys + n_kv;
  for (size_t i = 0; i < n_pad; i++) {
    snprintf(pad_names[i], sizeof pad_names[i], "test.pad.%zu", i);
    kv_keys[i] = pad_names[i];
    kv_values[i] = "";
  }
  for (size_t i = 0; i < n_keys; i++) {
    kv_keys[n_pad + i] = keys[i].name;
    kv_values[n_pad + i] = pt_conf_get(s->conf, keys[i].name);
    if (strcmp(keys[i].name, "shuffle.fetch") == 0 && fetch_forced())
      kv_values[n_pad + i] = "remote";
  }
  pt__res_spec specs[16];
  size_t n_specs = pt__conf_resources(s->conf, specs, 15);
  if (slurm) {
    /* Each executor reports the GPUs Slurm gave it; every seat has the
     * pool, empty until then. */
    size_t i = 0;
    while (i < n_specs && strcmp(specs[i].name, "gpu") != 0) i++;
    if (i == n_specs) specs[n_specs++] = (pt__res_spec){.name = "gpu", .addresses = ""};
  }
  pt__driver_opts o = {
      .session_dir = s->dir,
      .results_dir = s->results_dir,
      .n_executors = n_exec,
      .slots = (int)pt__conf_int(s->conf, "executor.slots"),
      .queue_depth = (int)pt__conf_int(s->conf, "executor.queue_depth"),
      .heartbeat_interval_ms = pt__conf_ms(s->conf, "executor.heartbeat_interval"),
      .heartbeat_timeout_ms = pt__conf_ms(s->conf, "executor.heartbeat_timeout"),
      .start_timeout_ms = pt__conf_ms(s->conf, "executor.start_timeout"),
      .task_timeout_ms = pt__conf_ms(s->conf, "task.timeout"),
      .max_failures = (int)pt__conf_int(s->conf, "task.max_failures"),
      .stage_max_attempts = (int)pt__conf_int(s->conf, "stage.max_attempts"),
      .barrier_max_attempts = (int)pt__conf_int(s->conf, "barrier.max_attempts"),
      .barrier_timeout_ms = pt__conf_ms(s->conf, "barrier.timeout"),
      .barrier_admission_ms = pt__conf_ms(s->conf, "barrier.admission_timeout"),
      .barrier_stop_grace_ms = pt__conf_ms(s->conf, "barrier.stop_grace"),
      .barrier_shared_memory = pt__conf_int(s->conf, "barrier.shared_memory") != 0,
      .command = pt_conf_get(s->conf, "executor.command"),
      .barrier_spread = strcmp(pt_conf_get(s->conf, "barrier.placement"), "spread") == 0,
      .resources = specs,
      .n_resources = n_specs,
      .discovery_timeout_ms = pt__conf_ms(s->conf, "resources.discovery_timeout"),
      .n_conf = n_kv,
      .conf_keys = kv_keys,
      .conf_values = kv_values,
      .tcp = strcmp(pt_conf_get(s->conf, "net.transport"), "tcp") == 0 || tcp_forced() || slurm,
      .driver_host = advertise[0] ? "" : pt_conf_get(s->conf, "driver.host"),
      .advertise_host = advertise[0] ? advertise : NULL,
      .slurm = alloc,
      .driver_port = (int)pt__conf_int(s->conf, "driver.port"),
      .secret_file = pt_conf_get(s->conf, "auth.secret_file"),
      .tls = strcmp(pt_conf_get(s->conf, "net.tls"), "on") == 0,
      .tls_cert = pt_conf_get(s->conf, "net.tls.cert"),
      .tls_key = pt_conf_get(s->conf, "net.tls.key"),
      .tls_ca = pt_conf_get(s->conf, "net.tls.ca"),
      .results = strcmp(pt_conf_get(s->conf, "net.results"), "stream") == 0 ? PT__RESULTS_STREAM
                 : strcmp(pt_conf_get(s->conf, "net.results"), "files") == 0 ? PT__RESULTS_FILES
                                                                            : PT__RESULTS_AUTO,
  };
  if (o.tls && !o.tcp) {
    rc = pt__errorf(err, PT_EINVAL, "session: net.tls = on needs net.transport = tcp (unix "
                    "sockets stay on this machine); set net.transport = tcp or net.tls = off");
    goto free_kv;
  }
  if (results_forced() && o.tcp) o.results = PT__RESULTS_STREAM;
  if (o.results == PT__RESULTS_STREAM && !o.tcp) {
    rc = pt__errorf(err, PT_EINVAL, "session: net.results = stream needs net.transport = tcp "
                    "(results are fetched from the executors' block servers); set "
                    "net.transport = tcp or net.results = auto");
    goto free_kv;
  }
  if (o.driver_port > 65535) {
    rc = pt__errorf(err, PT_EINVAL, "session: driver.port %d is not a port; use 0 to 65535 "
                    "(0 = any free port)", o.driver_port);
    goto free_kv;
  }
  alloc = NULL; /* the driver's now, also when it fails to start */
  rc = pt__driver_start(&o, &s->driver, err);
  if (rc != PT_OK) goto free_kv;
  pt__free(kv_keys);
  pt__free(pad_names);
  *out = s;
  return PT_OK;

free_kv:
  pt__free(kv_keys);
  pt__free(pad_names);
remove_dir:
  pt__rm_rf(s->dir);
  if (s->results_dir) pt__rm_rf(s->results_dir);
free_session:
  pt__slurm_free(alloc);
  pt_conf_free(s->conf);
  pt__free(s->dir);
  pt__free(s->results_dir);
  pthread_mutex_destroy(&s->jobs_mu);
  pt__free(s);
  return rc;
}

void pt_session_close(pt_session *s) {
  if (!s) return;
  pt__driver_stop(s->driver);
  pt__rm_rf(s->dir);
  if (s->results_dir) pt__rm_rf(s->results_dir);
  pt_conf_free(s->conf);
  pt__free(s->dir);
  pt__free(s->results_dir);
  for (int i = 0; i < PT__JOBS_KEPT; i++) pt_job_stats_free(s->jobs[i]);
  pthread_mutex_destroy(&s->jobs_mu);
  pt__free(s);
}

int pt_session_progress(pt_session *s, pt_job_progress *out, int64_t cap, int64_t *n,
                        pt_error *err) {
  if (!s || !n || (cap > 0 && !out))
    return pt__errorf(err, PT_EINVAL, "session_progress: session, out and n must not be NULL");
  pt__driver_progress(s->driver, out, cap, n);
  return PT_OK;
}

int pt_session_executors(pt_session *s, pt_executor_info *out, int64_t cap, int64_t *n,
                         pt_error *err) {
  if (!s || !n || (cap > 0 && !out))
    return pt__errorf(err, PT_EINVAL, "session_executors: session, out and n must not be NULL");
  return pt__driver_executors(s->driver, out, cap, n);
}
