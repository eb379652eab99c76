/* take.c — gathering rows into new compact arrays (take, filter, concat) and
 * the stable row hash used by hash partitioning. One recursive gather serves
 * all three: its input is a list of row references, each a (chunk, row) pair,
 * so concatenating batches is a take across several of them.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "arrow/kernels.h"

#define MAX_DEPTH 64

static int oom(pt_error *err) {
  return pt__errorf(err, PT_ENOMEM, "out of memory taking rows");
}


/* Whether two dictionaries are the same values (same buffers). */
static bool same_dictionary(const struct ArrowArray *a, const struct ArrowArray *b) {
  if (a == b) return true;
  if (a->length != b->length || a->offset != b->offset || a->n_buffers != b->n_buffers ||
      a->n_children != b->n_children || a->n_children != 0)
    return false;
  for (int64_t i = 0; i < a->n_buffers; i++)
    if (a->buffers[i] != b->buffers[i]) return false;
  return true;
}

static int gather(const pt__view *const *vs, int64_t n_chunks, const int32_t *chunk,
                  const int64_t *rows, int64_t n, int depth, int flags, struct ArrowArray *out,
                  pt_error *err);

/* The union part of gather (out made): type ids; sparse children taken at
 * the same rows (parent offset added, as for structs); each dense child
 * taken at the rows its offsets name, in order, with offsets renumbered. */
static int gather_union(const pt__view *const *vs, int64_t n_chunks, const int32_t *chunk,
                        const int64_t *rows, int64_t n, int depth, int flags,
                        struct ArrowArray *out, pt_error *err) {
#define VIEW(k) (chunk ? vs[chunk[k]] : vs[0])
  const pt__view *v0 = vs[0];
  int rc = PT_OK;
  const pt__view **child_vs = pt__malloc((size_t)n_chunks * sizeof *child_vs);
  int64_t *child_rows = pt__malloc((size_t)(n ? n : 1) * sizeof *child_rows);
  int32_t *child_chunk = chunk ? pt__malloc((size_t)(n ? n : 1) * sizeof *child_chunk) : NULL;
  uint8_t *types = pt__buffer_alloc_zeroed(n);
  if (types != NULL) pt__array_set_buffer(out, 0, types, true);
  if (child_vs == NULL || child_rows == NULL || (chunk && child_chunk == NULL) || types == NULL) {
    rc = oom(err);
    goto done;
  }
  out->null_count = 0;
  for (int64_t k = 0; k < n; k++) types[k] = VIEW(k)->values[VIEW(k)->offset + rows[k]];
  if (v0->type.id == PT_TYPE_SPARSE_UNION) {
    for (int64_t k = 0; k < n; k++) child_rows[k] = VIEW(k)->offset + rows[k];
    for (int64_t i = 0; i < v0->n_children && rc == PT_OK; i++) {
      for (int64_t c = 0; c < n_chunks; c++) child_vs[c] = &vs[c]->children[i];
      rc = gather(child_vs, n_chunks, chunk, child_rows, n, depth + 1, flags,
                  out->children[i], err);
    }
    goto done;
  }
  uint8_t *offsets = pt__buffer_alloc_zeroed(n * 4);
  if (offsets == NULL) {
    rc = oom(err);
    goto done;
  }
  pt__array_set_buffer(out, 1, offsets, true);
  for (int64_t i = 0; i < v0->n_children && rc == PT_OK; i++) {
    int64_t m = 0;
    for (int64_t k = 0; k < n; k++) {
      int64_t row;
      if (pt__view_union_at(VIEW(k), rows[k], &row) != i) continue;
      pt__store_i32(offsets + k * 4, (int32_t)m);
      child_rows[m] = row;
      if (child_chunk) child_chunk[m] = chunk[k];
      m++;
    }
    for (int64_t c = 0; c < n_chunks; c++) child_vs[c] = &vs[c]->children[i];
    rc = gather(child_vs, n_chunks, child_chunk, child_rows, m, depth + 1, flags,
                out->children[i], err);
  }
done:
  pt__free(child_vs);
  pt__free(child_rows);
  pt__free(child_chunk);
  return rc;
#undef VIEW
}

