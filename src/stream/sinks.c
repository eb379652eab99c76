/* sinks.c — the directory sinks of a streaming query (IPC and Parquet).
 * A batch is written with the engine's exactly-once output into
 * dir/_staging/<batch>, then its part files are renamed into dir as
 * part-<batch, 10 digits>-<partition>.<ext>, after removing any file of
 * the same batch an interrupted commit left: a rerun replaces, never adds.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream/stream_int.h"

typedef struct dir_sink {
  char *dir;                        /* owned */
  int parquet;
  pt_ipc_write_options ipc;
  pt_parquet_write_options pq;
  int has_pq;                       /* pq set by the caller */
} dir_sink;

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Rows the sink's job wrote: its last stage's rows_written. */
static int64_t job_rows(pt_dataset *ds) {
  pt_job_stats *st;
  if (pt_dataset_last_job(ds, &st, NULL) != PT_OK) return -1;
  int64_t rows = 0;
  if (st->n_stages > 0) {
    int64_t last = st->stages[st->n_stages - 1].stage_id;
    for (int64_t i = 0; i < st->n_stages; i++)
      if (st->stages[i].stage_id == last) rows += st->stages[i].rows_written;
  }
  pt_job_stats_free(st);
  return rows;
}

/* Removes dir's files whose name starts with prefix. */
static int remove_prefixed(const char *dir, const char *prefix, pt_error *err) {
  DIR *d = opendir(dir);
  if (!d) return pt__errorf(err, PT_EIO, "stream sink: cannot open '%s': %s", dir, strerror(errno));
  size_t n = strlen(prefix);
  struct dirent *e;
  int rc = PT_OK;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, prefix, n) != 0) continue;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (unlink(path) != 0 && errno != ENOENT) {
      rc = pt__errorf(err, PT_EIO, "stream sink: cannot remove '%s': %s", path, strerror(errno));
      break;
    }
  }
  closedir(d);
  return rc;
}

static int dir_write(void *state, pt_dataset *ds, int64_t batch_id, int64_t *rows, pt_error *err) {
  dir_sink *k = state;
  const char *ext = k->parquet ? ".parquet" : ".arrow";
  char staging[PATH_MAX], prefix[64];
  snprintf(staging, sizeof staging, "%s/_staging/%" PRId64, k->dir, batch_id);
  snprintf(prefix, sizeof prefix, "part-%010" PRId64 "-", batch_id);
  *rows = -1;
  int rc = PT_OK;
  char **names = NULL;
  int64_t n = 0, cap = 0;
  if (pt__rm_rf(staging) != PT_OK) {
    rc = pt__errorf(err, PT_EIO, "stream sink: cannot clear '%s'", staging);
    goto done;
  }
  rc = k->parquet ? pt_write_parquet(ds, staging, k->has_pq ? &k->pq : NULL, err)
                  : pt_write_ipc(ds, staging, &k->ipc, err);
  if (rc != PT_OK) goto done;
  *rows = job_rows(ds);
  DIR *d = opendir(staging);
  if (!d) {
    rc = pt__errorf(err, PT_EIO, "stream sink: cannot open '%s': %s", staging, strerror(errno));
    goto done;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name), x = strlen(ext);
    if (strncmp(e->d_name, "part-", 5) != 0 || l < x || strcmp(e->d_name + l - x, ext) != 0)
      continue;
    char *dup = pt__strdup(e->d_name);
    if (!dup || pt__grow((void **)&names, &cap, n + 1, sizeof *names) != PT_OK) {
      pt__free(dup);
      rc = pt__errorf(err, PT_ENOMEM, "stream sink: out of memory");
      break;
    }
    names[n++] = dup;
  }
  closedir(d);
  if (rc != PT_OK) goto done;
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  /* An interrupted commit of this batch may have moved some of its parts. */
  if ((rc = remove_prefixed(k->dir, prefix, err)) != PT_OK) goto done;
  for (int64_t i = 0; i < n && rc == PT_OK; i++) {
    char from[PATH_MAX], to[PATH_MAX];
    /* "part-00003.arrow" -> "part-<batch>-00003.arrow" */
    if (snprintf(from, sizeof from, "%s/%s", staging, names[i]) >= (int)sizeof from ||
        snprintf(to, sizeof to, "%s/%s%s", k->dir, prefix, names[i] + 5) >= (int)sizeof to)
      rc = pt__errorf(err, PT_EINVAL, "stream sink: path in '%s' too long", k->dir);
    else if (rename(from, to) != 0)
      rc = pt__errorf(err, PT_EIO, "stream sink: cannot rename '%s' to '%s': %s", from, to,
                      strerror(errno));
  }
  if (rc == PT_OK) rc = pt__stream_fsync_dir(k->dir, err);
done:
  pt__rm_rf(staging);
  for (int64_t i = 0; i < n; i++) pt__free(names[i]);
  pt__free(names);
  pt_dataset_free(ds);
  if (rc != PT_OK) pt__error_prefix(err, rc, "stream sink '%s', batch %" PRId64 ": ", k->dir, batch_id);
  return rc;
}

static void dir_free(void *state) {
  dir_sink *k = state;
  if (!k) return;
  pt__free(k->dir);
  pt__free(k);
}

static int dir_sink_new(const char *dir, int parquet, pt_stream_sink *out, dir_sink **k,
                        pt_error *err) {
  if (!out) return pt__errorf(err, PT_EINVAL, "stream sink: out must not be NULL");
  memset(out, 0, sizeof *out);
  if (!dir || !*dir) return pt__errorf(err, PT_EINVAL, "stream sink: a directory is required");
  PT_RETURN_NOT_OK(pt__mkdirs(dir, err));
  *k = pt__calloc(1, sizeof **k);
  char real[PATH_MAX];
  if (!*k || !((*k)->dir = pt__strdup(realpath(dir, real) ? real : dir))) {
    pt__free(*k);
    return pt__errorf(err, PT_ENOMEM, "stream sink: out of memory");
  }
  (*k)->parquet = parquet;
  *out = (pt_stream_sink){.name = parquet ? "parquet" : "ipc", .state = *k,
                          .write_batch = dir_write, .free = dir_free};
  return PT_OK;
}

int pt_stream_ipc_sink(const char *dir, const pt_ipc_write_options *opts, pt_stream_sink *out,
                       pt_error *err) {
  dir_sink *k;
  PT_RETURN_NOT_OK(dir_sink_new(dir, 0, out, &k, err));
  if (opts) {
    k->ipc = *opts;
  } else {
    pt_ipc_write_options_init(&k->ipc);
    k->ipc.format = PT_IPC_FILE;
  }
  return PT_OK;
}

int pt_stream_parquet_sink(const char *dir, const pt_parquet_write_options *opts,
                           pt_stream_sink *out, pt_error *err) {
  dir_sink *k;
  PT_RETURN_NOT_OK(dir_sink_new(dir, 1, out, &k, err));
  if (opts) {
    k->pq = *opts;
    k->has_pq = 1;
  }
  return PT_OK;
}
