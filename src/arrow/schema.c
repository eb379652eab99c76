/* schema.c — ArrowSchema trees that protium owns: built node by node
 * (pt_schema_init, then children), made dictionary-encoded, given metadata,
 * or deep-copied from any producer's schema. Each node's strings, children
 * and dictionary live in its private data and go with its release callback.
 */
#include <string.h>

#include "arrow/arrow.h"

typedef struct schema_private {
  char *format;
  char *name;
  char *metadata; /* C Data Interface encoding; NULL if none */
  struct ArrowSchema **children;     /* n_children pointers into child_structs */
  struct ArrowSchema *child_structs; /* owned */
  struct ArrowSchema *dictionary;    /* owned struct; NULL if none */
} schema_private;

static void schema_release(struct ArrowSchema *s) {
  if (s == NULL || s->release == NULL) return;
  schema_private *p = s->private_data;
  for (int64_t i = 0; i < s->n_children; i++) {
    struct ArrowSchema *c = p->children[i];
    if (c->release != NULL) c->release(c);
  }
  if (p->dictionary != NULL) {
    if (p->dictionary->release != NULL) p->dictionary->release(p->dictionary);
    pt__free(p->dictionary);
  }
  pt__free(p->children);
  pt__free(p->child_structs);
  pt__free(p->format);
  pt__free(p->name);
  pt__free(p->metadata);
  pt__free(p);
  s->release = NULL;
  s->private_data = NULL;
}

static int schema_oom(pt_error *err) {
  return pt__errorf(err, PT_ENOMEM, "out of memory for a schema");
}

int pt_schema_init(struct ArrowSchema *out, const char *format, const char *name,
                   int64_t flags, int64_t n_children, pt_error *err) {
  memset(out, 0, sizeof *out);
  if (format == NULL) return pt__errorf(err, PT_EINVAL, "schema format must not be NULL");
  if (n_children < 0 || n_children > INT32_MAX)
    return pt__errorf(err, PT_EINVAL, "schema cannot have %lld children",
                      (long long)n_children);
  schema_private *p = pt__calloc(1, sizeof *p);
  if (p == NULL) return schema_oom(err);
  p->format = pt__strdup(format);
  if (p->format == NULL) goto free_private;
  if (name != NULL) {
    p->name = pt__strdup(name);
    if (p->name == NULL) goto free_private;
  }
  if (n_children > 0) {
    p->children = pt__calloc((size_t)n_children, sizeof *p->children);
    p->child_structs = pt__calloc((size_t)n_children, sizeof *p->child_structs);
    if (p->children == NULL || p->child_structs == NULL) goto free_private;
    for (int64_t i = 0; i < n_children; i++) p->children[i] = &p->child_structs[i];
  }
  out->format = p->format;
  out->name = p->name;
  out->metadata = NULL;
  out->flags = flags;
  out->n_children = n_children;
  out->children = p->children;
  out->dictionary = NULL;
  out->release = schema_release;
  out->private_data = p;
  return PT_OK;

free_private:
  pt__free(p->children);
  pt__free(p->child_structs);
  pt__free(p->format);
  pt__free(p->name);
  pt__free(p);
  return schema_oom(err);
}

int pt_schema_set_dictionary(struct ArrowSchema *schema, struct ArrowSchema *dictionary,
                             pt_error *err) {
  if (schema == NULL || schema->release != schema_release)
    return pt__errorf(err, PT_EINVAL, "set_dictionary needs a schema made by pt_schema_init");
  if (dictionary == NULL || dictionary->release == NULL)
    return pt__errorf(err, PT_EINVAL, "set_dictionary: the dictionary schema is released");
  const char *f = schema->format;
  if (f[0] == '\0' || f[1] != '\0' || strchr("cCsSiIlL", f[0]) == NULL)
    return pt__errorf(err, PT_EINVAL,
                      "dictionary-encoded type needs an integer index type, not '%s'", f);
  schema_private *p = schema->private_data;
  struct ArrowSchema *d = p->dictionary;
  if (d == NULL) {
    d = pt__malloc(sizeof *d);
    if (d == NULL) return schema_oom(err);
  } else if (d->release != NULL) {
    d->release(d); /* replacing an earlier dictionary */
  }
  pt__schema_move(dictionary, d);
  p->dictionary = d;
  schema->dictionary = d;
  return PT_OK;
}

/* Byte length of C Data Interface metadata (int32 count, then per pair an
 * int32 length and bytes for key and value); -1 if it is malformed. Foreign
 * metadata carries no length, so a bound keeps a bad count from running far. */
static int64_t metadata_size(const char *m) {
  if (m == NULL) return 0;
  int32_t n = pt__load_i32(m);
  if (n < 0) return -1;
  int64_t at = 4;
  for (int64_t i = 0; i < 2 * (int64_t)n; i++) {
    int32_t len = pt__load_i32(m + at);
    if (len < 0 || at > (INT64_C(1) << 40)) return -1;
    at += 4 + len;
  }
  return at;
}

