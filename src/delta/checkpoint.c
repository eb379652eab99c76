/* checkpoint.c — writing a table's state at a version as a Parquet
 * checkpoint (one row per action: protocol, metaData, then an add per
 * active file) and pointing _last_checkpoint at it, so that readers
 * replay from there instead of from version 0. Both files are written
 * under temporary names and renamed into place: a reader sees a whole
 * checkpoint or none.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delta/delta.h"

#define DEFAULT_INTERVAL 10

/* The columns of a checkpoint, in Delta's own type syntax (what
 * pt__delta_schema_to_arrow turns into the Arrow schema written). Field
 * order matters: the code below fills the children by index. */
#define F(name, type) "{\"name\":\"" name "\",\"type\":" type ",\"nullable\":true,\"metadata\":{}}"
#define STRUCT(...) "{\"type\":\"struct\",\"fields\":[" __VA_ARGS__ "]}"
#define SMAP "{\"type\":\"map\",\"keyType\":\"string\",\"valueType\":\"string\",\"valueContainsNull\":true}"
#define SLIST "{\"type\":\"array\",\"elementType\":\"string\",\"containsNull\":true}"
static const char CHECKPOINT_SCHEMA[] = STRUCT(
    F("add", STRUCT(F("path", "\"string\"") "," F("partitionValues", SMAP) "," F("size", "\"long\"") ","
                    F("modificationTime", "\"long\"") "," F("dataChange", "\"boolean\"") ","
                    F("stats", "\"string\""))) ","
    F("remove", STRUCT(F("path", "\"string\"") "," F("deletionTimestamp", "\"long\"") ","
                       F("dataChange", "\"boolean\""))) ","
    F("metaData", STRUCT(F("id", "\"string\"") "," F("name", "\"string\"") ","
                         F("description", "\"string\"") ","
                         F("format", STRUCT(F("provider", "\"string\"") "," F("options", SMAP))) ","
                         F("schemaString", "\"string\"") "," F("partitionColumns", SLIST) ","
                         F("configuration", SMAP) "," F("createdTime", "\"long\""))) ","
    F("protocol", STRUCT(F("minReaderVersion", "\"integer\"") "," F("minWriterVersion", "\"integer\"") ","
                         F("readerFeatures", SLIST) "," F("writerFeatures", SLIST))));
enum { COL_ADD, COL_REMOVE, COL_META, COL_PROTOCOL, N_COLS };

int64_t pt__delta_checkpoint_interval(const pt__delta_snapshot *s) {
  for (int64_t k = 0; k < s->n_config; k++)
    if (strcmp(s->config_keys[k], "delta.checkpointInterval") == 0 && s->config_values[k]) {
      char *end;
      long long v = strtoll(s->config_values[k], &end, 10);
      if (*end == '\0' && v > 0) return v;
    }
  return DEFAULT_INTERVAL;
}

static int put_str(pt_builder *b, const char *s) {
  return s ? pt_builder_append_bytes(b, s, (int64_t)strlen(s)) : pt_builder_append_null(b, 1);
}

/* One map<string, string> row of n pairs (values may be NULL). */
static int put_map(pt_builder *b, char *const *keys, char *const *vals, int64_t n) {
  pt_builder *e = pt_builder_child(b, 0);
  for (int64_t i = 0; i < n; i++) {
    PT_RETURN_NOT_OK(put_str(pt_builder_child(e, 0), keys[i]));
    PT_RETURN_NOT_OK(put_str(pt_builder_child(e, 1), vals ? vals[i] : NULL));
    PT_RETURN_NOT_OK(pt_builder_append_row(e));
  }
  return pt_builder_append_row(b);
}

static int put_list(pt_builder *b, char *const *items, int64_t n) {
  for (int64_t i = 0; i < n; i++) PT_RETURN_NOT_OK(put_str(pt_builder_child(b, 0), items[i]));
  return pt_builder_append_row(b);
}

