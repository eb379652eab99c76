/* resources.c — the driver's resource ledger: runs discovery scripts (Spark's
 * JSON format) once per host, deals their addresses out to the executor
 * seats without overlap, and hands each task of a profiled stage concrete
 * addresses, whole or shared by at most floor(1 / amount) tasks.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "sched/resources.h"
#include "sched/sched.h"

/* ------------------------------------------------------------------------ */
/* Profiles (the public builder) */

int pt_resource_profile_new(pt_resource_profile **out, pt_error *err) {
  if (!out) return pt__errorf(err, PT_EINVAL, "resource_profile_new: out must not be NULL");
  *out = pt__calloc(1, sizeof **out);
  if (!*out) return pt__errorf(err, PT_ENOMEM, "resource profile: out of memory");
  return PT_OK;
}

void pt_resource_profile_free(pt_resource_profile *p) { pt__free(p); }

int pt_resource_profile_cpus(pt_resource_profile *p, int32_t cpus, pt_error *err) {
  if (!p) return pt__errorf(err, PT_EINVAL, "resource_profile_cpus: profile must not be NULL");
  if (cpus < 1)
    return pt__errorf(err, PT_EINVAL, "resource profile: %d cpus per task; give 1 or more",
                      (int)cpus);
  p->cpus = cpus;
  return PT_OK;
}