/* The run-end encoded part of gather (out made): one run per taken row,
 * merged with the one before when both are the same run of one chunk. */
static int gather_ree(const pt__view *const *vs, int64_t n_chunks, const int32_t *chunk,
                      const int64_t *rows, int64_t n, int depth, int flags,
                      struct ArrowArray *out, pt_error *err) {
#define VIEW(k) (chunk ? vs[chunk[k]] : vs[0])
  const pt__view *v0 = vs[0];
  out->null_count = 0;
  int64_t w = pt__type_bit_width(&v0->children[0].type) / 8;
  int64_t max = w == 2 ? INT16_MAX : w == 4 ? INT32_MAX : INT64_MAX;
  if (n > max)
    return pt__errorf(err, PT_ERANGE,
                      "taking %lld rows of a run-end encoded column with %d-bit run ends; take "
                      "fewer rows at once", (long long)n, (int)(w * 8));
  int rc = PT_OK;
  int64_t *run_rows = pt__malloc((size_t)(n ? n : 1) * sizeof *run_rows);
  int32_t *run_chunk = chunk ? pt__malloc((size_t)(n ? n : 1) * sizeof *run_chunk) : NULL;
  uint8_t *ends = pt__buffer_alloc_zeroed(n * w);
  const pt__view **child_vs = pt__malloc((size_t)n_chunks * sizeof *child_vs);
  struct ArrowArray *e = out->children[0];
  if (run_rows == NULL || (chunk && run_chunk == NULL) || ends == NULL || child_vs == NULL ||
      (rc = pt__array_init(e, 2, 0, false, err)) != PT_OK) {
    pt__free(ends);
    if (rc == PT_OK) rc = oom(err);
    goto done;
  }
  pt__array_set_buffer(e, 1, ends, true);
  int64_t runs = 0;
  for (int64_t k = 0; k < n; k++) {
    int64_t r = pt__view_ree_run(VIEW(k), rows[k]);
    int32_t c = chunk ? chunk[k] : 0;
    if (runs == 0 || run_rows[runs - 1] != r || (chunk && run_chunk[runs - 1] != c)) {
      run_rows[runs] = r;
      if (chunk) run_chunk[runs] = c;
      runs++;
    }
    pt__store_run_end(ends + (runs - 1) * w, w, k + 1);
  }
  e->length = runs;
  e->null_count = 0;
  for (int64_t c = 0; c < n_chunks; c++) child_vs[c] = &vs[c]->children[1];
  rc = gather(child_vs, n_chunks, run_chunk, run_rows, runs, depth + 1, flags,
              out->children[1], err);
done:
  pt__free(run_rows);
  pt__free(run_chunk);
  pt__free(child_vs);
  return rc;
#undef VIEW
}

/* Gathers rows: reference k is row rows[k] (relative to the view) of chunk
 * chunk[k] (chunk NULL: all of chunk 0). vs holds one view per chunk, all of
 * the same node of the same schema. */