/* Closes a row whose action is column `col`: the other columns null. */
static int close_row(pt_builder *root, int col) {
  for (int c = 0; c < N_COLS; c++) {
    pt_builder *b = pt_builder_child(root, c);
    PT_RETURN_NOT_OK(c == col ? pt_builder_append_row(b) : pt_builder_append_null(b, 1));
  }
  return pt_builder_append_row(root);
}

static int build_rows(pt_builder *root, const pt__delta_snapshot *s) {
  pt_builder *p = pt_builder_child(root, COL_PROTOCOL);
  PT_RETURN_NOT_OK(pt_builder_append_int(pt_builder_child(p, 0), s->min_reader));
  PT_RETURN_NOT_OK(pt_builder_append_int(pt_builder_child(p, 1), s->min_writer));
  /* Feature lists only where the versions have them (reader 3, writer 7). */
  if (s->min_reader >= 3) PT_RETURN_NOT_OK(put_list(pt_builder_child(p, 2), s->reader_features, s->n_reader_features));
  else PT_RETURN_NOT_OK(pt_builder_append_null(pt_builder_child(p, 2), 1));
  if (s->min_writer >= 7) PT_RETURN_NOT_OK(put_list(pt_builder_child(p, 3), s->writer_features, s->n_writer_features));
  else PT_RETURN_NOT_OK(pt_builder_append_null(pt_builder_child(p, 3), 1));
  PT_RETURN_NOT_OK(close_row(root, COL_PROTOCOL));

  pt_builder *m = pt_builder_child(root, COL_META);
  PT_RETURN_NOT_OK(put_str(pt_builder_child(m, 0), s->table_id));
  PT_RETURN_NOT_OK(pt_builder_append_null(pt_builder_child(m, 1), 1));
  PT_RETURN_NOT_OK(pt_builder_append_null(pt_builder_child(m, 2), 1));
  pt_builder *fmt = pt_builder_child(m, 3);
  PT_RETURN_NOT_OK(put_str(pt_builder_child(fmt, 0), "parquet"));
  PT_RETURN_NOT_OK(put_map(pt_builder_child(fmt, 1), NULL, NULL, 0));
  PT_RETURN_NOT_OK(pt_builder_append_row(fmt));
  PT_RETURN_NOT_OK(put_str(pt_builder_child(m, 4), s->schema_string));
  PT_RETURN_NOT_OK(put_list(pt_builder_child(m, 5), s->partition_columns, s->n_partition_columns));
  PT_RETURN_NOT_OK(put_map(pt_builder_child(m, 6), s->config_keys, s->config_values, s->n_config));
  if (s->created_time >= 0) PT_RETURN_NOT_OK(pt_builder_append_int(pt_builder_child(m, 7), s->created_time));
  else PT_RETURN_NOT_OK(pt_builder_append_null(pt_builder_child(m, 7), 1));
  PT_RETURN_NOT_OK(close_row(root, COL_META));

  pt_builder *a = pt_builder_child(root, COL_ADD);
  for (int64_t i = 0; i < s->n_files; i++) {
    const pt__delta_file *f = &s->files[i];
    PT_RETURN_NOT_OK(put_str(pt_builder_child(a, 0), f->path));
    PT_RETURN_NOT_OK(put_map(pt_builder_child(a, 1), s->partition_columns, f->values,
                             s->n_partition_columns));
    PT_RETURN_NOT_OK(pt_builder_append_int(pt_builder_child(a, 2), f->size > 0 ? f->size : 0));
    PT_RETURN_NOT_OK(pt_builder_append_int(pt_builder_child(a, 3), f->mtime));
    PT_RETURN_NOT_OK(pt_builder_append_int(pt_builder_child(a, 4), 0)); /* state, not a change */
    PT_RETURN_NOT_OK(put_str(pt_builder_child(a, 5), f->stats));
    PT_RETURN_NOT_OK(close_row(root, COL_ADD));
  }
  return PT_OK;
}

