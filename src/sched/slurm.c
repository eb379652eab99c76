/* slurm.c — the Slurm backend: inside an allocation (SLURM_JOB_ID set) every
 * executor is a job step of its own, started with srun on one node of the
 * allocation, so that srun's end is that executor's end and a replacement
 * can go to another node. What the allocation holds (nodes, tasks per node,
 * GPUs per task) comes from the environment salloc and sbatch set.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sched/sched.h"

typedef struct slurm_node {
  char *name;        /* owned */
  int32_t capacity;  /* executors it takes: 1, or its tasks in per-task mode */
  int32_t strikes;   /* executors lost on it: a replacement avoids it */
} slurm_node;

struct pt__slurm {
  int per_task;          /* one executor per task (each its GPUs) rather than per node */
  int32_t n_nodes;
  slurm_node *nodes;     /* owned */
  char gpus_opt[96];     /* "--gpus-per-task=1" in per-task mode with GPUs, else "" */
  char cpus_opt[64];     /* "--cpus-per-task=N" in per-task mode, else "" */
};

void pt__slurm_free(pt__slurm *s) {
  if (!s) return;
  for (int32_t i = 0; i < s->n_nodes; i++) pt__free(s->nodes[i].name);
  pt__free(s->nodes);
  pt__free(s);
}

/* ------------------------------------------------------------------------ */
/* Slurm's compressed lists */

static int add_name(char ***names, int32_t *n, int32_t *cap, const char *name) {
  if (*n == *cap) {
    int32_t c = *cap ? *cap * 2 : 8;
    char **p = pt__realloc(*names, (size_t)c * sizeof *p);
    if (!p) return PT_ENOMEM;
    *names = p;
    *cap = c;
  }
  if (!((*names)[*n] = pt__strdup(name))) return PT_ENOMEM;
  (*n)++;
  return PT_OK;
}

int pt__slurm_hostlist(const char *list, char ***out, int32_t *n_out, pt_error *err) {
  char **names = NULL;
  int32_t n = 0, cap = 0;
  int rc = PT_OK;
  const char *p = list ? list : "";
  *out = NULL;
  *n_out = 0;
  while (*p && rc == PT_OK) {
    /* One item: up to a comma outside brackets. */
    const char *end = p;
    int depth = 0;
    while (*end && (depth > 0 || *end != ',')) {
      depth += *end == '[';
      depth -= *end == ']';
      end++;
    }
    const char *open = memchr(p, '[', (size_t)(end - p));
    char name[512];
    if (!open) {
      if ((size_t)(end - p) >= sizeof name || memchr(p, ']', (size_t)(end - p))) goto bad;
      memcpy(name, p, (size_t)(end - p));
      name[end - p] = 0;
      if (*name) rc = add_name(&names, &n, &cap, name);
    } else {
      const char *close = memchr(open, ']', (size_t)(end - open));
      size_t plen = (size_t)(open - p), slen = close ? (size_t)(end - close - 1) : 0;
      if (!close || plen + slen + 24 >= sizeof name || memchr(close + 1, '[', slen) ||
          memchr(close + 1, ']', slen) || memchr(p, ']', plen))
        goto bad;
      const char *r = open + 1;
      while (r < close && rc == PT_OK) {
        char *e;
        const char *digits = r;
        long lo = strtol(r, &e, 10), hi = lo;
        if (e == r || lo < 0) goto bad;
        int width = (int)(e - digits);
        r = e;
        if (*r == '-') {
          hi = strtol(r + 1, &e, 10);
          if (e == r + 1 || hi < lo || hi - lo > 100000) goto bad;
          r = e;
        }
        if (r < close && *r != ',') goto bad;
        if (*r == ',') r++;
        for (long v = lo; v <= hi && rc == PT_OK; v++) {
          snprintf(name, sizeof name, "%.*s%0*ld%.*s", (int)plen, p, width, v, (int)slen,
                   close + 1);
          rc = add_name(&names, &n, &cap, name);
        }
      }
    }
    p = *end ? end + 1 : end;
  }
  if (rc != PT_OK) {
    pt__res_strings_free(names, n);
    return pt__errorf(err, PT_ENOMEM, "slurm: out of memory");
  }
  if (n == 0) {
    pt__free(names);
    return pt__errorf(err, PT_EINVAL, "slurm: the node list '%s' names no node", list ? list : "");
  }
  *out = names;
  *n_out = n;
  return PT_OK;
bad:
  pt__res_strings_free(names, n);
  return pt__errorf(err, PT_EFORMAT, "slurm: cannot read the node list '%s'", list);
}