static int gather(const pt__view *const *vs, int64_t n_chunks, const int32_t *chunk,
                  const int64_t *rows, int64_t n, int depth, int flags, struct ArrowArray *out,
                  pt_error *err) {
  const pt__view *v0 = vs[0];
  if (depth > MAX_DEPTH)
    return pt__errorf(err, PT_EINVAL, "nesting is deeper than %d levels", MAX_DEPTH);
#define VIEW(k) (chunk ? vs[chunk[k]] : v0)
  int nb = pt__type_n_buffers(v0->type.id);
  PT_RETURN_NOT_OK(pt__array_init(out, nb, v0->n_children, v0->dictionary != NULL, err));
  int rc = PT_OK;
  const pt__view **child_vs = NULL;
  int32_t *child_chunk = NULL;
  int64_t *child_rows = NULL;
  out->length = n;
  if (v0->type.id == PT_TYPE_NA) {
    out->null_count = n;
    return PT_OK;
  }

  /* Validity: kept only when some taken row is null. */
  bool any_validity = false;
  for (int64_t c = 0; c < n_chunks; c++) any_validity |= vs[c]->validity != NULL;
  int64_t nulls = 0;
  if (any_validity) {
    uint8_t *bits = pt__buffer_alloc_zeroed((n + 7) / 8);
    if (bits == NULL) { rc = oom(err); goto release_out; }
    for (int64_t k = 0; k < n; k++) {
      if (pt__view_is_valid(VIEW(k), rows[k])) bits[k >> 3] |= (uint8_t)(1u << (k & 7));
      else nulls++;
    }
    if (nulls > 0) pt__array_set_buffer(out, 0, bits, true);
    else pt__free(bits);
  }
  out->null_count = nulls;

  int64_t bw = pt__type_bit_width(&v0->type);
  int okind = pt__type_offsets_kind(v0->type.id);
  if (bw > 0) {
    uint8_t *values = pt__buffer_alloc_zeroed((bw * n + 7) / 8);
    if (values == NULL) { rc = oom(err); goto release_out; }
    pt__array_set_buffer(out, 1, values, true);
    if (bw == 1) {
      for (int64_t k = 0; k < n; k++) {
        const pt__view *v = VIEW(k);
        if (pt__bit_get(v->values, v->offset + rows[k]))
          values[k >> 3] |= (uint8_t)(1u << (k & 7));
      }
    } else {
      size_t w = (size_t)(bw / 8);
      /* The common widths get their own loops: the compiler turns them into
       * plain loads and stores. */
      switch (w) {
#define GATHER_W(W)                                                                    \
  case W:                                                                              \
    for (int64_t k = 0; k < n; k++) {                                                  \
      const pt__view *v = VIEW(k);                                                     \
      memcpy(values + k * W, v->values + (v->offset + rows[k]) * W, W);                \
    }                                                                                  \
    break;
        GATHER_W(1)
        GATHER_W(2)
        GATHER_W(4)
        GATHER_W(8)
        GATHER_W(16)
#undef GATHER_W
        default:
          for (int64_t k = 0; k < n; k++) {
            const pt__view *v = VIEW(k);
            if (v->values != NULL)
              memcpy(values + (size_t)k * w, v->values + (size_t)(v->offset + rows[k]) * w, w);
          }
      }
    }
  } else if (okind != 0) {
    int ow = okind == 1 ? 4 : 8;
    uint8_t *offsets = pt__buffer_alloc_zeroed((n + 1) * ow);
    if (offsets == NULL) { rc = oom(err); goto release_out; }
    pt__array_set_buffer(out, 1, offsets, true);
    int64_t total = 0;
    for (int64_t k = 0; k < n; k++) {
      const pt__view *v = VIEW(k);
      int64_t j = v->offset + rows[k];
      total += pt__view_offset(v, j + 1) - pt__view_offset(v, j);
      if (okind == 1 && total > INT32_MAX) {
        rc = pt__errorf(err, PT_ERANGE,
                        "taken rows hold more than 2^31-1 values or bytes, too many for "
                        "32-bit offsets; take fewer rows at once");
        goto release_out;
      }
      if (okind == 1) pt__store_i32(offsets + (k + 1) * 4, (int32_t)total);
      else pt__store_i64(offsets + (k + 1) * 8, total);
    }
    if (nb == 3) {
      uint8_t *data = pt__buffer_alloc_zeroed(total);
      if (data == NULL) { rc = oom(err); goto release_out; }
      pt__array_set_buffer(out, 2, data, true);
      int64_t pos = 0;
      for (int64_t k = 0; k < n; k++) {
        const pt__view *v = VIEW(k);
        int64_t j = v->offset + rows[k];
        int64_t s = pt__view_offset(v, j), len = pt__view_offset(v, j + 1) - s;
        if (len > 0) memcpy(data + pos, v->data + s, (size_t)len);
        pos += len;
      }
    } else {
      /* Lists: the child rows of every taken list, in order. */
      child_rows = pt__malloc((size_t)(total ? total : 1) * sizeof *child_rows);
      if (child_rows == NULL) { rc = oom(err); goto release_out; }
      if (chunk != NULL) {
        child_chunk = pt__malloc((size_t)(total ? total : 1) * sizeof *child_chunk);
        if (child_chunk == NULL) { rc = oom(err); goto release_out; }
      }
      int64_t pos = 0;
      for (int64_t k = 0; k < n; k++) {
        int64_t s, e;
        pt__view_list_range(VIEW(k), rows[k], &s, &e);
        for (int64_t r = s; r < e; r++, pos++) {
          child_rows[pos] = r;
          if (child_chunk) child_chunk[pos] = chunk[k];
        }
      }
      child_vs = pt__malloc((size_t)n_chunks * sizeof *child_vs);
      if (child_vs == NULL) { rc = oom(err); goto release_out; }
      for (int64_t c = 0; c < n_chunks; c++) child_vs[c] = &vs[c]->children[0];
      rc = gather(child_vs, n_chunks, child_chunk, child_rows, total, depth + 1, flags,
                  out->children[0], err);
      if (rc != PT_OK) goto release_out;
    }
  } else if (v0->type.id == PT_TYPE_FIXED_SIZE_LIST) {
    int64_t size = v0->type.list_size, total = n * size;
    child_rows = pt__malloc((size_t)(total ? total : 1) * sizeof *child_rows);
    if (child_rows == NULL) { rc = oom(err); goto release_out; }
    if (chunk != NULL) {
      child_chunk = pt__malloc((size_t)(total ? total : 1) * sizeof *child_chunk);
      if (child_chunk == NULL) { rc = oom(err); goto release_out; }
    }
    for (int64_t k = 0; k < n; k++) {
      int64_t s, e;
      pt__view_list_range(VIEW(k), rows[k], &s, &e);
      for (int64_t r = 0; r < size; r++) {
        child_rows[k * size + r] = s + r;
        if (child_chunk) child_chunk[k * size + r] = chunk[k];
      }
    }
    child_vs = pt__malloc((size_t)n_chunks * sizeof *child_vs);
    if (child_vs == NULL) { rc = oom(err); goto release_out; }
    for (int64_t c = 0; c < n_chunks; c++) child_vs[c] = &vs[c]->children[0];
    rc = gather(child_vs, n_chunks, child_chunk, child_rows, total, depth + 1, flags,
                out->children[0], err);
    if (rc != PT_OK) goto release_out;
  } else if (pt__type_list_view_width(v0->type.id)) {
    /* The child rows of every valid taken row, in order; offsets follow. */
    int64_t w = pt__type_list_view_width(v0->type.id), total = 0, s, e;
    for (int64_t k = 0; k < n; k++) {
      if (!pt__view_is_valid(VIEW(k), rows[k])) continue;
      pt__view_list_range(VIEW(k), rows[k], &s, &e);
      total += e - s;
    }
    if (w == 4 && total > INT32_MAX) {
      rc = pt__errorf(err, PT_ERANGE,
                      "taken rows hold more than 2^31-1 values, too many for 32-bit offsets; "
                      "take fewer rows at once");
      goto release_out;
    }
    uint8_t *offsets = pt__buffer_alloc_zeroed(n * w), *sizes = pt__buffer_alloc_zeroed(n * w);
    if (offsets) pt__array_set_buffer(out, 1, offsets, true);
    if (sizes) pt__array_set_buffer(out, 2, sizes, true);
    child_rows = pt__malloc((size_t)(total ? total : 1) * sizeof *child_rows);
    child_vs = pt__malloc((size_t)n_chunks * sizeof *child_vs);
    if (chunk != NULL) child_chunk = pt__malloc((size_t)(total ? total : 1) * sizeof *child_chunk);
    if (offsets == NULL || sizes == NULL || child_rows == NULL || child_vs == NULL ||
        (chunk != NULL && child_chunk == NULL)) {
      rc = oom(err);
      goto release_out;
    }
    int64_t pos = 0;
    for (int64_t k = 0; k < n; k++) {
      if (!pt__view_is_valid(VIEW(k), rows[k])) continue;
      pt__view_list_range(VIEW(k), rows[k], &s, &e);
      if (w == 4) {
        pt__store_i32(offsets + k * 4, (int32_t)pos);
        pt__store_i32(sizes + k * 4, (int32_t)(e - s));
      } else {
        pt__store_i64(offsets + k * 8, pos);
        pt__store_i64(sizes + k * 8, e - s);
      }
      for (int64_t r = s; r < e; r++, pos++) {
        child_rows[pos] = r;
        if (child_chunk) child_chunk[pos] = chunk[k];
      }
    }
    for (int64_t c = 0; c < n_chunks; c++) child_vs[c] = &vs[c]->children[0];
    rc = gather(child_vs, n_chunks, child_chunk, child_rows, total, depth + 1, flags,
                out->children[0], err);
    if (rc != PT_OK) goto release_out;
  } else if (pt__type_is_view(v0->type.id)) {
    /* One data buffer with the out-of-line bytes of the rows, in order. */
    int64_t total = 0, len;
    for (int64_t k = 0; k < n; k++) {
      if (!pt__view_is_valid(VIEW(k), rows[k])) continue;
      pt__view_get_bytes(VIEW(k), rows[k], &len);
      if (len > 12) total += len;
    }
    if (total > INT32_MAX) {
      rc = pt__errorf(err, PT_ERANGE,
                      "taken rows hold more than 2 GiB of view data, too many for one data "
                      "buffer; take fewer rows at once");
      goto release_out;
    }
    uint8_t *views = pt__buffer_alloc_zeroed(n * 16);
    uint8_t *data = pt__buffer_alloc_zeroed(total);
    uint8_t *sizes = pt__buffer_alloc_zeroed(8);
    if (views) pt__array_set_buffer(out, 1, views, true);
    if (data) pt__array_set_buffer(out, 2, data, true);
    if (sizes) pt__array_set_buffer(out, 3, sizes, true);
    if (views == NULL || data == NULL || sizes == NULL) { rc = oom(err); goto release_out; }
    pt__store_i64(sizes, total);
    int64_t pos = 0;
    for (int64_t k = 0; k < n; k++) {
      if (!pt__view_is_valid(VIEW(k), rows[k])) continue; /* null: a zero view */
      const uint8_t *p = pt__view_get_bytes(VIEW(k), rows[k], &len);
      pt__view_make(views + k * 16, p, (int32_t)len, 0, (int32_t)pos);
      if (len > 12) {
        memcpy(data + pos, p, (size_t)len);
        pos += len;
      }
    }
  } else if (v0->type.id == PT_TYPE_RUN_END_ENCODED) {
    rc = gather_ree(vs, n_chunks, chunk, rows, n, depth, flags, out, err);
    if (rc != PT_OK) goto release_out;
  } else if (pt__type_is_union(v0->type.id)) {
    rc = gather_union(vs, n_chunks, chunk, rows, n, depth, flags, out, err);
    if (rc != PT_OK) goto release_out;
  } else if (v0->type.id == PT_TYPE_STRUCT) {
    /* Struct children are indexed with the parent's offset added. */
    child_rows = pt__malloc((size_t)(n ? n : 1) * sizeof *child_rows);
    child_vs = pt__malloc((size_t)n_chunks * sizeof *child_vs);
    if (child_rows == NULL || child_vs == NULL) { rc = oom(err); goto release_out; }
    for (int64_t k = 0; k < n; k++) child_rows[k] = VIEW(k)->offset + rows[k];
    for (int64_t i = 0; i < v0->n_children; i++) {
      for (int64_t c = 0; c < n_chunks; c++) child_vs[c] = &vs[c]->children[i];
      rc = gather(child_vs, n_chunks, chunk, child_rows, n, depth + 1, flags,
                  out->children[i], err);
      if (rc != PT_OK) goto release_out;
    }
  }

  if (v0->dictionary != NULL && !(flags & PT__CONCAT_NO_DICTIONARIES)) {
    for (int64_t c = 1; c < n_chunks; c++) {
      if (!same_dictionary(vs[c]->dictionary->array, v0->dictionary->array)) {
        rc = pt__errorf(err, PT_ENOTSUP,
                        "cannot put rows with different dictionaries into one array");
        goto release_out;
      }
    }
    rc = pt_array_copy(v0->dictionary->schema, v0->dictionary->array, out->dictionary, err);
    if (rc != PT_OK) goto release_out;
  }
  pt__free(child_vs);
  pt__free(child_chunk);
  pt__free(child_rows);
  return PT_OK;
#undef VIEW

release_out:
  pt__free(child_vs);
  pt__free(child_chunk);
  pt__free(child_rows);
  out->release(out);
  return rc;
}

