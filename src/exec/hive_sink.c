/* hive_sink.c — the sink of pt_write_parquet with partition_by: a task
 * attempt writes, under its own directory, one Parquet file per combination
 * of the partition columns' values (k1=v1/k2=v2/part-NNNNN.parquet) without
 * those columns. The driver moves the files of the committed attempt into
 * place; a failed attempt's directory is removed whole.
 */
#include <stdio.h>
#include <string.h>

#include "arrow/kernels.h"
#include "exec/exec_int.h"
#include "parquet/parquet.h"

typedef struct hive_file {
  char *rel;             /* "k1=v1/k2=v2", escaped */
  uint64_t hash;         /* of rel */
  pt_parquet_writer *w;  /* open until the sink closes */
} hive_file;

struct pt__hive_sink {
  char *dir;                         /* the attempt's directory */
  long long partition;               /* names the files */
  pt_parquet_write_options opts;     /* for every file */
  const struct ArrowSchema *schema;  /* borrowed: the rows' schema */
  struct ArrowSchema file_schema;    /* the columns that are not keys */
  int *keys;                         /* child indices of the key columns */
  int n_keys;
  int *data;                         /* child indices of the others */
  int n_data;
  struct ArrowArray **view;          /* n_data: children of a file's batch */
  hive_file *files;
  int64_t n_files, cap_files;
  int64_t *table;                    /* open addressing: file index + 1, 0 empty */
  int64_t table_cap;                 /* a power of two, > 2 * n_files */
};

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h;
}

