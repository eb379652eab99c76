/* files.c — the few file-system helpers every layer needs: removing a tree
 * (session, job and executor directories), creating a path's missing
 * directories, and the directory a job's result files go to (in memory
 * where there is room).
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

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

int pt__is_memory_dir(const char *path) {
  struct statfs fs;
  struct stat st;
  return statfs(path, &fs) == 0 && fs.f_type == TMPFS_MAGIC && stat(path, &st) == 0 &&
         S_ISDIR(st.st_mode) && access(path, W_OK | X_OK) == 0;
}

int pt__memory_dir_has_room(const char *path) {
  /* PROTIUM_FAULT_RESULTS_FULL (tests): the memory directory is full. */
  if (getenv("PROTIUM_FAULT_RESULTS_FULL")) return 0;
  struct statvfs v;
  if (statvfs(path, &v) != 0) return 0;
  /* Results in memory stay there until the driver lets them go: the rest
   * of the machine keeps a quarter of the tmpfs. */
  double free_bytes = (double)v.f_bavail * (double)v.f_frsize;
  double size = (double)v.f_blocks * (double)v.f_frsize;
  return free_bytes >= size / 4 && free_bytes >= (double)(256u << 20);
}

int pt__results_job_dir(const char *memory_dir, const char *disk_dir, int64_t job, char **out,
                        pt_error *err) {
  *out = NULL;
  /* statvfs needs the directory itself: made by the first result file
   * (a failure leaves it to the disk), not walked again by every one. */
  struct stat st;
  int made = memory_dir && (stat(memory_dir, &st) == 0 || pt__mkdirs(memory_dir, NULL) == PT_OK);
  const char *base = made && pt__memory_dir_has_room(memory_dir) ? memory_dir : disk_dir;
  size_t len = strlen(base) + 32;
  char *dir = pt__malloc(len);
  if (!dir) return pt__errorf(err, PT_ENOMEM, "out of memory");
  snprintf(dir, len, "%s/%lld", base, (long long)job);
  int rc = pt__mkdirs(dir, err);
  if (rc != PT_OK) {
    pt__free(dir);
    return rc;
  }
  *out = dir;
  return PT_OK;
}

void pt__sweep_session_dirs(const char *base) {
  DIR *d = opendir(base);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "protium-", 8) != 0) continue;
    char *end;
    long pid = strtol(e->d_name + 8, &end, 10);
    if (end == e->d_name + 8 || *end != '-' || pid <= 0 || pid == (long)getpid()) continue;
    /* Another user's process answers EPERM: alive, or not ours to judge. */
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", base, e->d_name) < (int)sizeof path)
      (void)pt__rm_rf(path);
  }
  closedir(d);
}
