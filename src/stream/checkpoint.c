/* checkpoint.c — the checkpoint directory of a streaming query: the offset
 * log written before a batch runs, the commit log written after its sink
 * committed, the query id, and the lock that keeps two live queries off one
 * checkpoint. Layout in stream_int.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stream/stream_int.h"

int64_t pt__stream_wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t pt__stream_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int pt__stream_fsync_dir(const char *dir, pt_error *err) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return pt__errorf(err, PT_EIO, "stream: cannot open directory '%s': %s", dir,
                      strerror(errno));
  int rc = fsync(fd) == 0 ? PT_OK
                          : pt__errorf(err, PT_EIO, "stream: fsync of '%s': %s", dir,
                                       strerror(errno));
  close(fd);
  return rc;
}

/* path's new content by a rename; with sync, the data and the name are on
 * disk when it returns. */
static int write_file(const char *path, const void *data, size_t len, int sync, pt_error *err) {
  size_t n = strlen(path);
  char *tmp = pt__malloc(n + 16), *dir = pt__strdup(path);
  if (!tmp || !dir) {
    pt__free(tmp);
    pt__free(dir);
    return pt__errorf(err, PT_ENOMEM, "stream: out of memory");
  }
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  const char *base = slash ? path + (slash - dir) + 1 : path;
  snprintf(tmp, n + 16, "%s/.%s.tmp", slash ? dir : ".", base);
  int rc = PT_OK;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = pt__errorf(err, PT_EIO, "stream: cannot create '%s': %s", tmp, strerror(errno));
    goto free_names;
  }
  const char *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      rc = pt__errorf(err, PT_EIO, "stream: cannot write '%s': %s", tmp, strerror(errno));
      break;
    }
    p += w;
    left -= (size_t)w;
  }
  if (rc == PT_OK && sync && fsync(fd) != 0)
    rc = pt__errorf(err, PT_EIO, "stream: fsync of '%s': %s", tmp, strerror(errno));
  close(fd);
  if (rc == PT_OK && rename(tmp, path) != 0)
    rc = pt__errorf(err, PT_EIO, "stream: cannot rename '%s' to '%s': %s", tmp, path,
                    strerror(errno));
  if (rc != PT_OK) unlink(tmp);
  if (rc == PT_OK && sync) rc = pt__stream_fsync_dir(slash ? dir : ".", err);
free_names:
  pt__free(tmp);
  pt__free(dir);
  return rc;
}

int pt__stream_write_durable(const char *path, const void *data, size_t len, pt_error *err) {
  return write_file(path, data, len, 1, err);
}

int pt__stream_read_file(const char *path, char **data, size_t *len, pt_error *err) {
  *data = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return pt__errorf(err, PT_EIO, "stream: cannot open '%s': %s", path, strerror(errno));
  pt_buf b = {0};
  char chunk[4096];
  size_t got;
  int rc = PT_OK;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (pt__buf_append(&b, chunk, got) != PT_OK) {
      rc = pt__errorf(err, PT_ENOMEM, "stream: out of memory");
      break;
    }
  if (rc == PT_OK && ferror(f))
    rc = pt__errorf(err, PT_EIO, "stream: cannot read '%s'", path);
  fclose(f);
  if (rc == PT_OK && pt__buf_putc(&b, 0) != PT_OK)
    rc = pt__errorf(err, PT_ENOMEM, "stream: out of memory");
  if (rc != PT_OK) {
    pt_buf_free(&b);
    return rc;
  }
  *len = b.len - 1;
  *data = pt__malloc(b.len);
  if (!*data) {
    pt_buf_free(&b);
    return pt__errorf(err, PT_ENOMEM, "stream: out of memory");
  }
  memcpy(*data, b.data, b.len);
  pt_buf_free(&b);
  return PT_OK;
}

static int new_id(char out[33], pt_error *err) {
  unsigned char raw[16];
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, raw, sizeof raw) != (ssize_t)sizeof raw) {
    if (fd >= 0) close(fd);
    return pt__errorf(err, PT_EIO, "stream: cannot read /dev/urandom for the query id");
  }
  close(fd);
  for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", raw[i]);
  return PT_OK;
}

int pt__ckpt_open(const char *dir, pt__ckpt *c, pt_error *err) {
  memset(c, 0, sizeof *c);
  c->lock_fd = -1;
  if (!dir || !*dir)
    return pt__errorf(err, PT_EINVAL, "stream: a checkpoint directory is required");
  c->dir = pt__strdup(dir);
  if (!c->dir) return pt__errorf(err, PT_ENOMEM, "stream: out of memory");
  char path[4096];
  int rc = PT_OK;
  const char *subs[] = {"", "/offsets", "/commits", "/sources/0"};
  for (int i = 0; i < 4 && rc == PT_OK; i++) {
    snprintf(path, sizeof path, "%s%s", dir, subs[i]);
    rc = pt__mkdirs(path, err);
  }
  if (rc != PT_OK) goto fail;
  snprintf(path, sizeof path, "%s/.lock", dir);
  c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (c->lock_fd < 0) {
    rc = pt__errorf(err, PT_EIO, "stream: cannot open '%s': %s", path, strerror(errno));
    goto fail;
  }
  if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    rc = pt__errorf(err, PT_ESTATE,
                    "stream: checkpoint '%s' is in use by another running query; stop it "
                    "first, or give this query a checkpoint of its own", dir);
    goto fail;
  }
  snprintf(path, sizeof path, "%s/metadata", dir);
  char *meta;
  size_t len;
  if (access(path, F_OK) == 0) {
    if ((rc = pt__stream_read_file(path, &meta, &len, err)) != PT_OK) goto fail;
    const char *p = strstr(meta, "\"id\":\"");
    if (!p || strlen(p + 6) < 33 || p[6 + 32] != '"') {
      pt__free(meta);
      rc = pt__errorf(err, PT_EFORMAT,
                      "stream: checkpoint metadata '%s' is not {\"id\":\"<32 hex>\"}; it is "
                      "not a protium checkpoint, or it was damaged", path);
      goto fail;
    }
    memcpy(c->id, p + 6, 32);
    c->id[32] = 0;
    pt__free(meta);
  } else {
    if ((rc = new_id(c->id, err)) != PT_OK) goto fail;
    char text[64];
    int n = snprintf(text, sizeof text, "{\"id\":\"%s\"}\n", c->id);
    if ((rc = pt__stream_write_durable(path, text, (size_t)n, err)) != PT_OK) goto fail;
  }
  return PT_OK;