int pt__array_take(const struct ArrowSchema *schema, const struct ArrowArray *array,
                   const int64_t *indices, int64_t n, struct ArrowArray *out, pt_error *err) {
  memset(out, 0, sizeof *out);
  if (n < 0) return pt__errorf(err, PT_EINVAL, "take: %lld indices", (long long)n);
  pt__view v;
  PT_RETURN_NOT_OK(pt__view_init(&v, schema, array, err));
  int rc = PT_OK;
  for (int64_t k = 0; k < n; k++) {
    if (indices[k] < 0 || indices[k] >= v.length) {
      rc = pt__errorf(err, PT_ERANGE,
                      "take: index %lld (position %lld) is out of range of %lld rows",
                      (long long)indices[k], (long long)k, (long long)v.length);
      goto reset_view;
    }
  }
  const pt__view *vs[1] = {&v};
  rc = gather(vs, 1, NULL, indices, n, 0, 0, out, err);
reset_view:
  pt__view_reset(&v);
  return rc;
}

int pt__array_filter(const struct ArrowSchema *schema, const struct ArrowArray *array,
                     const uint8_t *keep_bits, struct ArrowArray *out, pt_error *err) {
  memset(out, 0, sizeof *out);
  int64_t len = array->length;
  int64_t kept = pt__bits_count(keep_bits, 0, len);
  int64_t *idx = pt__malloc((size_t)(kept ? kept : 1) * sizeof *idx);
  if (idx == NULL) return oom(err);
  int64_t k = 0;
  for (int64_t i = 0; i < len; i++)
    if (pt__bit_get(keep_bits, i)) idx[k++] = i;
  int rc = pt__array_take(schema, array, idx, kept, out, err);
  pt__free(idx);
  return rc;
}

