/* registry.h — the process-wide table of user functions by name
 * (PT_REGISTER_FN). The driver turns the pointer given to pt_map_batches or
 * pt_filter into a name; an executor, running the same binary, turns the name
 * back into its own pointer.
 */
#ifndef PT_CORE_REGISTRY_H
#define PT_CORE_REGISTRY_H

#include "core/core.h"

/* The function registered under name. PT_EINVAL with a message that says what
 * to do when the name is unknown or was registered for two different
 * functions (both are refused: the driver and an executor could not agree on
 * which one runs). */
int pt__fn_lookup_name(const char *name, void (**fn)(void), pt_error *err);

/* The name fn was registered under. *name is owned by the registry and lives
 * as long as the process. PT_EINVAL if fn was not registered (the message
 * says to add PT_REGISTER_FN) or its name is ambiguous. */
int pt__fn_lookup_ptr(void (*fn)(void), const char **name, pt_error *err);

#endif /* PT_CORE_REGISTRY_H */