fail:
  pt__ckpt_close(c);
  return rc;
}

void pt__ckpt_close(pt__ckpt *c) {
  if (c->lock_fd >= 0) close(c->lock_fd); /* releases the flock */
  c->lock_fd = -1;
  pt__free(c->dir);
  c->dir = NULL;
}

/* The highest decimal file name in dir (-1: none). */
static int max_entry(const char *dir, int64_t *out, pt_error *err) {
  *out = -1;
  DIR *d = opendir(dir);
  if (!d) return pt__errorf(err, PT_EIO, "stream: cannot open '%s': %s", dir, strerror(errno));
  struct dirent *e;
  while ((e = readdir(d))) {
    char *end;
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    long long v = strtoll(e->d_name, &end, 10);
    if (*end == 0 && v > *out) *out = v;
  }
  closedir(d);
  return PT_OK;
}

int pt__ckpt_last(const pt__ckpt *c, int64_t *batch, int *committed, pt_error *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/offsets", c->dir);
  PT_RETURN_NOT_OK(max_entry(path, batch, err));
  *committed = 0;
  if (*batch >= 0) {
    snprintf(path, sizeof path, "%s/commits/%" PRId64, c->dir, *batch);
    *committed = access(path, F_OK) == 0;
  }
  return PT_OK;
}

int pt__ckpt_read_offsets(const pt__ckpt *c, int64_t batch, char **start, char **end,
                          pt_error *err) {
  *start = *end = NULL;
  char path[4096];
  snprintf(path, sizeof path, "%s/offsets/%" PRId64, c->dir, batch);
  char *text;
  size_t len;
  PT_RETURN_NOT_OK(pt__stream_read_file(path, &text, &len, err));
  char *l1 = strchr(text, '\n'), *l2 = l1 ? strchr(l1 + 1, '\n') : NULL,
       *l3 = l2 ? strchr(l2 + 1, '\n') : NULL;
  if (strncmp(text, "v1\n", 3) != 0 || !l3 || l3[1] != 0 || l3 == l2 + 1) {
    pt__free(text);
    return pt__errorf(err, PT_EFORMAT,
                      "stream: offset log entry '%s' is damaged (expected v1, start and end "
                      "lines); restore it or start with a new checkpoint", path);
  }
  *l2 = *l3 = 0;
  int rc = PT_OK;
  if (l2 > l1 + 1 && !(*start = pt__strdup(l1 + 1))) rc = PT_ENOMEM;
  if (rc == PT_OK && !(*end = pt__strdup(l2 + 1))) rc = PT_ENOMEM;
  pt__free(text);
  if (rc != PT_OK) {
    pt__free(*start);
    *start = NULL;
    return pt__errorf(err, rc, "stream: out of memory");
  }
  return PT_OK;
}

int pt__ckpt_write_offsets(const pt__ckpt *c, int64_t batch, const char *start, const char *end,
                           pt_error *err) {
  if ((start && strchr(start, '\n')) || !end || !*end || strchr(end, '\n'))
    return pt__errorf(err, PT_EINVAL,
                      "stream: offsets must be one non-empty line of text (the source gave "
                      "'%.200s')", end ? end : "(null)");
  pt_buf b = {0};
  if (pt__buf_printf(&b, "v1\n%s\n%s\n", start ? start : "", end) != PT_OK) {
    pt_buf_free(&b);
    return pt__errorf(err, PT_ENOMEM, "stream: out of memory");
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/offsets/%" PRId64, c->dir, batch);
  int rc = pt__stream_write_durable(path, b.data, b.len, err);
  pt_buf_free(&b);
  return rc;
}

/* Not fsynced: two of them per batch were a continuous stream's longest
 * fixed wait after the job (~8 ms each on a busy disk), and no guarantee
 * rests on this entry surviving a machine crash. It is written after the
 * sink committed; if it is lost, the batch's offset entry (fsynced before
 * the batch ran) has no commit, so the batch runs again with the same
 * offsets and id, and sinks are idempotent per batch id (the Kafka sink
 * finds its marker, the directory sinks replace their files). A process
 * crash loses nothing here: the page cache outlives the process. */
int pt__ckpt_write_commit(const pt__ckpt *c, int64_t batch, pt_error *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/commits/%" PRId64, c->dir, batch);
  return write_file(path, "v1\n", 3, 0, err);
}

void pt__ckpt_purge(const pt__ckpt *c, int64_t keep_from) {
  const char *subs[] = {"offsets", "commits"};
  for (int i = 0; i < 2; i++) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", c->dir, subs[i]);
    DIR *d = opendir(dir);
    if (!d) continue;
    struct dirent *e;
    while ((e = readdir(d))) {
      char *end;
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      long long v = strtoll(e->d_name, &end, 10);
      if (*end == 0 && v < keep_from) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
      }
    }
    closedir(d);
  }
}
