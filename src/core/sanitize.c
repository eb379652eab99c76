/* sanitize.c — executors under AddressSanitizer, UBSan and LeakSanitizer.
 * In a sanitizer build each executor writes its reports to a file of the
 * session (log_path), ends through a leak check instead of a bare _exit,
 * and the driver prints those reports and stops the program at session
 * close: a memory error in an executor must fail the run that caused it,
 * not pass as a lost executor that the engine retried. Other builds: no-ops.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#if defined(__SANITIZE_ADDRESS__)
#define PT__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PT__ASAN 1
#endif
#endif

#ifdef PT__ASAN
#include <sanitizer/lsan_interface.h>
#endif

int pt__sanitized(void) {
#ifdef PT__ASAN
  return 1;
#else
  return 0;
#endif
}

void pt__sanitizer_leak_check(void) {
#ifdef PT__ASAN
  fflush(NULL);
  __lsan_do_leak_check(); /* exits with a non-zero status on a leak */
#endif
}

char *pt__sanitizer_env(const char *name, const char *log_prefix) {
  const char *old = getenv(name);
  size_t n = strlen(name) + (old ? strlen(old) : 0) + strlen(log_prefix) + 16;
  char *v = pt__malloc(n);
  if (v) snprintf(v, n, "%s=%s%slog_path=%s", name, old ? old : "", old && *old ? ":" : "",
                  log_prefix);
  return v;
}

int pt__sanitizer_report(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    char buf[4096];
    size_t got, total = 0;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
      if (!total) fprintf(stderr, "protium: sanitizer report of an executor (%s):\n", e->d_name);
      fwrite(buf, 1, got, stderr);
      total += got;
    }
    fclose(f);
    n += total > 0;
  }
  closedir(d);
  return n;
}
