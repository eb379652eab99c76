/* registry.c — names of user functions (pt_fn_register, PT_REGISTER_FN).
 * Registration happens in constructors before main() (single-threaded) but is
 * allowed later too, so a read-write lock guards the table; lookups, which
 * executors do once per task, take only the read side.
 */
#include <pthread.h>
#include <string.h>

#include "core/registry.h"

typedef struct fn_entry {
  char *name;          /* pt__malloc'd, never freed: names live as long as the process */
  void (*fn)(void);
  int conflict;        /* 1: a second, different function used this name */
} fn_entry;

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static fn_entry *entries;  /* guarded by lock */
static size_t n_entries, cap_entries;

int pt_fn_register(const char *name, void (*fn)(void)) {
  if (name == NULL || name[0] == '\0' || fn == NULL) return PT_EINVAL;
  int rc = PT_OK;
  pthread_rwlock_wrlock(&lock);
  for (size_t i = 0; i < n_entries; i++) {
    if (strcmp(entries[i].name, name) != 0) continue;
    /* Keep the first; remember the clash so that lookups explain it. */
    if (entries[i].fn != fn) {
      entries[i].conflict = 1;
      rc = PT_EINVAL;
    }
    goto unlock;
  }
  if (n_entries == cap_entries) {
    size_t cap = cap_entries ? cap_entries * 2 : 32;
    fn_entry *grown = pt__realloc(entries, cap * sizeof *grown);
    if (grown == NULL) { rc = PT_ENOMEM; goto unlock; }
    entries = grown;
    cap_entries = cap;
  }
  char *copy = pt__strdup(name);
  if (copy == NULL) { rc = PT_ENOMEM; goto unlock; }
  entries[n_entries++] = (fn_entry){copy, fn, 0};
unlock:
  pthread_rwlock_unlock(&lock);
  return rc;
}

static int conflict_error(pt_error *err, const char *name) {
  return pt__errorf(err, PT_EINVAL,
                    "function name '%s' is registered for two different functions; rename one "
                    "of them", name);
}

int pt__fn_lookup_name(const char *name, void (**fn)(void), pt_error *err) {
  *fn = NULL;
  int rc = PT_OK;
  pthread_rwlock_rdlock(&lock);
  size_t i = 0;
  while (i < n_entries && strcmp(entries[i].name, name) != 0) i++;
  if (i == n_entries)
    rc = pt__errorf(err, PT_EINVAL,
                    "function '%s' is not registered in this program; add "
                    "PT_REGISTER_FN(%s) next to its definition", name, name);
  else if (entries[i].conflict) rc = conflict_error(err, name);
  else *fn = entries[i].fn;
  pthread_rwlock_unlock(&lock);
  return rc;
}

int pt__fn_lookup_ptr(void (*fn)(void), const char **name, pt_error *err) {
  *name = NULL;
  int rc = PT_OK;
  pthread_rwlock_rdlock(&lock);
  size_t i = 0;
  while (i < n_entries && entries[i].fn != fn) i++;
  if (i == n_entries)
    rc = pt__errorf(err, PT_EINVAL,
                    "function %p is not registered; add PT_REGISTER_FN(name_of_function) next "
                    "to its definition so that executors can find it", (void *)fn);
  else if (entries[i].conflict) rc = conflict_error(err, entries[i].name);
  else *name = entries[i].name;
  pthread_rwlock_unlock(&lock);
  return rc;
}