/* Writes text to dir/name through a temporary file renamed into place. */
static int write_small(const char *dir, const char *name, const pt_buf *text, pt_error *err) {
  char tmp[PATH_MAX + 96], final[PATH_MAX + 64];
  snprintf(final, sizeof final, "%s/%s", dir, name);
  snprintf(tmp, sizeof tmp, "%s/.%s.%ld.tmp", dir, name, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return pt__errorf(err, PT_EIO, "cannot create '%s': %s", tmp, strerror(errno));
  size_t done = 0;
  while (done < text->len) {
    ssize_t n = write(fd, text->data + done, text->len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += (size_t)n;
  }
  int rc = PT_OK;
  if (done != text->len || fsync(fd) != 0)
    rc = pt__errorf(err, PT_EIO, "cannot write '%s': %s", tmp, strerror(errno));
  close(fd);
  if (rc == PT_OK && rename(tmp, final) != 0)
    rc = pt__errorf(err, PT_EIO, "cannot rename '%s' to '%s': %s", tmp, final, strerror(errno));
  if (rc != PT_OK) unlink(tmp);
  return rc;
}

int pt__delta_checkpoint_write(const char *table, const pt__delta_snapshot *s, pt_error *err) {
  if (s->has_txn)
    return pt__errorf(err, PT_ENOTSUP, "the log holds txn or domainMetadata actions, which "
                      "protium's checkpoints do not carry; no checkpoint written");
  char log[PATH_MAX], name[64], tmp[PATH_MAX + 96], final[PATH_MAX + 64];
  if (snprintf(log, sizeof log, "%s/_delta_log", table) >= (int)sizeof log)
    return pt__errorf(err, PT_EINVAL, "path too long: '%s'", table);
  snprintf(name, sizeof name, "%020lld.checkpoint.parquet", (long long)s->version);
  snprintf(final, sizeof final, "%s/%s", log, name);
  snprintf(tmp, sizeof tmp, "%s/.%s.%ld.tmp", log, name, (long)getpid());
  struct ArrowSchema schema = {0};
  struct ArrowArray batch = {0};
  pt_builder *root = NULL;
  pt_parquet_writer *w = NULL;
  int rc = pt__delta_schema_to_arrow(CHECKPOINT_SCHEMA, &schema, err);
  if (rc == PT_OK) rc = pt_builder_new(&schema, &root, err);
  if (rc == PT_OK && build_rows(root, s) != PT_OK)
    rc = pt__errorf(err, PT_ENOMEM, "checkpoint: %s", pt_builder_last_error(root));
  if (rc == PT_OK) rc = pt_builder_finish(root, &batch, err);
  pt_parquet_write_options po;
  pt_parquet_write_options_init(&po);
  po.store_arrow_schema = 0; /* a Delta file: its types are the protocol's */
  if (rc == PT_OK) rc = pt_parquet_writer_open_path(tmp, &schema, &po, &w, err);
  if (rc == PT_OK) rc = pt_parquet_writer_write(w, &batch, err);
  if (rc == PT_OK) rc = pt_parquet_writer_close(w, err);
  if (w) pt_parquet_writer_free(w);
  if (rc == PT_OK) {
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
      rc = pt__errorf(err, PT_EIO, "cannot sync '%s': %s", tmp, strerror(errno));
    if (fd >= 0) close(fd);
  }
  if (rc == PT_OK && rename(tmp, final) != 0)
    rc = pt__errorf(err, PT_EIO, "cannot rename '%s' to '%s': %s", tmp, final, strerror(errno));
  if (rc != PT_OK) unlink(tmp);
  /* _last_checkpoint only once the checkpoint is whole. */
  pt_buf last = {0};
  if (rc == PT_OK &&
      pt__buf_printf(&last, "{\"version\":%lld,\"size\":%lld}\n", (long long)s->version,
                     (long long)(s->n_files + 2)) != PT_OK)
    rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  if (rc == PT_OK) rc = write_small(log, "_last_checkpoint", &last, err);
  pt_buf_free(&last);
  if (batch.release) batch.release(&batch);
  pt_builder_free(root);
  if (schema.release) schema.release(&schema);
  if (rc != PT_OK) pt__error_prefix(err, rc, "checkpoint of version %lld: ", (long long)s->version);
  return rc;
}
