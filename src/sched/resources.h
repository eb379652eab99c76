/* resources.h — accelerator-aware scheduling inside the driver: discovery
 * of a host's named resources (GPUs, ...), one ledger per executor seat
 * dealt out of them without overlap, stage resource profiles, and the
 * grants that give each task concrete addresses. Internal to src/sched.
 */
#ifndef PT_SCHED_RESOURCES_H
#define PT_SCHED_RESOURCES_H

#include <stdint.h>

#include "net/control.pb-c.h"
#include "protium.h"

/* One address is PT__RES_UNITS units; a fraction f of it costs
 * PT__RES_UNITS / floor(1 / f) units, so at most floor(1 / f) tasks of that
 * profile share it, and tasks of different fractions never sum above one
 * whole address. PT__RES_MAX_SHARE bounds floor(1 / f) (f >= 1/64). */
#define PT__RES_UNITS (1 << 20)
#define PT__RES_MAX_SHARE 64
/* Requests per profile (one per resource name). */
#define PT__RES_MAX_REQS 8

typedef struct pt__res_req {
  char name[PT_RESOURCE_NAME_MAX];
  double amount;           /* as given */
  int optional;            /* PT_RESOURCE_OPTIONAL */
  int32_t count;           /* addresses per task */
  int32_t units;           /* units of each address (PT__RES_UNITS when whole) */
} pt__res_req;

struct pt_resource_profile {
  int32_t cpus;            /* slots per task; 0 = 1 */
  int32_t n;
  pt__res_req reqs[PT__RES_MAX_REQS];
};

/* One resource of one executor seat. */
typedef struct pt__res_pool {
  char *name;              /* owned */
  char *env;               /* owned: the variable child processes get ("" = none) */
  int32_t n;               /* addresses */
  char **addrs;            /* owned, n, each owned */
  int32_t *used;           /* [n] units held by running tasks (driver loop_mu) */
  int32_t n_free;          /* addresses with used 0 (loop_mu): whole requests count these */
  int32_t low_free;        /* no address below it has used 0 (loop_mu): where scans start */
} pt__res_pool;

/* What one executor seat owns. In local[N] seat i is executor i's, and a
 * replacement takes the seat of the executor it replaces. */
typedef struct pt__res_ledger {
  int32_t n;
  pt__res_pool *pools;     /* owned */
  struct pt__res_grant *spare; /* owned: released small grants, for reuse */
} pt__res_ledger;

/* The addresses one task holds: entry i is (pool, address, units). Grants
 * of up to PT__RES_GRANT_SMALL entries are recycled through the ledger. */
#define PT__RES_GRANT_SMALL 4
typedef struct pt__res_grant {
  struct pt__res_grant *next;  /* in the ledger's spares */
  int32_t n, cap;
  int32_t e[][3];
} pt__res_grant;

/* A resource as configured (resources.<name>.*); strings borrowed. */
typedef struct pt__res_spec {
  const char *name;
  const char *script;      /* discovery_script, or NULL */
  const char *addresses;   /* comma-separated static addresses, or NULL */
  const char *env;         /* variable for child processes; NULL = the default */
} pt__res_spec;

/* Runs each spec's discovery once (script or static list) and deals the
 * addresses found out to n_seats ledgers, disjointly and as evenly as they
 * go (seat i gets addresses i*k/n .. (i+1)*k/n). A failing, slow (past
 * timeout_ms) or garbled script fails with its output in the message. On
 * PT_OK the caller owns *out (pt__res_ledgers_free). */
int pt__res_discover(const pt__res_spec *specs, size_t n_specs, int n_seats, int64_t timeout_ms,
                     pt__res_ledger **out, pt_error *err);
void pt__res_ledgers_free(pt__res_ledger *l, int n_seats);

/* Gives the pools of l named in r (n reports, an executor's Hello) the
 * addresses reported: what a cluster manager gave that executor (Slurm's
 * GPUs). Names l has no pool of are ignored; l must hold no grant. */
int pt__res_ledger_set(pt__res_ledger *l, Protium__Resource *const *r, size_t n, pt_error *err);

/* Parses Spark's discovery output {"name": "gpu", "addresses": ["0", "1"]}.
 * On PT_OK the caller owns *name and *addrs (each string and the array;
 * free with pt__res_strings_free). */
int pt__res_parse_json(const char *text, size_t len, char **name, char ***addrs, int32_t *n,
                       pt_error *err);
void pt__res_strings_free(char **s, int32_t n);

/* Slots a task of profile p (NULL: none) takes. */
static inline int32_t pt__res_cpus(const pt_resource_profile *p) {
  return p && p->cpus > 1 ? p->cpus : 1;
}

/* Tasks of profile p that ledger l can take now (or, with empty = 1, when
 * nothing runs), at most cap; optional requests do not limit it. */
int64_t pt__res_capacity(const pt__res_ledger *l, const pt_resource_profile *p, int empty,
                         int64_t cap);
/* Takes what a task of profile p needs from l; pools[k] is the index in l
 * of request k's pool (-1: l has none). PT_OK: *out is the grant (NULL
 * when it holds nothing; release it with pt__res_release); PT_ESTATE when a
 * required request does not fit now (nothing taken); PT_ENOMEM. */
int pt__res_take(pt__res_ledger *l, const pt_resource_profile *p, const int32_t *pools,
                 pt__res_grant **out);
/* Gives g's units back to l and frees g. NULL is fine. */
void pt__res_release(pt__res_ledger *l, pt__res_grant *g);
/* Welcome.resources entry i of l (the pool, all its addresses):
 * *m and the array at addrs (l->pools[i].n entries, the caller's) borrow
 * the strings of l. */
void pt__res_table_entry(const pt__res_ledger *l, int32_t i, Protium__Resource *m, char **addrs);
/* TaskLaunch.resource_refs for g: 2 * g->n values into refs, (pool index,
 * address index) per address held, which index the executor's table. */
static inline size_t pt__res_grant_refs(const pt__res_grant *g, uint32_t *refs) {
  for (int32_t i = 0; i < g->n; i++) {
    refs[2 * i] = (uint32_t)g->e[i][0];
    refs[2 * i + 1] = (uint32_t)g->e[i][1];
  }
  return 2 * (size_t)g->n;
}
/* Fills info's resource fields from l. */
void pt__res_fill_info(const pt__res_ledger *l, pt_executor_info *info);
/* Why no seat could ever run a task of p (unknown resource, more than any
 * executor has), into msg; 0 when some seat could. */
int pt__res_unsatisfiable(const pt__res_ledger *seats, int n_seats, const pt_resource_profile *p,
                          char *msg, size_t cap);
/* "1 gpu, 0.5 fpga (optional)" */
void pt__res_profile_text(const pt_resource_profile *p, char *out, size_t cap);

#endif /* PT_SCHED_RESOURCES_H */