int pt__array_concat(const struct ArrowSchema *schema, const struct ArrowArray *const *arrays,
                     int64_t n, struct ArrowArray *out, pt_error *err) {
  return pt__array_concat_ranges(schema, arrays, NULL, NULL, n, 0, out, err);
}

int pt__array_concat_ranges(const struct ArrowSchema *schema,
                            const struct ArrowArray *const *arrays, const int64_t *starts,
                            const int64_t *lengths, int64_t n, int flags,
                            struct ArrowArray *out, pt_error *err) {
  memset(out, 0, sizeof *out);
  if (n <= 0 || n > INT32_MAX)
    return pt__errorf(err, PT_EINVAL, "concat: %lld arrays", (long long)n);
  int rc = PT_OK;
  int64_t n_views = 0, total = 0;
  pt__view *views = pt__calloc((size_t)n, sizeof *views);
  const pt__view **vs = pt__malloc((size_t)n * sizeof *vs);
  int32_t *chunk = NULL;
  int64_t *rows = NULL;
  if (views == NULL || vs == NULL) { rc = oom(err); goto free_all; }
  for (; n_views < n; n_views++) {
    int64_t c = n_views, len = arrays[c]->length;
    int64_t s = starts ? starts[c] : 0, l = lengths ? lengths[c] : len;
    if (s < 0 || l < 0 || s > len || l > len - s) {
      rc = pt__errorf(err, PT_ERANGE,
                      "concat: rows [%lld, %lld) of array %lld are out of range of its %lld "
                      "rows", (long long)s, (long long)(s + l), (long long)c, (long long)len);
      goto free_all;
    }
    rc = pt__view_init(&views[c], schema, arrays[c], err);
    if (rc != PT_OK) goto free_all;
    vs[c] = &views[c];
    total += l;
  }
  chunk = pt__malloc((size_t)(total ? total : 1) * sizeof *chunk);
  rows = pt__malloc((size_t)(total ? total : 1) * sizeof *rows);
  if (chunk == NULL || rows == NULL) { rc = oom(err); goto free_all; }
  int64_t pos = 0;
  for (int64_t c = 0; c < n; c++) {
    int64_t s = starts ? starts[c] : 0, l = lengths ? lengths[c] : arrays[c]->length;
    for (int64_t r = s; r < s + l; r++, pos++) {
      chunk[pos] = (int32_t)c;
      rows[pos] = r;
    }
  }
  rc = gather(vs, n, chunk, rows, total, 0, flags, out, err);
free_all:
  for (int64_t c = 0; c < n_views; c++) pt__view_reset(&views[c]);
  pt__free(views);
  pt__free(vs);
  pt__free(chunk);
  pt__free(rows);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Hashing */

#define NULL_HASH UINT64_C(0x5bd1e9955bd1e995)

/* The finalizer of splitmix64: every input bit affects every output bit. */
static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= UINT64_C(0xbf58476d1ce4e5b9);
  x ^= x >> 27;
  x *= UINT64_C(0x94d049bb133111eb);
  x ^= x >> 31;
  return x;
}

