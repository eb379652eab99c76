/* actions.c — the actions: each plans the dataset into a job, runs it on
 * the executors through the driver and waits. collect streams the result
 * files back (memory-mapped, zero-copy); write_ipc commits exactly one
 * attempt per partition by renaming, then marks the directory _SUCCESS.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "api/api_int.h"
#include "parquet/parquet.h"

/* ------------------------------------------------------------------------ */
/* collect */

typedef struct collect_stream {
  struct ArrowSchema schema;     /* owned */
  pt__job_result res;            /* the result files, in partition order */
  int64_t next;                  /* next partition to open */
  struct ArrowArrayStream inner; /* the open partition's reader (release NULL: none) */
  char *results_dir[2];          /* the job's on disk and in memory (NULL: none);
                                  * owned, removed on release */
  char error[PT_ERROR_SIZE];
} collect_stream;

static int cs_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  collect_stream *cs = s->private_data;
  pt_error err = {0};
  if (pt_schema_copy(&cs->schema, out, &err) != PT_OK) {
    snprintf(cs->error, sizeof cs->error, "%s", err.message);
    return ENOMEM;
  }
  return 0;
}

static int cs_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  collect_stream *cs = s->private_data;
  for (;;) {
    if (!cs->inner.release) {
      if (cs->next >= cs->res.n_partitions) {
        out->release = NULL; /* end of stream */
        return 0;
      }
      pt_error err = {0};
      const char *path = cs->res.paths[cs->next];
      if (pt_ipc_read_path(path, &cs->inner, &err) != PT_OK) {
        snprintf(cs->error, sizeof cs->error, "collect: partition %lld: %.900s",
                 (long long)cs->next, err.message);
        return EIO;
      }
      cs->next++;
    }
    int e = cs->inner.get_next(&cs->inner, out);
    if (e != 0) {
      const char *m = cs->inner.get_last_error(&cs->inner);
      snprintf(cs->error, sizeof cs->error, "collect: partition %lld: %.900s",
               (long long)cs->next - 1, m ? m : strerror(e));
      return e;
    }
    if (out->release) return 0;
    cs->inner.release(&cs->inner);
    cs->inner.release = NULL;
  }
}

static const char *cs_last_error(struct ArrowArrayStream *s) {
  collect_stream *cs = s->private_data;
  return cs->error[0] ? cs->error : NULL;
}

static void cs_release(struct ArrowArrayStream *s) {
  collect_stream *cs = s->private_data;
  if (cs->inner.release) cs->inner.release(&cs->inner);
  if (cs->schema.release) cs->schema.release(&cs->schema);
  /* mapped batches stay valid: unlinking a mapped file keeps its pages */
  for (int i = 0; i < 2; i++) {
    if (cs->results_dir[i]) pt__rm_rf(cs->results_dir[i]);
    pt__free(cs->results_dir[i]);
  }
  pt__job_result_reset(&cs->res);
  pt__free(cs);
  s->release = NULL;
}

/* <base>/<job>: where the job's result files may go (executors and the
 * driver pick one per file, pt__results_job_dir, and create it). */
static char *results_dir(const char *base, int64_t job_id) {
  size_t len = strlen(base) + 32;
  char *dir = pt__malloc(len);
  if (dir) snprintf(dir, len, "%s/%lld", base, (long long)job_id);
  return dir;
}

int pt_collect(pt_dataset *ds, struct ArrowArrayStream *out, pt_error *err) {
  if (!ds || !out) return pt__errorf(err, PT_EINVAL, "collect: dataset and out must not be NULL");
  out->release = NULL;
  collect_stream *cs = pt__calloc(1, sizeof *cs);
  if (!cs) return pt__errorf(err, PT_ENOMEM, "collect: out of memory");
  pt__action a = {.job_id = pt__driver_new_job_id(ds->driver), .sink = PT__SINK_RESULT};
  int rc = PT_OK;
  const char *mem = pt__driver_results_memory(ds->driver);
  cs->results_dir[0] = results_dir(pt__driver_results_disk(ds->driver), a.job_id);
  cs->results_dir[1] = mem ? results_dir(mem, a.job_id) : NULL;
  if (!cs->results_dir[0] || (mem && !cs->results_dir[1])) {
    rc = pt__errorf(err, PT_ENOMEM, "collect: out of memory");
    goto fail;
  }
  rc = pt_schema_copy(&ds->schema, &cs->schema, err);
  if (rc == PT_OK) {
    rc = pt__driver_run(ds->driver, ds, &a, &cs->res, err);
    pt__session_record_job(ds, &cs->res);
  }
  if (rc != PT_OK) goto fail;
  out->get_schema = cs_get_schema;
  out->get_next = cs_get_next;
  out->get_last_error = cs_last_error;
  out->release = cs_release;
  out->private_data = cs;
  return PT_OK;
fail:
  {
    struct ArrowArrayStream tmp = {.private_data = cs};
    cs_release(&tmp);
  }
  return rc;
}