int pt__slurm_counts(const char *spec, int32_t *out, int32_t n, pt_error *err) {
  const char *p = spec ? spec : "";
  int32_t k = 0;
  while (*p) {
    char *e;
    long v = strtol(p, &e, 10), times = 1;
    if (e == p || v < 0) goto bad;
    p = e;
    if (strncmp(p, "(x", 2) == 0) {
      times = strtol(p + 2, &e, 10);
      if (e == p + 2 || *e != ')' || times < 1) goto bad;
      p = e + 1;
    }
    for (long t = 0; t < times; t++) {
      if (k == n) goto bad;
      out[k++] = (int32_t)v;
    }
    if (*p == ',') p++;
    else if (*p) goto bad;
  }
  if (k != n) goto bad;
  return PT_OK;
bad:
  return pt__errorf(err, PT_EFORMAT, "slurm: cannot read '%s' as counts for %d nodes",
                    spec ? spec : "", (int)n);
}

/* ------------------------------------------------------------------------ */
/* The allocation */

int pt__slurm_open(const char *mode, pt__slurm **out, int *n_executors, pt_error *err) {
  *out = NULL;
  const char *job = getenv("SLURM_JOB_ID");
  if (!job || !*job)
    return pt__errorf(err, PT_ESTATE,
                      "master 'slurm' runs inside a Slurm allocation, and SLURM_JOB_ID is not "
                      "set; run the program under one (salloc -N 2 ...), or submit it with "
                      "'protium submit --slurm -N 2 program'");
  const char *list = getenv("SLURM_JOB_NODELIST");
  if (!list) list = getenv("SLURM_NODELIST");
  pt__slurm *s = pt__calloc(1, sizeof *s);
  if (!s) return pt__errorf(err, PT_ENOMEM, "slurm: out of memory");
  char **names = NULL;
  int32_t n = 0;
  int32_t *tasks = NULL;
  int rc = pt__slurm_hostlist(list, &names, &n, err);
  if (rc != PT_OK) goto fail;
  s->nodes = pt__calloc((size_t)n, sizeof *s->nodes);
  tasks = pt__calloc((size_t)n, sizeof *tasks);
  if (!s->nodes || !tasks) {
    rc = pt__errorf(err, PT_ENOMEM, "slurm: out of memory");
    goto fail;
  }
  s->n_nodes = n;
  for (int32_t i = 0; i < n; i++) {
    s->nodes[i].name = names[i];
    names[i] = NULL;
    s->nodes[i].capacity = 1;
  }
  const char *gpt = getenv("SLURM_GPUS_PER_TASK");
  if (strcmp(mode, "task") == 0) s->per_task = 1;
  else if (strcmp(mode, "auto") == 0) s->per_task = gpt && *gpt;
  if (s->per_task) {
    const char *tpn = getenv("SLURM_TASKS_PER_NODE");
    if (!tpn) {
      rc = pt__errorf(err, PT_ESTATE, "slurm.executors = task: SLURM_TASKS_PER_NODE is not set; "
                      "allocate tasks (salloc -n 4 --gpus-per-task=1 ...)");
      goto fail;
    }
    rc = pt__slurm_counts(tpn, tasks, n, err);
    if (rc != PT_OK) goto fail;
    for (int32_t i = 0; i < n; i++) s->nodes[i].capacity = tasks[i];
    if (gpt && *gpt) snprintf(s->gpus_opt, sizeof s->gpus_opt, "--gpus-per-task=%.60s", gpt);
    const char *cpt = getenv("SLURM_CPUS_PER_TASK");
    snprintf(s->cpus_opt, sizeof s->cpus_opt, "--cpus-per-task=%d",
             cpt && atoi(cpt) > 0 ? atoi(cpt) : 1);
  }
  int total = 0;
  for (int32_t i = 0; i < n; i++) total += s->nodes[i].capacity;
  if (total < 1) {
    rc = pt__errorf(err, PT_ESTATE, "slurm: the allocation has no task to run an executor");
    goto fail;
  }
  pt__free(names);
  pt__free(tasks);
  *n_executors = total;
  *out = s;
  return PT_OK;
fail:
  pt__res_strings_free(names, n);
  pt__free(tasks);
  pt__slurm_free(s);
  return rc;
}

int pt__slurm_driver_host(const pt__slurm *s, char *out, size_t cap, pt_error *err) {
  /* The address this host leaves from towards the first node: a UDP
   * connect sends nothing, but makes the kernel pick the route. */
  struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
  int g = getaddrinfo(s->nodes[0].name, "9", &hints, &res);
  if (g != 0)
    return pt__errorf(err, PT_EINVAL, "slurm: cannot resolve node '%s' (%s) to find the "
                      "address executors reach the driver at; set driver.host",
                      s->nodes[0].name, gai_strerror(g));
  int rc = PT_EIO;
  for (struct addrinfo *ai = res; ai && rc != PT_OK; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
        getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
      const void *a = ss.ss_family == AF_INET6
                          ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                          : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
      if (inet_ntop(ss.ss_family, a, out, (socklen_t)cap)) rc = PT_OK;
    }
    close(fd);
  }
  freeaddrinfo(res);
  if (rc != PT_OK)
    return pt__errorf(err, PT_EIO, "slurm: no route to node '%s' to find the address "
                      "executors reach the driver at; set driver.host", s->nodes[0].name);
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* The backend */