static int valid_name(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n >= PT_RESOURCE_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

int pt_resource_profile_require(pt_resource_profile *p, const char *name, double amount,
                                int flags, pt_error *err) {
  if (!p || !name)
    return pt__errorf(err, PT_EINVAL, "resource_profile_require: profile and name must not be NULL");
  if (!valid_name(name))
    return pt__errorf(err, PT_EINVAL,
                      "resource profile: resource name '%s' is not valid; use 1 to %d letters, "
                      "digits, '_' or '-' (e.g. 'gpu')", name, PT_RESOURCE_NAME_MAX - 1);
  if (flags & ~PT_RESOURCE_OPTIONAL)
    return pt__errorf(err, PT_EINVAL, "resource profile: unknown flags 0x%x for '%s'; use 0 or "
                      "PT_RESOURCE_OPTIONAL", (unsigned)flags, name);
  if (!(amount > 0) || !isfinite(amount))
    return pt__errorf(err, PT_EINVAL,
                      "resource profile: amount %g of '%s' must be greater than 0 (a whole "
                      "number, or a fraction < 1 to share an address)", amount, name);
  pt__res_req r = {0};
  snprintf(r.name, sizeof r.name, "%s", name);
  r.amount = amount;
  r.optional = (flags & PT_RESOURCE_OPTIONAL) != 0;
  if (amount >= 1) {
    if (amount != floor(amount) || amount > 1e6)
      return pt__errorf(err, PT_EINVAL,
                        "resource profile: amount %g of '%s' is neither a whole number nor a "
                        "fraction < 1; ask for whole addresses (1, 2, ...) or a share of one "
                        "(0.5, 0.25, ...)", amount, name);
    r.count = (int32_t)amount;
    r.units = PT__RES_UNITS;
  } else {
    /* The tolerance keeps 1/0.2 = 4.999... at 5. */
    double share = floor(1 / amount + 1e-9);
    if (share > PT__RES_MAX_SHARE)
      return pt__errorf(err, PT_EINVAL,
                        "resource profile: amount %g of '%s' would share one address between "
                        "%.0f tasks; at most %d may share one (amount >= 1/%d = %.4g)", amount,
                        name, share, PT__RES_MAX_SHARE, PT__RES_MAX_SHARE,
                        1.0 / PT__RES_MAX_SHARE);
    r.count = 1;
    r.units = PT__RES_UNITS / (int32_t)share;
  }
  for (int32_t i = 0; i < p->n; i++)
    if (strcmp(p->reqs[i].name, name) == 0) {
      p->reqs[i] = r;
      return PT_OK;
    }
  if (p->n == PT__RES_MAX_REQS)
    return pt__errorf(err, PT_ERANGE, "resource profile: at most %d resources per profile",
                      PT__RES_MAX_REQS);
  p->reqs[p->n++] = r;
  return PT_OK;
}

void pt__res_profile_text(const pt_resource_profile *p, char *out, size_t cap) {
  size_t len = 0;
  out[0] = 0;
  if (p->cpus > 1) {
    int w = snprintf(out, cap, "%d cpus", (int)p->cpus);
    if (w > 0) len = (size_t)w;
  }
  for (int32_t i = 0; i < p->n && len < cap; i++) {
    int w = snprintf(out + len, cap - len, "%s%g %s%s", len ? ", " : "", p->reqs[i].amount,
                     p->reqs[i].name, p->reqs[i].optional ? " (optional)" : "");
    if (w < 0) break;
    len += (size_t)w;
  }
}

/* ------------------------------------------------------------------------ */
/* Discovery */

void pt__res_strings_free(char **s, int32_t n) {
  if (!s) return;
  for (int32_t i = 0; i < n; i++) pt__free(s[i]);
  pt__free(s);
}

typedef struct json_in {
  const char *p, *end;
} json_in;

static void ws(json_in *in) {
  while (in->p < in->end && (*in->p == ' ' || *in->p == '\t' || *in->p == '\n' || *in->p == '\r'))
    in->p++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A JSON string into a new NUL-terminated one; \u escapes of the BMP only
 * (addresses and names are ASCII in practice). NULL on error. */
static char *json_string(json_in *in) {
  ws(in);
  if (in->p >= in->end || *in->p != '"') return NULL;
  in->p++;
  size_t cap = 16, len = 0;
  char *s = pt__malloc(cap);
  if (!s) return NULL;
  while (in->p < in->end && *in->p != '"') {
    char c = *in->p++;
    char tmp[3];
    size_t n = 1;
    tmp[0] = c;
    if ((unsigned char)c < 0x20) goto bad;
    if (c == '\\') {
      if (in->p >= in->end) goto bad;
      c = *in->p++;
      switch (c) {
      case '"': case '\\': case '/': tmp[0] = c; break;
      case 'b': tmp[0] = '\b'; break;
      case 'f': tmp[0] = '\f'; break;
      case 'n': tmp[0] = '\n'; break;
      case 'r': tmp[0] = '\r'; break;
      case 't': tmp[0] = '\t'; break;
      case 'u': {
        if (in->end - in->p < 4) goto bad;
        int v = 0;
        for (int k = 0; k < 4; k++) {
          int h = hexval(in->p[k]);
          if (h < 0) goto bad;
          v = v * 16 + h;
        }
        in->p += 4;
        if (v == 0 || (v >= 0xd800 && v <= 0xdfff)) goto bad;
        if (v < 0x80) tmp[0] = (char)v;
        else if (v < 0x800) {
          tmp[0] = (char)(0xc0 | (v >> 6));
          tmp[1] = (char)(0x80 | (v & 0x3f));
          n = 2;
        } else {
          tmp[0] = (char)(0xe0 | (v >> 12));
          tmp[1] = (char)(0x80 | ((v >> 6) & 0x3f));
          tmp[2] = (char)(0x80 | (v & 0x3f));
          n = 3;
        }
        break;
      }
      default: goto bad;
      }
    }
    if (len + n + 1 > cap) {
      char *g = pt__realloc(s, cap * 2);
      if (!g) goto bad;
      s = g;
      cap *= 2;
    }
    memcpy(s + len, tmp, n);
    len += n;
  }
  if (in->p >= in->end) goto bad;
  in->p++;
  s[len] = 0;
  return s;
bad:
  pt__free(s);
  return NULL;
}

int pt__res_parse_json(const char *text, size_t len, char **name, char ***addrs, int32_t *n,
                       pt_error *err) {
  json_in in = {text, text + len};
  *name = NULL;
  *addrs = NULL;
  *n = 0;
  int32_t cap = 0, have_addrs = 0;
  const char *why = "expected an object";
  ws(&in);
  if (in.p >= in.end || *in.p != '{') goto bad;
  in.p++;
  ws(&in);
  if (in.p < in.end && *in.p == '}') {
    in.p++;
    goto end;
  }
  for (;;) {
    why = "expected a string key";
    char *key = json_string(&in);
    if (!key) goto bad;
    ws(&in);
    why = "expected ':'";
    if (in.p >= in.end || *in.p != ':') {
      pt__free(key);
      goto bad;
    }
    in.p++;
    if (strcmp(key, "name") == 0) {
      pt__free(key);
      why = "\"name\" must be a string";
      char *v = json_string(&in);
      if (!v) goto bad;
      pt__free(*name);
      *name = v;
    } else if (strcmp(key, "addresses") == 0) {
      pt__free(key);
      why = "\"addresses\" must be an array of strings";
      if (have_addrs) goto bad;
      have_addrs = 1;
      ws(&in);
      if (in.p >= in.end || *in.p != '[') goto bad;
      in.p++;
      ws(&in);
      if (in.p < in.end && *in.p == ']') in.p++;
      else
        for (;;) {
          char *v = json_string(&in);
          if (!v) goto bad;
          if (*n == cap) {
            int32_t c = cap ? cap * 2 : 8;
            char **g = pt__realloc(*addrs, (size_t)c * sizeof *g);
            if (!g) {
              pt__free(v);
              goto bad;
            }
            *addrs = g;
            cap = c;
          }
          (*addrs)[(*n)++] = v;
          ws(&in);
          if (in.p < in.end && *in.p == ',') {
            in.p++;
            continue;
          }
          if (in.p < in.end && *in.p == ']') {
            in.p++;
            break;
          }
          goto bad;
        }
    } else {
      pt__free(key);
      why = "only \"name\" and \"addresses\" are known keys";
      goto bad;
    }
    ws(&in);
    why = "expected ',' or '}'";
    if (in.p < in.end && *in.p == ',') {
      in.p++;
      continue;
    }
    if (in.p < in.end && *in.p == '}') {
      in.p++;
      break;
    }
    goto bad;
  }
end:
  ws(&in);
  why = "text after the object";
  if (in.p != in.end) goto bad;
  why = "no \"name\"";
  if (!*name) goto bad;
  why = "no \"addresses\"";
  if (!have_addrs) goto bad;
  for (int32_t i = 0; i < *n; i++) {
    why = "an address is empty or too long";
    if (!(*addrs)[i][0] || strlen((*addrs)[i]) >= PT_RESOURCE_NAME_MAX || strchr((*addrs)[i], ','))
      goto bad;
    for (int32_t k = 0; k < i; k++)
      if (strcmp((*addrs)[i], (*addrs)[k]) == 0) {
        why = "an address is listed twice";
        goto bad;
      }
  }
  return PT_OK;
bad:
  pt__free(*name);
  pt__res_strings_free(*addrs, *n);
  *name = NULL;
  *addrs = NULL;
  *n = 0;
  return pt__errorf(err, PT_EFORMAT, "%s at byte %lld", why, (long long)(in.p - text));
}

/* Runs script with stdout and stderr into *out (at most 64 KiB kept).
 * *status: its wait status, or -1 when it ran past timeout_ms (killed). */
static int run_script(const char *script, int64_t timeout_ms, pt_buf *out, int *status,
                      pt_error *err) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return pt__errorf(err, PT_EIO, "cannot create a pipe: %s", strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  /* Its own process group: a timeout kills what it started too. */
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  extern char **environ;
  char *argv[] = {(char *)script, NULL};
  pid_t pid;
  int e = posix_spawn(&pid, script, &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(fds[1]);
  if (e != 0) {
    close(fds[0]);
    return pt__errorf(err, PT_EIO, "cannot run it: %s; it must be an executable file",
                      strerror(e));
  }
  int64_t deadline = pt__mono_ms() + timeout_ms;
  int timed_out = 0;
  char buf[4096];
  for (;;) {
    int64_t left = deadline - pt__mono_ms();
    if (left <= 0) {
      timed_out = 1;
      break;
    }
    struct pollfd pf = {fds[0], POLLIN, 0};
    int r = poll(&pf, 1, left > 1000 ? 1000 : (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t got = read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (out->len < 65536 && pt__buf_append(out, buf, (size_t)got) != PT_OK) break;
  }
  close(fds[0]);
  if (timed_out) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  *status = timed_out ? -1 : st;
  return PT_OK;
}

static char *output_text(pt_buf *b) {
  /* NUL-terminated, trailing blank lines dropped, for messages. */
  if (pt__buf_putc(b, '\0') != PT_OK || !b->data) return (char *)"";
  size_t n = strlen(b->data);
  while (n > 0 && (b->data[n - 1] == '\n' || b->data[n - 1] == '\r' || b->data[n - 1] == ' '))
    b->data[--n] = 0;
  return b->data;
}

/* The addresses of one spec: from its script or its static list. */
static int discover_one(const pt__res_spec *s, int64_t timeout_ms, char ***addrs, int32_t *n,
                        pt_error *err) {
  *addrs = NULL;
  *n = 0;
  if (s->script && *s->script) {
    pt_buf out = {0};
    int status = 0;
    pt_error e2 = {0};
    int rc = run_script(s->script, timeout_ms, &out, &status, &e2);
    if (rc != PT_OK) {
      pt_buf_free(&out);
      return pt__errorf(err, rc, "resources.%s.discovery_script '%s': %s", s->name, s->script,
                        e2.message);
    }
    char *text = output_text(&out);
    if (status == -1) {
      rc = pt__errorf(err, PT_ETIMEDOUT,
                      "resources.%s.discovery_script '%s' did not finish within %lld ms "
                      "(resources.discovery_timeout); it printed: '%.600s'", s->name, s->script,
                      (long long)timeout_ms, text);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      rc = pt__errorf(err, PT_EIO,
                      "resources.%s.discovery_script '%s' failed (%s %d); it printed: '%.600s'",
                      s->name, s->script, WIFEXITED(status) ? "exit status" : "signal",
                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), text);
    } else {
      char *name = NULL;
      rc = pt__res_parse_json(text, strlen(text), &name, addrs, n, &e2);
      if (rc != PT_OK)
        pt__errorf(err, rc,
                   "resources.%s.discovery_script '%s' printed no valid JSON like "
                   "{\"name\": \"%s\", \"addresses\": [\"0\", \"1\"]} (%s); it printed: '%.600s'",
                   s->name, s->script, s->name, e2.message, text);
      else if (strcmp(name, s->name) != 0) {
        rc = pt__errorf(err, PT_EFORMAT,
                        "resources.%s.discovery_script '%s' reported resource '%s', not '%s'; "
                        "it printed: '%.600s'", s->name, s->script, name, s->name, text);
        pt__res_strings_free(*addrs, *n);
        *addrs = NULL;
        *n = 0;
      }
      pt__free(name);
    }
    pt_buf_free(&out);
    return rc;
  }
  /* Static: "0,1,2" (blanks around addresses ignored). */
  const char *p = s->addresses ? s->addresses : "";
  int32_t cap = 0;
  while (*p) {
    while (*p == ' ') p++;
    const char *q = p;
    while (*q && *q != ',') q++;
    const char *e = q;
    while (e > p && e[-1] == ' ') e--;
    size_t len = (size_t)(e - p);
    if (len == 0 || len >= PT_RESOURCE_NAME_MAX) {
      pt__res_strings_free(*addrs, *n);
      *addrs = NULL;
      *n = 0;
      return pt__errorf(err, PT_EINVAL,
                        "resources.%s.addresses: '%s' has an empty or too long address; list "
                        "them comma-separated, e.g. '0,1'", s->name, s->addresses);
    }
    if (*n == cap) {
      int32_t c = cap ? cap * 2 : 8;
      char **g = pt__realloc(*addrs, (size_t)c * sizeof *g);
      if (!g) goto oom;
      *addrs = g;
      cap = c;
    }
    char *a = pt__malloc(len + 1);
    if (!a) goto oom;
    memcpy(a, p, len);
    a[len] = 0;
    for (int32_t k = 0; k < *n; k++)
      if (strcmp((*addrs)[k], a) == 0) {
        pt__free(a);
        pt__res_strings_free(*addrs, *n);
        *addrs = NULL;
        *n = 0;
        return pt__errorf(err, PT_EINVAL, "resources.%s.addresses: '%s' lists an address twice",
                          s->name, s->addresses);
      }
    (*addrs)[(*n)++] = a;
    p = *q ? q + 1 : q;
  }
  return PT_OK;
oom:
  pt__res_strings_free(*addrs, *n);
  *addrs = NULL;
  *n = 0;
  return pt__errorf(err, PT_ENOMEM, "resources: out of memory");
}

void pt__res_ledgers_free(pt__res_ledger *l, int n_seats) {
  if (!l) return;
  for (int s = 0; s < n_seats; s++) {
    for (int32_t i = 0; i < l[s].n; i++) {
      pt__res_pool *p = &l[s].pools[i];
      pt__free(p->name);
      pt__free(p->env);
      pt__res_strings_free(p->addrs, p->n);
      pt__free(p->used);
    }
    pt__free(l[s].pools);
    for (pt__res_grant *g = l[s].spare, *next; g; g = next) {
      next = g->next;
      pt__free(g);
    }
  }
  pt__free(l);
}

int pt__res_discover(const pt__res_spec *specs, size_t n_specs, int n_seats, int64_t timeout_ms,
                     pt__res_ledger **out, pt_error *err) {
  *out = NULL;
  if (n_seats < 1) n_seats = 1;
  pt__res_ledger *l = pt__calloc((size_t)n_seats, sizeof *l);
  if (!l) return pt__errorf(err, PT_ENOMEM, "resources: out of memory");
  for (int s = 0; s < n_seats; s++) {
    l[s].pools = pt__calloc(n_specs ? n_specs : 1, sizeof *l[s].pools);
    if (!l[s].pools) goto oom;
  }
  for (size_t r = 0; r < n_specs; r++) {
    char **addrs;
    int32_t n;
    int rc = discover_one(&specs[r], timeout_ms, &addrs, &n, err);
    if (rc != PT_OK) {
      pt__res_ledgers_free(l, n_seats);
      return rc;
    }
    const char *env = specs[r].env ? specs[r].env
                      : strcmp(specs[r].name, "gpu") == 0 ? "CUDA_VISIBLE_DEVICES" : "";
    for (int s = 0; s < n_seats; s++) {
      /* Seat s: addresses [s*n/N, (s+1)*n/N): disjoint, sizes differ by 1 at most. */
      int32_t lo = (int32_t)((int64_t)s * n / n_seats), hi = (int32_t)((int64_t)(s + 1) * n / n_seats);
      pt__res_pool *p = &l[s].pools[l[s].n++];
      p->name = pt__strdup(specs[r].name);
      p->env = pt__strdup(env);
      p->n = hi - lo;
      p->addrs = pt__calloc((size_t)(p->n ? p->n : 1), sizeof *p->addrs);
      p->used = pt__calloc((size_t)(p->n ? p->n : 1), sizeof *p->used);
      p->n_free = hi - lo;
      if (!p->name || !p->env || !p->addrs || !p->used) {
        p->n = 0;
        pt__res_strings_free(addrs, n);
        goto oom;
      }
      for (int32_t i = lo; i < hi; i++) {
        p->addrs[i - lo] = addrs[i];
        addrs[i] = NULL;
      }
    }
    pt__res_strings_free(addrs, n);
  }
  *out = l;
  return PT_OK;
oom:
  pt__res_ledgers_free(l, n_seats);
  return pt__errorf(err, PT_ENOMEM, "resources: out of memory");
}

int pt__res_ledger_set(pt__res_ledger *l, Protium__Resource *const *r, size_t n, pt_error *err) {
  for (size_t k = 0; k < n; k++) {
    int32_t i = 0;
    while (i < l->n && strcmp(l->pools[i].name, r[k]->name ? r[k]->name : "") != 0) i++;
    if (i == l->n) continue;
    int32_t m = (int32_t)r[k]->n_addresses;
    char **addrs = pt__calloc((size_t)(m ? m : 1), sizeof *addrs);
    int32_t *used = pt__calloc((size_t)(m ? m : 1), sizeof *used);
    int ok = addrs && used;
    for (int32_t a = 0; a < m && ok; a++) ok = (addrs[a] = pt__strdup(r[k]->addresses[a])) != NULL;
    if (!ok) {
      pt__res_strings_free(addrs, m);
      pt__free(used);
      return pt__errorf(err, PT_ENOMEM, "resources: out of memory");
    }
    pt__res_pool *p = &l->pools[i];
    pt__res_strings_free(p->addrs, p->n);
    pt__free(p->used);
    p->addrs = addrs;
    p->used = used;
    p->n = m;
    p->n_free = m;
    p->low_free = 0;
  }
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Ledger */

static const pt__res_pool *find_pool(const pt__res_ledger *l, const char *name, int32_t *index) {
  for (int32_t i = 0; i < l->n; i++)
    if (strcmp(l->pools[i].name, name) == 0) {
      if (index) *index = i;
      return &l->pools[i];
    }
  return NULL;
}

/* Tasks of request r that pool p fits, used as it is (empty: all free). */
static int64_t pool_fits(const pt__res_pool *p, const pt__res_req *r, int empty) {
  if (r->units == PT__RES_UNITS) return (empty ? p->n : p->n_free) / r->count;
  int64_t tasks = 0;
  for (int32_t i = 0; i < p->n; i++) tasks += (PT__RES_UNITS - (empty ? 0 : p->used[i])) / r->units;
  return tasks;
}

/* used[a] += units (negative: given back), keeping n_free and low_free. */
static inline void pool_use(pt__res_pool *p, int32_t a, int32_t units) {
  int was_free = p->used[a] == 0;
  p->used[a] += units;
  if (was_free && p->used[a] != 0) p->n_free--;
  if (!was_free && p->used[a] == 0) {
    p->n_free++;
    if (a < p->low_free) p->low_free = a;
  }
}

int64_t pt__res_capacity(const pt__res_ledger *l, const pt_resource_profile *p, int empty,
                         int64_t cap) {
  int64_t fit = cap;
  for (int32_t k = 0; p && k < p->n; k++) {
    const pt__res_req *r = &p->reqs[k];
    if (r->optional) continue;
    const pt__res_pool *pool = find_pool(l, r->name, NULL);
    int64_t f = pool ? pool_fits(pool, r, empty) : 0;
    if (f < fit) fit = f;
  }
  return fit;
}

void pt__res_release(pt__res_ledger *l, pt__res_grant *g) {
  if (!g) return;
  for (int32_t i = 0; i < g->n; i++) pool_use(&l->pools[g->e[i][0]], g->e[i][1], -g->e[i][2]);
  if (g->cap == PT__RES_GRANT_SMALL) {
    g->next = l->spare;
    l->spare = g;
  } else {
    pt__free(g);
  }
}

int pt__res_take(pt__res_ledger *l, const pt_resource_profile *p, const int32_t *pools,
                 pt__res_grant **out) {
  *out = NULL;
  int32_t max = 0;
  for (int32_t k = 0; k < p->n; k++) max += p->reqs[k].count;
  if (max == 0) return PT_OK;
  pt__res_grant *g;
  if (max <= PT__RES_GRANT_SMALL && l->spare) {
    g = l->spare;
    l->spare = g->next;
  } else {
    int32_t cap = max <= PT__RES_GRANT_SMALL ? PT__RES_GRANT_SMALL : max;
    g = pt__malloc(sizeof *g + (size_t)cap * sizeof g->e[0]);
    if (!g) return PT_ENOMEM;
    g->cap = cap;
  }
  g->n = 0;
  for (int32_t k = 0; k < p->n; k++) {
    const pt__res_req *r = &p->reqs[k];
    int32_t pi = pools[k];
    pt__res_pool *pool = pi >= 0 && pi < l->n ? &l->pools[pi] : NULL;
    int ok = pool && pool_fits(pool, r, 0) >= 1;
    if (!ok) {
      if (r->optional) continue;
      pt__res_release(l, g); /* gives back what earlier requests took */
      return PT_ESTATE;
    }
    if (r->units == PT__RES_UNITS) {
      /* The lowest free addresses, found from low_free on. */
      int32_t got = 0, a = pool->low_free;
      for (; a < pool->n && got < r->count; a++)
        if (pool->used[a] == 0) {
          pool_use(pool, a, PT__RES_UNITS);
          g->e[g->n][0] = pi, g->e[g->n][1] = a, g->e[g->n][2] = PT__RES_UNITS;
          g->n++, got++;
        }
      pool->low_free = a;
    } else {
      /* Pack shares: the fullest address that still has room, so whole
       * addresses stay free for whole requests. */
      int32_t best = -1;
      for (int32_t a = 0; a < pool->n; a++)
        if (PT__RES_UNITS - pool->used[a] >= r->units &&
            (best < 0 || pool->used[a] > pool->used[best]))
          best = a;
      pool_use(pool, best, r->units);
      g->e[g->n][0] = pi, g->e[g->n][1] = best, g->e[g->n][2] = r->units;
      g->n++;
    }
  }
  if (g->n == 0) {
    pt__res_release(l, g);
    g = NULL;
  }
  *out = g;
  return PT_OK;
}

void pt__res_table_entry(const pt__res_ledger *l, int32_t i, Protium__Resource *m, char **addrs) {
  const pt__res_pool *p = &l->pools[i];
  protium__resource__init(m);
  m->name = p->name;
  m->env = p->env;
  m->n_addresses = (size_t)p->n;
  m->addresses = addrs;
  for (int32_t a = 0; a < p->n; a++) addrs[a] = p->addrs[a];
}

void pt__res_fill_info(const pt__res_ledger *l, pt_executor_info *info) {
  info->n_resources = 0;
  for (int32_t i = 0; l && i < l->n && i < PT_EXECUTOR_RESOURCES_MAX; i++) {
    pt_executor_resource *r = &info->resources[info->n_resources++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", l->pools[i].name);
    r->n_addresses = l->pools[i].n;
    for (int32_t a = 0; a < l->pools[i].n && a < PT_RESOURCE_ADDRESSES_MAX; a++)
      snprintf(r->addresses[a], sizeof r->addresses[a], "%s", l->pools[i].addrs[a]);
  }
}

int pt__res_unsatisfiable(const pt__res_ledger *seats, int n_seats, const pt_resource_profile *p,
                          char *msg, size_t cap) {
  for (int32_t k = 0; k < p->n; k++) {
    const pt__res_req *r = &p->reqs[k];
    if (r->optional) continue;
    int known = 0;
    int32_t most = 0;
    for (int s = 0; s < n_seats; s++) {
      const pt__res_pool *pool = find_pool(&seats[s], r->name, NULL);
      if (!pool) continue;
      known = 1;
      if (pool->n > most) most = pool->n;
    }
    if (!known) {
      snprintf(msg, cap,
               "it asks for %g '%s' per task but no executor has a resource '%s'; configure "
               "resources.%s.discovery_script or resources.%s.addresses, or make the request "
               "optional", r->amount, r->name, r->name, r->name, r->name);
      return 1;
    }
    if (most < r->count) {
      snprintf(msg, cap,
               "it asks for %d '%s' per task but no executor has more than %d; lower the "
               "amount or give executors more (fewer executors per host share its addresses)",
               r->count, r->name, most);
      return 1;
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Scheduler hooks */

int pt__res_fits(pt__driver *d, pt__executor *ex, const pt__sched_stage *st) {
  (void)d;
  /* Tasks of several cpus in flight: no queueing beyond the slots, so the
   * executor, which starts queued tasks as slots come free, never runs
   * more cpus than it has. */
  int32_t c = pt__res_cpus(st->profile);
  if ((c > 1 || ex->n_multi > 0) && ex->units + c > ex->slots) return 0;
  if (!st->profile) return 1;
  /* Whole addresses: the count of free ones; a share: one address with room. */
  for (int32_t k = 0; k < st->profile->n; k++) {
    const pt__res_req *r = &st->profile->reqs[k];
    if (r->optional) continue;
    int32_t pi = st->res_pools[k];
    if (pi < 0 || pi >= ex->res->n) return 0;
    const pt__res_pool *pool = &ex->res->pools[pi];
    if (r->units == PT__RES_UNITS) {
      if (pool->n_free < r->count) return 0;
      continue;
    }
    int got = 0;
    for (int32_t a = 0; a < pool->n && !got; a++) got = PT__RES_UNITS - pool->used[a] >= r->units;
    if (!got) return 0;
  }
  return 1;
}

/* "executor 1: 1 gpu (0), executor 2: 0 gpu ()" into out. */
static void describe_seats(pt__driver *d, const pt_resource_profile *p, char *out, size_t cap) {
  size_t len = 0;
  out[0] = 0;
  for (int s = 0; s < d->opts.n_executors && len < cap; s++) {
    const pt__res_ledger *l = &d->res[s];
    int w = snprintf(out + len, cap - len, "%sexecutor %d:", s ? "; " : "", s + 1);
    if (w < 0) return;
    len += (size_t)w;
    for (int32_t k = 0; k < p->n && len < cap; k++) {
      const pt__res_pool *pool = find_pool(l, p->reqs[k].name, NULL);
      w = snprintf(out + len, cap - len, " %d %s", pool ? pool->n : 0, p->reqs[k].name);
      if (w < 0) return;
      len += (size_t)w;
    }
  }
}

int pt__res_check_job(pt__driver *d, pt__job *job) {
  for (int64_t i = 0; i < job->n_stages; i++) {
    pt__sched_stage *st = job->stages[i];
    if (!st->profile) continue;
    for (int32_t k = 0; k < st->profile->n; k++) {
      st->res_pools[k] = -1;
      find_pool(&d->res[0], st->profile->reqs[k].name, &st->res_pools[k]);
    }
    char why[600], want[300], msg[PT_ERROR_SIZE];
    pt__res_profile_text(st->profile, want, sizeof want);
    if (pt__res_cpus(st->profile) > d->opts.slots) {
      snprintf(msg, sizeof msg,
               "job %lld failed: stage %lld asks for %d cpus per task but executors have %d "
               "slots (executor.slots); lower the cpus or raise executor.slots",
               (long long)job->id, (long long)st->id, (int)pt__res_cpus(st->profile),
               d->opts.slots);
      pt__sched_job_fail(d, job, PT_EINVAL, msg);
      return 0;
    }
    if (pt__res_unsatisfiable(d->res, d->opts.n_executors, st->profile, why, sizeof why)) {
      snprintf(msg, sizeof msg, "job %lld failed: stage %lld (%s per task): %s",
               (long long)job->id, (long long)st->id, want, why);
      pt__sched_job_fail(d, job, PT_EINVAL, msg);
      return 0;
    }
    if (!st->barrier) continue;
    int64_t total = 0;
    for (int s = 0; s < d->opts.n_executors; s++)
      total += pt__res_capacity(&d->res[s], st->profile, 1,
                                d->opts.slots / pt__res_cpus(st->profile));
    if (total >= st->partitions) continue;
    char have[400];
    describe_seats(d, st->profile, have, sizeof have);
    snprintf(msg, sizeof msg,
             "job %lld failed: barrier stage %lld needs %lld tasks with %s each at once but "
             "the executors can hold %lld such tasks at once (%s); lower the number of "
             "partitions or the amount, or add resources", (long long)job->id,
             (long long)st->id, (long long)st->partitions, want, (long long)total, have);
    pt__sched_job_fail(d, job, PT_EINVAL, msg);
    return 0;
  }
  return 1;
}

int pt__res_barrier_place(pt__driver *d, const pt__sched_stage *st, int32_t *execs) {
  int64_t n = st->partitions, total = 0;
  int64_t *left = pt__calloc((size_t)(d->n_execs ? d->n_execs : 1), sizeof *left);
  if (!left) return 0;
  for (int32_t e = 0; e < d->n_execs; e++) {
    pt__executor *ex = d->execs[e];
    int32_t busy = ex->units > ex->n_inflight ? ex->units : ex->n_inflight;
    if (ex->state != PT__EXEC_READY || busy >= ex->slots) continue;
    left[e] = pt__res_capacity(ex->res, st->profile, 0,
                               (ex->slots - busy) / pt__res_cpus(st->profile));
    total += left[e];
  }
  int placed = total >= n;
  if (placed && d->opts.barrier_spread) {
    /* One task per executor in turn. */
    for (int64_t p = 0, e = 0; p < n; e = (e + 1) % d->n_execs)
      if (left[e] > 0) {
        left[e]--;
        execs[p++] = (int32_t)e;
      }
  } else if (placed) {
    /* Fewest executors: fill the roomiest first. */
    for (int64_t p = 0; p < n;) {
      int32_t best = 0;
      for (int32_t e = 1; e < d->n_execs; e++)
        if (left[e] > left[best]) best = e;
      while (left[best] > 0 && p < n) {
        left[best]--;
        execs[p++] = best;
      }
    }
  }
  pt__free(left);
  return placed;
}