int pt_count(pt_dataset *ds, int64_t *out, pt_error *err) {
  if (!ds || !out) return pt__errorf(err, PT_EINVAL, "count: dataset and out must not be NULL");
  pt__action a = {.job_id = pt__driver_new_job_id(ds->driver), .sink = PT__SINK_COUNT};
  pt__job_result res;
  int rc = pt__driver_run(ds->driver, ds, &a, &res, err);
  pt__session_record_job(ds, &res);
  if (rc != PT_OK) return rc;
  *out = res.count;
  pt__job_result_reset(&res);
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* write_ipc */

/* Attempts of a job still running when it ends (a failed job's other
 * partitions, a retried partition's duplicate) write into its temporary
 * directory; removing it under them would leave their files behind in the
 * user's directory. So wait for them first, this long at most (a task that
 * hangs, with no task.timeout, must not hang the call). */
#define ORPHAN_WAIT_MS 5000

/* 1 if dir exists and holds anything, 0 if empty or missing; -1 if it is
 * not a directory. */
static int dir_state(const char *dir, int *exists) {
  struct stat sb;
  *exists = 0;
  if (stat(dir, &sb) != 0) return 0;
  *exists = 1;
  if (!S_ISDIR(sb.st_mode)) return -1;
  DIR *d = opendir(dir);
  if (!d) return -1;
  struct dirent *e;
  int any = 0;
  while (!any && (e = readdir(d)))
    any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return any;
}

/* rename() that refuses to replace a file at to (appending must never
 * clobber an earlier write's file): a hard link, then the old name goes. */
static int move_new(const char *from, const char *to) {
  if (link(from, to) != 0) return -1;
  unlink(from);
  return 0;
}

/* Partitioned Parquet output: the files below an attempt's directory src
 * (rel: their path under it) moved to the same place under dst, a token
 * (appending) in their names. Each file moved is added to *moved (for
 * taking back). */
static int commit_tree(const char *src, const char *dst, const char *rel, const char *token,
                       char ***moved, int64_t *n_moved, int64_t *cap_moved, int depth,
                       pt_error *err) {
  char from[2 * PATH_MAX + 2], to[2 * PATH_MAX + 2];
  snprintf(from, sizeof from, "%s%s%s", src, *rel ? "/" : "", rel);
  DIR *d = opendir(from);
  if (!d) return pt__errorf(err, PT_EIO, "cannot open '%s': %s", from, strerror(errno));
  int rc = PT_OK;
  struct dirent *e;
  while (rc == PT_OK && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char sub[PATH_MAX];
    if (snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >= (int)sizeof sub) {
      rc = pt__errorf(err, PT_EINVAL, "path too long under '%s'", from);
      break;
    }
    snprintf(from, sizeof from, "%s/%s", src, sub);
    snprintf(to, sizeof to, "%s/%s", dst, sub);
    struct stat sb;
    if (lstat(from, &sb) != 0) {
      rc = pt__errorf(err, PT_EIO, "cannot stat '%s': %s", from, strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
      if (depth >= 64) rc = pt__errorf(err, PT_EINVAL, "'%s' nests too deep", from);
      else rc = pt__mkdirs(to, err);
      if (rc == PT_OK)
        rc = commit_tree(src, dst, sub, token, moved, n_moved, cap_moved, depth + 1, err);
    } else {
      /* Appending: the job's token in the name (part-NNNNN-TOKEN.parquet)
       * keeps it apart from the files already there. */
      size_t tl = strlen(to);
      if (token && tl > 8 && strcmp(to + tl - 8, ".parquet") == 0)
        snprintf(to + tl - 8, sizeof to - (tl - 8), "-%s.parquet", token);
      char *dup = pt__strdup(to);
      if (!dup || pt__grow((void **)moved, cap_moved, *n_moved + 1, sizeof **moved) != PT_OK) {
        pt__free(dup);
        rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      } else if (token ? move_new(from, to) != 0 : rename(from, to) != 0) {
        pt__free(dup);
        rc = pt__errorf(err, PT_EIO, "cannot move '%s' to '%s': %s", from, to, strerror(errno));
      } else {
        (*moved)[(*n_moved)++] = dup;
      }
    }
  }
  closedir(d);
  return rc;
}

/* Removes the empty directories below dir (not dir itself). */
static void remove_empty_dirs(const char *dir, int depth) {
  DIR *d = opendir(dir);
  if (!d || depth > 64) {
    if (d) closedir(d);
    return;
  }
  struct dirent *e;
  char path[PATH_MAX + 300];
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat sb;
    if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
      remove_empty_dirs(path, depth + 1);
      rmdir(path); /* fails, as it should, when not empty */
    }
  }
  closedir(d);
}