/* Where executor ex goes: the node with the fewest lost executors, then the
 * most room left; a replacement so leaves a node that lost one. */
static int32_t pick_node(pt__driver *d, const pt__executor *ex) {
  const pt__slurm *s = d->slurm;
  int32_t best = 0;
  int64_t best_key = INT64_MAX;
  for (int32_t i = 0; i < s->n_nodes; i++) {
    int32_t live = 0;
    for (int32_t e = 0; e < d->n_execs; e++)
      live += d->execs[e] != ex && d->execs[e]->state != PT__EXEC_LOST && d->execs[e]->node == i;
    int64_t key = (int64_t)s->nodes[i].strikes * 1000000 + (live >= s->nodes[i].capacity) * 1000 +
                  live;
    if (key < best_key) {
      best_key = key;
      best = i;
    }
  }
  return best;
}

/* What srun reads from its environment and must not take from the
 * allocation's: the step's shape is ours (one task on one node). */
static const char *const DROP_ENV[] = {
    "SLURM_NTASKS=", "SLURM_NPROCS=", "SLURM_NTASKS_PER_NODE=", "SLURM_NNODES=",
    "SLURM_GPUS_PER_TASK=", "SLURM_CPUS_PER_TASK=", "SLURM_DISTRIBUTION=", NULL};
static const char *const DROP_ENV_TASK[] = {
    "SLURM_NTASKS=", "SLURM_NPROCS=", "SLURM_NTASKS_PER_NODE=", "SLURM_NNODES=",
    "SLURM_GPUS_PER_TASK=", "SLURM_CPUS_PER_TASK=", "SLURM_DISTRIBUTION=",
    "SLURM_GPUS_PER_NODE=", "SLURM_GPUS=", "SLURM_GRES=", "SLURM_TRES_PER_TASK=", NULL};

static int slurm_start(pt__driver *d, pt__executor *ex, pt_error *err) {
  pt__slurm *s = d->slurm;
  ex->node = pick_node(d, ex);
  char nodelist[600];
  snprintf(nodelist, sizeof nodelist, "--nodelist=%s", s->nodes[ex->node].name);
  const char *prefix[16];
  int k = 0;
  prefix[k++] = "srun";
  prefix[k++] = "--nodes=1";
  prefix[k++] = "--ntasks=1";
  prefix[k++] = nodelist;
  prefix[k++] = "--quiet";
  prefix[k++] = "--job-name=protium-executor";
  if (s->per_task) {
    /* Its own CPUs and GPUs: Slurm gives concurrent steps distinct ones. */
    prefix[k++] = "--exact";
    prefix[k++] = s->cpus_opt;
    if (s->gpus_opt[0]) prefix[k++] = s->gpus_opt;
  } else {
    /* The node's share of the allocation, GPUs included, shared with the
     * steps its tasks start (srun --mpi=pmix ... --overlap). */
    prefix[k++] = "--overlap";
  }
  prefix[k] = NULL;
  const char *const extra[] = {
      s->per_task ? "PROTIUM_EXECUTOR_SLURM=task" : "PROTIUM_EXECUTOR_SLURM=node", NULL};
  return pt__cluster_spawn(d, ex, prefix, s->per_task ? DROP_ENV_TASK : DROP_ENV, extra, err);
}

static void slurm_kill(pt__executor *ex) {
  /* An executor told to shut down ends its step itself: srun, left alone,
   * gets its task's exit and tells Slurm the step is over, which frees its
   * CPUs and GPUs at once. srun killed first, the node's step daemon keeps
   * retrying to tell it (about 2 s) before Slurm hears of the end, and the
   * next session's steps in per-task mode wait that long for the CPUs.
   * Still there when the 2 s grace is over, it is killed. */
  if (ex->asked_to_stop) return;
  /* srun, here: its executor sees the driver's end of the connection
   * close and exits; a node that cannot be reached any more keeps the
   * step until Slurm ends the allocation, or its executor gives up on the
   * driver (executor.heartbeat_timeout). */
  pt__cluster_kill_process(ex);
}

/* Called by pt__cluster_lose before kill (state already LOST): a loss
 * while the session runs counts against the node. */
void pt__slurm_on_lost(pt__executor *ex) {
  if (ex->d->slurm && !ex->d->stopping && ex->node >= 0) ex->d->slurm->nodes[ex->node].strikes++;
}

const pt__backend pt__slurm_backend = {"slurm", slurm_start, slurm_kill};