/* Murmur-style combination of a running hash with one more value. */
static inline uint64_t combine(uint64_t h, uint64_t v) {
  v *= UINT64_C(0xc6a4a7935bd1e995);
  v ^= v >> 47;
  v *= UINT64_C(0xc6a4a7935bd1e995);
  h ^= v;
  h *= UINT64_C(0xc6a4a7935bd1e995);
  return h + UINT64_C(0xe6546b64);
}

static uint64_t hash_bytes(const uint8_t *p, int64_t len) {
  uint64_t h = mix64((uint64_t)len ^ UINT64_C(0x9e3779b97f4a7c15));
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) h = combine(h, pt__load_u64(p + i));
  if (i < len) {
    uint64_t tail = 0;
    memcpy(&tail, p + i, (size_t)(len - i));
    h = combine(h, tail);
  }
  return mix64(h);
}

static uint64_t hash_value(const pt__view *v, int64_t i, int depth) {
  if (!pt__view_is_valid(v, i)) return NULL_HASH;
  if (depth > MAX_DEPTH) return 0;
  if (v->dictionary != NULL)
    return hash_value(v->dictionary, pt__view_dict_index(v, i), depth + 1);
  switch (v->type.id) {
    case PT_TYPE_NA: return NULL_HASH;
    case PT_TYPE_BOOL: return mix64(pt__view_get_bool(v, i) ? 1 : 2);
    case PT_TYPE_UINT8:
    case PT_TYPE_UINT16:
    case PT_TYPE_UINT32:
    case PT_TYPE_UINT64: return mix64(pt__view_get_uint(v, i));
    case PT_TYPE_HALF_FLOAT:
    case PT_TYPE_FLOAT:
    case PT_TYPE_DOUBLE: {
      double d = pt__view_get_double(v, i);
      if (d == 0) d = 0;             /* -0.0 equals 0.0 */
      if (isnan(d)) d = NAN;         /* one NaN */
      uint64_t bits;
      memcpy(&bits, &d, 8);
      return mix64(bits);
    }
    case PT_TYPE_STRING:
    case PT_TYPE_LARGE_STRING:
    case PT_TYPE_BINARY:
    case PT_TYPE_LARGE_BINARY:
    case PT_TYPE_FIXED_SIZE_BINARY:
    case PT_TYPE_STRING_VIEW:
    case PT_TYPE_BINARY_VIEW:
    case PT_TYPE_DECIMAL32:
    case PT_TYPE_DECIMAL64:
    case PT_TYPE_DECIMAL128:
    case PT_TYPE_DECIMAL256:
    case PT_TYPE_INTERVAL_DAY_TIME:
    case PT_TYPE_INTERVAL_MONTH_DAY_NANO: {
      int64_t len;
      const uint8_t *p = pt__view_get_bytes(v, i, &len);
      return hash_bytes(p, len);
    }
    case PT_TYPE_LIST:
    case PT_TYPE_LARGE_LIST:
    case PT_TYPE_FIXED_SIZE_LIST:
    case PT_TYPE_MAP:
    case PT_TYPE_LIST_VIEW:
    case PT_TYPE_LARGE_LIST_VIEW: {
      int64_t s, e;
      pt__view_list_range(v, i, &s, &e);
      uint64_t h = mix64((uint64_t)(e - s) + 3);
      for (int64_t r = s; r < e; r++) h = combine(h, hash_value(&v->children[0], r, depth + 1));
      return mix64(h);
    }
    case PT_TYPE_RUN_END_ENCODED:
      return hash_value(&v->children[1], pt__view_ree_run(v, i), depth + 1);
    case PT_TYPE_STRUCT: {
      uint64_t h = mix64(4);
      for (int64_t c = 0; c < v->n_children; c++)
        h = combine(h, hash_value(&v->children[c], v->offset + i, depth + 1));
      return mix64(h);
    }
    default: return mix64((uint64_t)pt__view_get_int(v, i));
  }
}

