/* files.c — the few file-system helpers every layer needs: removing a tree
 * (session, job and executor directories) and creating a path's missing
 * directories.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

int pt__rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return PT_OK;
  nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return lstat(path, &st) == 0 ? PT_EIO : PT_OK;
}

int pt__mkdirs(const char *path, pt_error *err) {
  char *p = pt__strdup(path);
  if (!p) return pt__errorf(err, PT_ENOMEM, "out of memory");
  for (char *s = p + 1;; s++) {
    if (*s == '/' || *s == 0) {
      char c = *s;
      *s = 0;
      if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        int rc = pt__errorf(err, PT_EIO, "cannot create directory '%s': %s", p, strerror(errno));
        pt__free(p);
        return rc;
      }
      *s = c;
      if (!c) break;
    }
  }
  pt__free(p);
  return PT_OK;
}