/* Overwriting: what dir held, moved aside into aside (one rename per
 * entry, the job's _temporary left) once the job has succeeded; put back
 * if the commit fails. Returns the entries moved (names in *names, the
 * caller frees) or -1 with err set. */
static int64_t move_aside(const char *dir, const char *aside, char ***names, pt_error *err) {
  *names = NULL;
  if (pt__mkdirs(aside, err) != PT_OK) return -1;
  DIR *d = opendir(dir);
  if (!d) {
    pt__errorf(err, PT_EIO, "cannot open '%s': %s", dir, strerror(errno));
    return -1;
  }
  int64_t n = 0, cap = 0;
  struct dirent *e;
  char from[PATH_MAX + 300], to[2 * PATH_MAX + 300];
  int rc = PT_OK;
  while (rc == PT_OK && (e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
        strcmp(e->d_name, "_temporary") == 0)
      continue;
    snprintf(from, sizeof from, "%s/%s", dir, e->d_name);
    snprintf(to, sizeof to, "%s/%s", aside, e->d_name);
    char *dup = pt__strdup(e->d_name);
    if (!dup || pt__grow((void **)names, &cap, n + 1, sizeof **names) != PT_OK) {
      pt__free(dup);
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    } else if (rename(from, to) != 0) {
      pt__free(dup);
      rc = pt__errorf(err, PT_EIO, "cannot move '%s' aside: %s", from, strerror(errno));
    } else {
      (*names)[n++] = dup;
    }
  }
  closedir(d);
  return rc == PT_OK ? n : -1 - n;
}

/* Undoes move_aside for its n entries, and frees names. */
static void move_back(const char *dir, const char *aside, char **names, int64_t n) {
  char from[2 * PATH_MAX + 300], to[PATH_MAX + 300];
  for (int64_t i = 0; i < n; i++) {
    snprintf(from, sizeof from, "%s/%s", aside, names[i]);
    snprintf(to, sizeof to, "%s/%s", dir, names[i]);
    (void)rename(from, to);
    pt__free(names[i]);
  }
  pt__free(names);
}

/* write_ipc, write_parquet and write_csv: one file per partition (ext),
 * committed exactly once. a: the action with its sink options (job id and
 * temporary directory filled in here). mode (pt_write_mode): what a
 * directory that is not empty means. */