/* Whether rows of v can be hashed: unions, anywhere inside, cannot (equal
 * values of different type ids or layouts would need one hash). */
static bool hashable(const pt__view *v, int depth) {
  if (depth > MAX_DEPTH || pt__type_is_union(v->type.id)) return false;
  for (int64_t i = 0; i < v->n_children; i++)
    if (!hashable(&v->children[i], depth + 1)) return false;
  return v->dictionary == NULL || hashable(v->dictionary, depth + 1);
}

int pt__hash_rows(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                  const int *key_cols, int n_keys, uint64_t *hashes, pt_error *err) {
  pt__view v;
  PT_RETURN_NOT_OK(pt__view_init(&v, schema, batch, err));
  int rc = PT_OK;
  if (v.type.id != PT_TYPE_STRUCT) {
    rc = pt__errorf(err, PT_EINVAL, "hash: the batch is not a struct array");
    goto reset_view;
  }
  for (int k = 0; k < n_keys; k++) {
    if (key_cols[k] < 0 || key_cols[k] >= v.n_children) {
      rc = pt__errorf(err, PT_ERANGE, "hash: key column %d is out of range of %lld columns",
                      key_cols[k], (long long)v.n_children);
      goto reset_view;
    }
    const pt__view *c = &v.children[key_cols[k]];
    if (!hashable(c, 0)) {
      char name[256];
      if (pt_type_name(c->schema, name, sizeof name) < 0) snprintf(name, sizeof name, "?");
      const char *col = schema->children[key_cols[k]]->name;
      rc = pt__errorf(err, PT_ENOTSUP,
                      "hash partitioning: key column '%s' has type %s, which has no hash "
                      "(unions do not); partition by other columns",
                      col ? col : "", name);
      goto reset_view;
    }
  }
  for (int64_t i = 0; i < v.length; i++) hashes[i] = UINT64_C(0x243f6a8885a308d3);
  for (int k = 0; k < n_keys; k++) {
    const pt__view *c = &v.children[key_cols[k]];
    /* Fast path for the most common key: int64 without dictionary. */
    if (c->type.id == PT_TYPE_INT64 && c->dictionary == NULL) {
      for (int64_t i = 0; i < v.length; i++) {
        int64_t j = v.offset + i;
        uint64_t h = (c->validity && !pt__bit_get(c->validity, c->offset + j))
                         ? NULL_HASH
                         : mix64((uint64_t)pt__load_i64(c->values + (c->offset + j) * 8));
        hashes[i] = combine(hashes[i], h);
      }
    } else {
      for (int64_t i = 0; i < v.length; i++)
        hashes[i] = combine(hashes[i], hash_value(c, v.offset + i, 0));
    }
  }
  for (int64_t i = 0; i < v.length; i++) hashes[i] = mix64(hashes[i]);
reset_view:
  pt__view_reset(&v);
  return rc;
}