static int set_metadata_bytes(struct ArrowSchema *schema, const char *bytes, int64_t size,
                              pt_error *err) {
  schema_private *p = schema->private_data;
  char *m = NULL;
  if (bytes != NULL) {
    m = pt__malloc((size_t)size);
    if (m == NULL) return schema_oom(err);
    memcpy(m, bytes, (size_t)size);
  }
  pt__free(p->metadata);
  p->metadata = m;
  schema->metadata = m;
  return PT_OK;
}

int pt_schema_set_metadata(struct ArrowSchema *schema, int64_t n, const char *const *keys,
                           const char *const *values, pt_error *err) {
  return pt_schema_set_metadata_n(schema, n, keys, NULL, values, NULL, err);
}

int pt_schema_set_metadata_n(struct ArrowSchema *schema, int64_t n, const char *const *keys,
                             const int64_t *key_lengths, const char *const *values,
                             const int64_t *value_lengths, pt_error *err) {
  if (schema == NULL || schema->release != schema_release)
    return pt__errorf(err, PT_EINVAL, "set_metadata needs a schema made by pt_schema_init");
  if (n < 0 || n > INT32_MAX)
    return pt__errorf(err, PT_EINVAL, "set_metadata: %lld pairs", (long long)n);
  if (n == 0) return set_metadata_bytes(schema, NULL, 0, err);
  if (keys == NULL || values == NULL)
    return pt__errorf(err, PT_EINVAL, "set_metadata: keys or values is NULL");
  int64_t size = 4;
  for (int64_t i = 0; i < n; i++) {
    if (keys[i] == NULL || values[i] == NULL)
      return pt__errorf(err, PT_EINVAL, "set_metadata: key or value %lld is NULL",
                        (long long)i);
    int64_t kl = key_lengths ? key_lengths[i] : (int64_t)strlen(keys[i]);
    int64_t vl = value_lengths ? value_lengths[i] : (int64_t)strlen(values[i]);
    if (kl < 0 || vl < 0)
      return pt__errorf(err, PT_EINVAL, "set_metadata: pair %lld has a negative length",
                        (long long)i);
    if (kl > INT32_MAX || vl > INT32_MAX || size > INT64_MAX - 8 - kl - vl)
      return pt__errorf(err, PT_EINVAL, "set_metadata: pair %lld is too long", (long long)i);
    size += 8 + kl + vl;
  }
  char *buf = pt__malloc((size_t)size);
  if (buf == NULL) return schema_oom(err);
  pt__store_i32(buf, (int32_t)n);
  int64_t at = 4;
  for (int64_t i = 0; i < n; i++) {
    const char *parts[2] = {keys[i], values[i]};
    int64_t lens[2] = {key_lengths ? key_lengths[i] : (int64_t)strlen(keys[i]),
                       value_lengths ? value_lengths[i] : (int64_t)strlen(values[i])};
    for (int j = 0; j < 2; j++) {
      pt__store_i32(buf + at, (int32_t)lens[j]);
      memcpy(buf + at + 4, parts[j], (size_t)lens[j]);
      at += 4 + lens[j];
    }
  }
  schema_private *p = schema->private_data;
  pt__free(p->metadata);
  p->metadata = buf;
  schema->metadata = buf;
  return PT_OK;
}

static int copy_node(const struct ArrowSchema *src, struct ArrowSchema *out, int depth,
                     pt_error *err) {
  if (depth > 64) return pt__errorf(err, PT_EINVAL, "schema nesting is deeper than 64 levels");
  if (src == NULL || src->release == NULL)
    return pt__errorf(err, PT_EINVAL, "schema copy: the schema is released");
  if (src->n_children > 0 && src->children == NULL)
    return pt__errorf(err, PT_EINVAL, "schema copy: children array is NULL");
  PT_RETURN_NOT_OK(
      pt_schema_init(out, src->format, src->name, src->flags, src->n_children, err));
  int rc = PT_OK;
  int64_t msize = metadata_size(src->metadata);
  if (msize < 0) {
    rc = pt__errorf(err, PT_EINVAL, "schema copy: metadata is malformed");
    goto release_out;
  }
  if (msize > 0 && (rc = set_metadata_bytes(out, src->metadata, msize, err)) != PT_OK)
    goto release_out;
  for (int64_t i = 0; i < src->n_children; i++) {
    rc = copy_node(src->children[i], out->children[i], depth + 1, err);
    if (rc != PT_OK) goto release_out;
  }
  if (src->dictionary != NULL) {
    schema_private *p = out->private_data;
    p->dictionary = pt__malloc(sizeof *p->dictionary);
    if (p->dictionary == NULL) {
      rc = schema_oom(err);
      goto release_out;
    }
    p->dictionary->release = NULL;
    rc = copy_node(src->dictionary, p->dictionary, depth + 1, err);
    if (rc != PT_OK) goto release_out;
    out->dictionary = p->dictionary;
  }
  return PT_OK;

release_out:
  out->release(out);
  return rc;
}

int pt_schema_copy(const struct ArrowSchema *schema, struct ArrowSchema *out, pt_error *err) {
  if (out == NULL) return pt__errorf(err, PT_EINVAL, "schema copy: out must not be NULL");
  memset(out, 0, sizeof *out);
  return copy_node(schema, out, 0, err);
}