static int write_dir(pt_dataset *ds, const char *dir, pt__action *ap, const char *what,
                     const char *ext, int mode, pt_error *err) {
  if (!ds || !dir || !*dir)
    return pt__errorf(err, PT_EINVAL, "%s: dataset and dir must be given", what);
  int exists;
  int st = dir_state(dir, &exists);
  if (st < 0)
    return pt__errorf(err, PT_EINVAL, "%s: '%s' exists and is not a directory", what, dir);
  if (st > 0 && mode == PT_WRITE_IGNORE) return PT_OK;
  if (st > 0 && mode != PT_WRITE_APPEND && mode != PT_WRITE_OVERWRITE)
    return pt__errorf(err, PT_EINVAL,
                      "%s: directory '%s' is not empty; write to a new directory or empty "
                      "it first", what, dir);
  PT_RETURN_NOT_OK(pt__mkdirs(dir, err));
  int rc = PT_OK;
  char absdir[PATH_MAX];
  if (!realpath(dir, absdir)) {
    rc = pt__errorf(err, PT_EIO, "%s: '%s': %s", what, dir, strerror(errno));
    goto remove_dir;
  }
  pt__action a = *ap;
  a.job_id = pt__driver_new_job_id(ds->driver);
  a.sink = PT__SINK_IPC;
  char temp_root[PATH_MAX + 32], temp[PATH_MAX + 64], path[PATH_MAX + 160];
  snprintf(temp_root, sizeof temp_root, "%s/_temporary", absdir);
  snprintf(temp, sizeof temp, "%s/%lld", temp_root, (long long)a.job_id);
  a.ipc_temp_dir = temp;
  rc = pt__mkdirs(temp, err);
  if (rc != PT_OK) goto remove_temp;
  pt__job_result res;
  rc = pt__driver_run(ds->driver, ds, &a, &res, err);
  pt__session_record_job(ds, &res);
  if (rc != PT_OK) goto remove_temp;

  /* Every partition's file must be visible here before any is moved: an
   * executor on another host writes to its own filesystem, and a directory
   * the hosts do not share would commit some partitions and not others. */
  for (int64_t q = 0; q < res.n_partitions; q++) {
    struct stat sb;
    if (stat(res.paths[q], &sb) == 0) continue;
    rc = pt__errorf(err, PT_EIO, "%s: partition %lld was written by its executor to '%s', which "
                    "the driver cannot see (%s): with executors on other hosts, the output "
                    "directory must be on a filesystem they share with the driver (NFS, "
                    "Lustre...); nothing was committed", what, (long long)q, res.paths[q],
                    strerror(errno));
    pt__job_result_reset(&res);
    goto remove_temp;
  }

  /* Overwriting: the old contents go aside only now that the job has
   * succeeded, and come back if the commit fails. */
  char aside[PATH_MAX + 96];
  snprintf(aside, sizeof aside, "%s/old", temp);
  char **aside_names = NULL;
  int64_t n_aside = 0;
  if (mode == PT_WRITE_OVERWRITE && st > 0) {
    n_aside = move_aside(absdir, aside, &aside_names, err);
    if (n_aside < 0) {
      move_back(absdir, aside, aside_names, -1 - n_aside);
      pt__error_prefix(err, err ? err->code : PT_EIO, "%s: ", what);
      rc = err ? err->code : PT_EIO;
      pt__job_result_reset(&res);
      goto remove_temp;
    }
  }
  /* Appending: a token unique to this write in the file names. */
  char token[48] = "";
  if (mode == PT_WRITE_APPEND) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(token, sizeof token, "%llx%09ld-%d-%lld", (long long)ts.tv_sec, (long)ts.tv_nsec,
             (int)getpid(), (long long)a.job_id);
  }

  /* Commit: one rename per partition (the first successful attempt), then
   * _SUCCESS. A rename failing part-way takes back what was renamed.
   * Partitioned Parquet: every file of each partition's attempt directory. */
  int64_t p = 0;
  char **moved = NULL;
  int64_t n_moved = 0, cap_moved = 0;
  for (; p < res.n_partitions && a.parquet_n_partition_by > 0; p++) {
    rc = commit_tree(res.paths[p], absdir, "", token[0] ? token : NULL, &moved, &n_moved,
                     &cap_moved, 0, err);
    if (rc != PT_OK) {
      pt__error_prefix(err, rc, "%s: cannot commit partition %lld: ", what, (long long)p);
      break;
    }
  }
  for (; p < res.n_partitions; p++) {
    if (token[0]) snprintf(path, sizeof path, "%s/part-%05lld-%s.%s", absdir, (long long)p, token, ext);
    else snprintf(path, sizeof path, "%s/part-%05lld.%s", absdir, (long long)p, ext);
    if (token[0] ? move_new(res.paths[p], path) != 0 : rename(res.paths[p], path) != 0) {
      rc = pt__errorf(err, PT_EIO, "%s: cannot commit partition %lld ('%s' to '%s'): %s", what,
                      (long long)p, res.paths[p], path, strerror(errno));
      break;
    }
  }
  if (rc == PT_OK) {
    snprintf(path, sizeof path, "%s/_SUCCESS", absdir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) rc = pt__errorf(err, PT_EIO, "%s: cannot create '%s': %s", what, path,
                                strerror(errno));
    else close(fd);
  }
  if (rc != PT_OK && a.parquet_n_partition_by > 0) {
    for (int64_t i = 0; i < n_moved; i++) unlink(moved[i]);
    remove_empty_dirs(absdir, 0);
  } else if (rc != PT_OK) {
    while (p-- > 0) {
      if (token[0]) snprintf(path, sizeof path, "%s/part-%05lld-%s.%s", absdir, (long long)p, token, ext);
      else snprintf(path, sizeof path, "%s/part-%05lld.%s", absdir, (long long)p, ext);
      unlink(path);
    }
  }
  if (rc != PT_OK) move_back(absdir, aside, aside_names, n_aside);
  else {
    for (int64_t i = 0; i < n_aside; i++) pt__free(aside_names[i]);
    pt__free(aside_names);
  }
  for (int64_t i = 0; i < n_moved; i++) pt__free(moved[i]);
  pt__free(moved);
  pt__job_result_reset(&res);
  (void)pt__driver_quiesce(ds->driver, a.job_id, ORPHAN_WAIT_MS);
  pt__rm_rf(temp_root);
  if (rc == PT_OK) return PT_OK;
  goto remove_dir;