int pt__hive_sink_open(const char *dir, int64_t partition, const struct ArrowSchema *schema,
                       char *const *keys, size_t n_keys, const pt_parquet_write_options *opts,
                       pt__hive_sink **out, pt_error *err) {
  *out = NULL;
  pt__hive_sink *h = pt__calloc(1, sizeof *h);
  if (h == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  h->partition = (long long)partition;
  h->opts = *opts;
  h->opts.partition_by = NULL;
  h->opts.n_partition_by = 0;
  h->schema = schema;
  h->dir = pt__strdup(dir);
  h->keys = pt__calloc(n_keys + 1, sizeof *h->keys);
  h->data = pt__calloc((size_t)schema->n_children + 1, sizeof *h->data);
  h->view = pt__calloc((size_t)schema->n_children + 1, sizeof *h->view);
  int rc = PT_OK;
  if (h->dir == NULL || h->keys == NULL || h->data == NULL || h->view == NULL) {
    rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    goto fail;
  }
  for (size_t k = 0; k < n_keys; k++) {
    int64_t c = 0;
    while (c < schema->n_children &&
           (schema->children[c]->name == NULL || strcmp(schema->children[c]->name, keys[k]) != 0))
      c++;
    for (int j = 0; j < h->n_keys && c < schema->n_children; j++)
      if (h->keys[j] == (int)c) {
        rc = pt__errorf(err, PT_EINVAL, "partition column '%s' is named twice", keys[k]);
        goto fail;
      }
    if (c == schema->n_children) {
      rc = pt__errorf(err, PT_EINVAL, "partition column '%s' is not in the data", keys[k]);
      goto fail;
    }
    if (!pt__hive_key_supported(schema->children[c]->format)) {
      rc = pt__errorf(err, PT_ENOTSUP, "partition column '%s' has a type that cannot name a "
                      "directory", keys[k]);
      goto fail;
    }
    h->keys[h->n_keys++] = (int)c;
  }
  for (int64_t c = 0; c < schema->n_children; c++) {
    bool key = false;
    for (int k = 0; k < h->n_keys; k++) key = key || h->keys[k] == (int)c;
    if (!key) h->data[h->n_data++] = (int)c;
  }
  rc = pt_schema_init(&h->file_schema, "+s", "", 0, h->n_data, err);
  for (int j = 0; j < h->n_data && rc == PT_OK; j++)
    rc = pt_schema_copy(schema->children[h->data[j]], h->file_schema.children[j], err);
  /* The dataset schema's own metadata goes in each file's footer, as it
   * does without partition_by. */
  if (rc == PT_OK) rc = pt__hive_copy_metadata(schema, &h->file_schema, err);
  if (rc != PT_OK) goto fail;
  *out = h;
  return PT_OK;
fail:
  pt__hive_sink_free(h);
  return rc;
}

/* The index of the file for rel (opened on first sight). */
static int file_for(pt__hive_sink *h, const char *rel, size_t len, int64_t *out, pt_error *err) {
  uint64_t hash = hash_bytes(rel, len);
  if (h->table_cap <= 2 * h->n_files) {
    int64_t cap = h->table_cap ? h->table_cap * 2 : 16;
    int64_t *t = pt__calloc((size_t)cap, sizeof *t);
    if (t == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    for (int64_t f = 0; f < h->n_files; f++) {
      int64_t s = (int64_t)(h->files[f].hash & (uint64_t)(cap - 1));
      while (t[s] != 0) s = (s + 1) & (cap - 1);
      t[s] = f + 1;
    }
    pt__free(h->table);
    h->table = t;
    h->table_cap = cap;
  }
  int64_t s = (int64_t)(hash & (uint64_t)(h->table_cap - 1));
  for (; h->table[s] != 0; s = (s + 1) & (h->table_cap - 1)) {
    hive_file *f = &h->files[h->table[s] - 1];
    if (f->hash == hash && strlen(f->rel) == len && memcmp(f->rel, rel, len) == 0) {
      *out = h->table[s] - 1;
      return PT_OK;
    }
  }
  if (pt__grow((void **)&h->files, &h->cap_files, h->n_files + 1, sizeof *h->files) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  hive_file *f = &h->files[h->n_files];
  memset(f, 0, sizeof *f);
  f->rel = pt__malloc(len + 1);
  if (f->rel == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  memcpy(f->rel, rel, len);
  f->rel[len] = '\0';
  f->hash = hash;
  h->table[s] = ++h->n_files;
  size_t plen = strlen(h->dir) + len + 40;
  char *path = pt__malloc(plen);
  if (path == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  snprintf(path, plen, "%s/%s", h->dir, f->rel);
  int rc = pt__mkdirs(path, err);
  if (rc == PT_OK) {
    snprintf(path, plen, "%s/%s/part-%05lld.parquet", h->dir, f->rel, h->partition);
    rc = pt_parquet_writer_open_path(path, &h->file_schema, &h->opts, &f->w, err);
    if (rc != PT_OK) pt__error_prefix(err, rc, "write '%s': ", path);
  }
  pt__free(path);
  *out = h->n_files - 1;
  return rc;
}

/* Writes the data columns of rows (a struct array of the schema) to w. */
static int write_data(pt__hive_sink *h, pt_parquet_writer *w, const struct ArrowArray *rows,
                      pt_error *err) {
  for (int j = 0; j < h->n_data; j++) h->view[j] = rows->children[h->data[j]];
  struct ArrowArray view = *rows;
  view.n_children = h->n_data;
  view.children = h->view;
  view.dictionary = NULL;
  return pt_parquet_writer_write(w, &view, err);
}

int pt__hive_sink_write(pt__hive_sink *h, const struct ArrowArray *batch, pt_error *err) {
  int64_t len = batch->length;
  if (len == 0) return PT_OK;
  int rc = PT_OK;
  pt_buf rel = {0};
  int64_t *dest = pt__malloc((size_t)len * sizeof *dest);
  int64_t *idx = pt__malloc((size_t)len * sizeof *idx);
  int64_t *counts = NULL;
  struct ArrowArray taken = {0};
  if (dest == NULL || idx == NULL) {
    rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    goto done;
  }
  /* Each row's directory, and the file it goes to. */
  for (int64_t i = 0; i < len && rc == PT_OK; i++) {
    rel.len = 0;
    for (int k = 0; k < h->n_keys && rc == PT_OK; k++) {
      const struct ArrowSchema *ks = h->schema->children[h->keys[k]];
      if (k > 0) rc = pt__buf_append(&rel, "/", 1);
      if (rc == PT_OK) rc = pt__hive_escape(&rel, ks->name, strlen(ks->name));
      if (rc == PT_OK) rc = pt__buf_append(&rel, "=", 1);
      if (rc == PT_OK)
        rc = pt__hive_append_value(&rel, ks, batch->children[h->keys[k]], batch->offset + i);
    }
    if (rc != PT_OK) {
      rc = pt__errorf(err, rc, "partition_by: out of memory");
      break;
    }
    rc = file_for(h, (const char *)rel.data, rel.len, &dest[i], err);
  }
  if (rc != PT_OK) goto done;
  /* Rows grouped by file, in their order within each. */
  counts = pt__calloc((size_t)h->n_files + 1, sizeof *counts);
  if (counts == NULL) {
    rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    goto done;
  }
  for (int64_t i = 0; i < len; i++) counts[dest[i] + 1]++;
  for (int64_t f = 0; f < h->n_files; f++) counts[f + 1] += counts[f];
  for (int64_t i = 0; i < len; i++) idx[counts[dest[i]]++] = i;
  /* counts[f] is now the end of file f's rows; the start is counts[f - 1]. */
  for (int64_t f = 0, start = 0; f < h->n_files && rc == PT_OK; f++) {
    int64_t n = counts[f] - start;
    if (n == len) {
      rc = write_data(h, h->files[f].w, batch, err);
    } else if (n > 0) {
      rc = pt__array_take(h->schema, batch, idx + start, n, &taken, err);
      if (rc == PT_OK) {
        rc = write_data(h, h->files[f].w, &taken, err);
        taken.release(&taken);
      }
    }
    start = counts[f];
  }
done:
  pt_buf_free(&rel);
  pt__free(dest);
  pt__free(idx);
  pt__free(counts);
  return rc;
}

int pt__hive_sink_close(pt__hive_sink *h, pt_error *err) {
  int rc = PT_OK;
  for (int64_t f = 0; f < h->n_files; f++) {
    if (rc == PT_OK) rc = pt_parquet_writer_close(h->files[f].w, err);
    pt_parquet_writer_free(h->files[f].w);
    h->files[f].w = NULL;
  }
  return rc;
}

void pt__hive_sink_free(pt__hive_sink *h) {
  if (h == NULL) return;
  for (int64_t f = 0; f < h->n_files; f++) {
    pt_parquet_writer_free(h->files[f].w);
    pt__free(h->files[f].rel);
  }
  pt__free(h->files);
  pt__free(h->table);
  pt__free(h->keys);
  pt__free(h->data);
  pt__free(h->view);
  pt__free(h->dir);
  if (h->file_schema.release) h->file_schema.release(&h->file_schema);
  pt__free(h);
}