remove_temp:
  (void)pt__driver_quiesce(ds->driver, a.job_id, ORPHAN_WAIT_MS);
  pt__rm_rf(temp_root);
remove_dir:
  if (!exists) rmdir(dir);
  return rc;
}

int pt_write_ipc(pt_dataset *ds, const char *dir, const pt_ipc_write_options *opts,
                 pt_error *err) {
  pt__action a = {0};
  a.ipc_format = opts ? (int)opts->format : PT_IPC_FILE;
  a.ipc_compression = opts ? (int)opts->compression : PT_COMPRESSION_NONE;
  return write_dir(ds, dir, &a, "write_ipc", "arrow", PT_WRITE_ERROR, err);
}

int pt_write_parquet(pt_dataset *ds, const char *dir, const pt_parquet_write_options *opts,
                     pt_error *err) {
  pt_parquet_write_options o;
  pt_parquet_write_options_init(&o);
  if (opts) o = *opts;
  /* What the executors' writers will be given; checked here so that a bad
   * option fails before any task runs. */
  if (o.row_group_rows <= 0 || (o.data_page_version != 1 && o.data_page_version != 2))
    return pt__errorf(err, PT_EINVAL,
                      "write_parquet: row_group_rows must be positive and data_page_version 1 or 2");
  if (o.codec != PT_PARQUET_UNCOMPRESSED && o.codec != PT_PARQUET_SNAPPY &&
      o.codec != PT_PARQUET_GZIP && o.codec != PT_PARQUET_BROTLI && o.codec != PT_PARQUET_ZSTD &&
      o.codec != PT_PARQUET_LZ4_RAW)
    return pt__errorf(err, PT_EINVAL, "write_parquet: unknown codec %d", o.codec);
  if (o.page_bytes <= 0 || o.dictionary_page_bytes <= 0)
    return pt__errorf(err, PT_EINVAL,
                      "write_parquet: page_bytes and dictionary_page_bytes must be positive");
  if (o.n_partition_by < 0 || (o.n_partition_by > 0 && !o.partition_by))
    return pt__errorf(err, PT_EINVAL, "write_parquet: partition_by must list n_partition_by names");
  if (o.mode < PT_WRITE_ERROR || o.mode > PT_WRITE_IGNORE)
    return pt__errorf(err, PT_EINVAL, "write_parquet: unknown mode %d; use PT_WRITE_ERROR, "
                      "_APPEND, _OVERWRITE or _IGNORE", o.mode);
  if (o.n_metadata < 0 || (o.n_metadata > 0 && !o.metadata_keys))
    return pt__errorf(err, PT_EINVAL, "write_parquet: metadata_keys must list n_metadata keys");
  for (int64_t j = 0; j < o.n_metadata; j++)
    if (!o.metadata_keys[j] || strcmp(o.metadata_keys[j], "ARROW:schema") == 0)
      return pt__errorf(err, PT_EINVAL, "write_parquet: metadata key %lld is NULL or "
                        "ARROW:schema (the writer's own); give other keys", (long long)j);
  /* A write's own threads option above 1 wins over the session's key. */
  int64_t threads = o.threads > 1 ? o.threads
                    : ds && ds->session ? pt__conf_int(ds->session->conf, "parquet.write.threads")
                                        : 1;
  if (o.threads < 0 || threads > 16)
    return pt__errorf(err, PT_EINVAL,
                      "write_parquet: %lld encoding threads asked for (threads or "
                      "parquet.write.threads); give 1 to 16",
                      (long long)(o.threads < 0 ? o.threads : threads));
  if (o.n_partition_by > 0 && ds) {
    /* Checked here so that a wrong name fails before any task runs. */
    const struct ArrowSchema *sc = &ds->schema;
    for (int64_t k = 0; k < o.n_partition_by; k++) {
      const char *key = o.partition_by[k];
      int64_t c = 0;
      while (key && c < sc->n_children &&
             (!sc->children[c]->name || strcmp(sc->children[c]->name, key) != 0))
        c++;
      if (!key || c == sc->n_children)
        return pt__errorf(err, PT_EINVAL, "write_parquet: partition_by column '%s' is not a "
                          "column of the dataset", key ? key : "(null)");
      for (int64_t j = 0; j < k; j++)
        if (strcmp(o.partition_by[j], key) == 0)
          return pt__errorf(err, PT_EINVAL, "write_parquet: partition_by names '%s' twice", key);
      if (!pt__hive_key_supported(sc->children[c]->format)) {
        char t[256];
        pt_type_name(sc->children[c], t, sizeof t);
        return pt__errorf(err, PT_EINVAL,
                          "write_parquet: cannot partition by column '%s' of type %s; partition "
                          "by boolean, integer, float, decimal, string, binary, date32 or "
                          "timestamp columns", key, t);
      }
    }
    if (o.n_partition_by >= sc->n_children)
      return pt__errorf(err, PT_EINVAL,
                        "write_parquet: partition_by names every column; the files need at "
                        "least one column that is not a partition column");
  }
  pt__action a = {0};
  a.parquet = 1;
  a.parquet_codec = o.codec;
  a.parquet_compression_level = o.compression_level;
  a.parquet_row_group_rows = o.row_group_rows;
  a.parquet_page_version = o.data_page_version;
  a.parquet_page_bytes = o.page_bytes;
  a.parquet_dictionary_page_bytes = o.dictionary_page_bytes;
  a.parquet_no_dictionary = !o.use_dictionary;
  a.parquet_no_statistics = !o.write_statistics;
  a.parquet_threads = (int)threads;
  a.parquet_partition_by = (char *const *)o.partition_by;
  a.parquet_n_partition_by = o.n_partition_by;
  /* Protobuf strings cannot be NULL: missing values are "". */
  char **values = NULL; /* owned; the strings are the caller's */
  if (o.n_metadata > 0) {
    values = pt__calloc((size_t)o.n_metadata, sizeof *values);
    if (!values) return pt__errorf(err, PT_ENOMEM, "write_parquet: out of memory");
    for (int64_t j = 0; j < o.n_metadata; j++)
      values[j] = (char *)(o.metadata_values && o.metadata_values[j] ? o.metadata_values[j] : "");
  }
  a.parquet_metadata_keys = (char *const *)o.metadata_keys;
  a.parquet_metadata_values = values;
  a.parquet_n_metadata = o.n_metadata;
  int rc = write_dir(ds, dir, &a, "write_parquet", "parquet", o.mode, err);
  pt__free(values);
  return rc;
}

void pt_csv_write_options_init(pt_csv_write_options *opts) {
  memset(opts, 0, sizeof *opts);
  opts->header = 1;
  opts->delimiter = ',';
}

int pt_write_csv(pt_dataset *ds, const char *dir, const pt_csv_write_options *opts,
                 pt_error *err) {
  pt_csv_write_options o;
  pt_csv_write_options_init(&o);
  if (opts) o = *opts;
  if (!ds) return pt__errorf(err, PT_EINVAL, "write_csv: dataset and dir must be given");
  /* The executors' writer refuses columns CSV cannot hold; asking it with no
   * rows here fails the call before any task runs. */
  pt_builder *b;
  PT_RETURN_NOT_OK(pt_builder_new(&ds->schema, &b, err));
  struct ArrowArray empty;
  int rc = pt_builder_finish(b, &empty, err);
  pt_builder_free(b);
  if (rc != PT_OK) return rc;
  pt_buf probe = {0};
  rc = pt_csv_write_batch(&ds->schema, &empty, 1, o.delimiter, &probe, err);
  pt_buf_free(&probe);
  empty.release(&empty);
  if (rc != PT_OK) return pt__error_prefix(err, rc, "write_csv: ");
  pt__action a = {0};
  a.csv = 1;
  a.csv_header = o.header != 0;
  a.csv_delimiter = o.delimiter;
  return write_dir(ds, dir, &a, "write_csv", "csv", PT_WRITE_ERROR, err);
}
