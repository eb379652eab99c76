/* array.c — ArrowArrays that protium makes (pt__array_*), reference-counted
 * memory regions (pt__shared), and the operations on any ArrowArray that
 * change who holds the memory: zero-copy slices (which turn the sliced array
 * into a view of a shared holder) and compacting deep copies.
 * Lifetimes are explained in README.md of this folder.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/arrow.h"

/* ------------------------------------------------------------------------ */
/* pt__shared */

pt__shared *pt__shared_new(void *data, void (*destroy)(void *, void *), void *arg) {
  pt__shared *s = pt__malloc(sizeof *s);
  if (s == NULL) return NULL;
  atomic_init(&s->refs, 1);
  s->destroy = destroy;
  s->data = data;
  s->arg = arg;
  return s;
}

void pt__shared_ref(pt__shared *s) {
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void pt__shared_unref(pt__shared *s) {
  if (s == NULL) return;
  /* acq_rel: the thread that frees must see every other holder's writes. */
  if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
  if (s->destroy) s->destroy(s->data, s->arg);
  pt__free(s);
}

/* ------------------------------------------------------------------------ */
/* protium-owned arrays */

/* An array may hold a few regions (a slice of an IPC batch holds the message
 * and, through it, the file mapping); more than this is a bug of ours. */
#define MAX_HOLDS 4

/* Everything an array made by pt__array_init needs, in one allocation:
 * this header, then the buffer pointers, the owned flags, the child pointers,
 * the child structs and the dictionary struct. */
typedef struct array_private {
  int64_t n_buffers;
  int64_t n_children;
  pt__shared *holds[MAX_HOLDS];
  int n_holds;
  bool *owned;                 /* n_buffers flags: pt__free on release */
  const void **buffers;        /* what ArrowArray.buffers points at */
  struct ArrowArray **children;
  struct ArrowArray *child_structs;
  struct ArrowArray *dictionary; /* NULL unless with_dictionary */
  /* Set on views made by pt_array_slice: the holder every buffer of this
   * tree points into (also in holds[]), so that slicing a view again can
   * share that holder instead of wrapping the view in yet another one. */
  pt__shared *view_of;
} array_private;

static void array_release(struct ArrowArray *a) {
  if (a == NULL || a->release == NULL) return;
  array_private *p = a->private_data;
  /* Children and dictionary a consumer moved out have release == NULL and
   * are theirs to release now. */
  for (int64_t i = 0; i < p->n_children; i++) {
    struct ArrowArray *c = p->children[i];
    if (c != NULL && c->release != NULL) c->release(c);
  }
  if (p->dictionary != NULL && p->dictionary->release != NULL)
    p->dictionary->release(p->dictionary);
  for (int64_t i = 0; i < p->n_buffers; i++)
    if (p->owned[i]) pt__free((void *)p->buffers[i]);
  for (int i = 0; i < p->n_holds; i++) pt__shared_unref(p->holds[i]);
  pt__free(p);
  a->release = NULL;
  a->private_data = NULL;
}

static size_t align_up(size_t n) { return (n + 15) & ~(size_t)15; }

int pt__array_init(struct ArrowArray *out, int64_t n_buffers, int64_t n_children,
                   bool with_dictionary, pt_error *err) {
  memset(out, 0, sizeof *out);
  if (n_buffers < 0 || n_children < 0 || n_buffers > 64 || n_children > (INT64_C(1) << 32))
    return pt__errorf(err, PT_EINVAL, "array with %lld buffers and %lld children is not valid",
                      (long long)n_buffers, (long long)n_children);
  size_t nb = (size_t)n_buffers, nc = (size_t)n_children;
  size_t off_buffers = align_up(sizeof(array_private));
  size_t off_owned = off_buffers + align_up(nb * sizeof(void *));
  size_t off_child_ptrs = off_owned + align_up(nb * sizeof(bool));
  size_t off_child_structs = off_child_ptrs + align_up(nc * sizeof(struct ArrowArray *));
  size_t off_dict = off_child_structs + align_up(nc * sizeof(struct ArrowArray));
  size_t total = off_dict + (with_dictionary ? sizeof(struct ArrowArray) : 0);
  char *mem = pt__calloc(1, total);
  if (mem == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory for an array");
  array_private *p = (array_private *)mem;
  p->n_buffers = n_buffers;
  p->n_children = n_children;
  p->buffers = (const void **)(mem + off_buffers);
  p->owned = (bool *)(mem + off_owned);
  p->children = (struct ArrowArray **)(mem + off_child_ptrs);
  p->child_structs = (struct ArrowArray *)(mem + off_child_structs);
  for (size_t i = 0; i < nc; i++) p->children[i] = &p->child_structs[i];
  p->dictionary = with_dictionary ? (struct ArrowArray *)(mem + off_dict) : NULL;

  out->n_buffers = n_buffers;
  out->n_children = n_children;
  out->buffers = n_buffers ? p->buffers : NULL;
  out->children = n_children ? p->children : NULL;
  out->dictionary = p->dictionary;
  out->release = array_release;
  out->private_data = p;
  return PT_OK;
}

void pt__array_set_buffer(struct ArrowArray *a, int64_t i, const void *ptr, bool owned) {
  array_private *p = a->private_data;
  assert(a->release == array_release && i >= 0 && i < p->n_buffers);
  if (p->owned[i] && p->buffers[i] != ptr) pt__free((void *)p->buffers[i]);
  p->buffers[i] = ptr;
  p->owned[i] = owned;
}

void pt__array_hold(struct ArrowArray *a, pt__shared *s) {
  array_private *p = a->private_data;
  assert(a->release == array_release && p->n_holds < MAX_HOLDS);
  pt__shared_ref(s);
  p->holds[p->n_holds++] = s;
}

bool pt__array_is_ours(const struct ArrowArray *a) {
  return a != NULL && a->release == array_release;
}

/* ------------------------------------------------------------------------ */
/* Slices */

/* The holder of a sliced array's original contents. */
static void holder_destroy(void *data, void *arg) {
  struct ArrowArray *original = data;
  if (original->release != NULL) original->release(original);
  pt__free(original);
}

/* Checks that every node of the tree can be read (nothing moved out). */
static int check_not_moved(const struct ArrowArray *a, int depth, pt_error *err) {
  if (depth > 64) return pt__errorf(err, PT_EINVAL, "array nesting is deeper than 64 levels");
  if (a == NULL || a->release == NULL)
    return pt__errorf(err, PT_EINVAL,
                      "cannot slice: part of the array was released or moved out");
  if (a->n_children < 0 || (a->n_children > 0 && a->children == NULL) || a->n_buffers < 0 ||
      (a->n_buffers > 0 && a->buffers == NULL))
    return pt__errorf(err, PT_EINVAL, "cannot slice: the array is malformed");
  for (int64_t i = 0; i < a->n_children; i++)
    PT_RETURN_NOT_OK(check_not_moved(a->children[i], depth + 1, err));
  if (a->dictionary) PT_RETURN_NOT_OK(check_not_moved(a->dictionary, depth + 1, err));
  return PT_OK;
}

/* *dst: a tree of views with src's fields and buffer pointers, every node
 * holding a reference on s. */
static int make_view(const struct ArrowArray *src, pt__shared *s, struct ArrowArray *dst,
                     pt_error *err) {
  PT_RETURN_NOT_OK(
      pt__array_init(dst, src->n_buffers, src->n_children, src->dictionary != NULL, err));
  dst->length = src->length;
  dst->null_count = src->null_count;
  dst->offset = src->offset;
  for (int64_t i = 0; i < src->n_buffers; i++)
    pt__array_set_buffer(dst, i, src->buffers[i], false);
  pt__array_hold(dst, s);
  ((array_private *)dst->private_data)->view_of = s;
  int rc = PT_OK;
  for (int64_t i = 0; i < src->n_children && rc == PT_OK; i++)
    rc = make_view(src->children[i], s, dst->children[i], err);
  if (rc == PT_OK && src->dictionary != NULL)
    rc = make_view(src->dictionary, s, dst->dictionary, err);
  if (rc != PT_OK) dst->release(dst);
  return rc;
}

int pt_array_slice(struct ArrowArray *array, int64_t offset, int64_t length,
                   struct ArrowArray *out, pt_error *err) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (array == NULL || out == NULL)
    return pt__errorf(err, PT_EINVAL, "slice: array and out must not be NULL");
  PT_RETURN_NOT_OK(check_not_moved(array, 0, err));
  int64_t end;
  if (offset < 0 || length < 0 || pt__add_overflow(offset, length, &end) || end > array->length)
    return pt__errorf(err, PT_ERANGE, "slice [%lld, %lld+%lld) is out of range of %lld rows",
                      (long long)offset, (long long)offset, (long long)length,
                      (long long)array->length);
  int64_t new_null_count;
  if (offset == 0 && length == array->length) new_null_count = array->null_count;
  else if (array->null_count == 0) new_null_count = 0;
  else new_null_count = -1;

  if (pt__array_is_ours(array) && ((array_private *)array->private_data)->view_of != NULL) {
    /* Already a view of a holder (a slice of a slice): share the holder. */
    pt__shared *s = ((array_private *)array->private_data)->view_of;
    PT_RETURN_NOT_OK(make_view(array, s, out, err));
  } else {
    struct ArrowArray *original = pt__malloc(sizeof *original);
    if (original == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory slicing an array");
    pt__shared *s = pt__shared_new(original, holder_destroy, NULL);
    if (s == NULL) {
      pt__free(original);
      return pt__errorf(err, PT_ENOMEM, "out of memory slicing an array");
    }
    struct ArrowArray view_of_array;
    int rc = make_view(array, s, &view_of_array, err);
    if (rc == PT_OK) {
      rc = make_view(array, s, out, err);
      if (rc != PT_OK) view_of_array.release(&view_of_array);
    }
    if (rc != PT_OK) {
      /* original was never filled: free the holder without releasing. */
      original->release = NULL;
      pt__shared_unref(s);
      return rc;
    }
    /* From here nothing fails: the caller's array becomes a view and the
     * holder takes its contents. */
    pt__array_move(array, original);
    pt__array_move(&view_of_array, array);
    pt__shared_unref(s); /* the views hold it now */
  }
  out->offset += offset;
  /* An empty slice of a leaf reads nothing: offset 0 spares consumers that
   * size the buffers of empty arrays as empty (Arrow C++ does) an offset
   * beyond them. (Nested arrays keep it: Arrow C++ takes a record batch's
   * columns whole when its offset is 0.) */
  if (length == 0 && out->n_children == 0) out->offset = 0;
  out->length = length;
  out->null_count = new_null_count;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Validity of one row */

int pt_array_is_valid(const struct ArrowSchema *schema, const struct ArrowArray *array,
                      int64_t i) {
  pt_type t;
  if (pt_type_parse(schema, &t, NULL) != PT_OK || array == NULL) return 0;
  if (t.id == PT_TYPE_NA) return 0;
  if (pt__type_is_union(t.id) || t.id == PT_TYPE_RUN_END_ENCODED) {
    /* No bitmap of their own: the value's validity decides. */
    pt__view v;
    if (pt__view_init(&v, schema, array, NULL) != PT_OK) return 0;
    int valid = i >= 0 && i < v.length && pt__view_is_valid(&v, i);
    pt__view_reset(&v);
    return valid;
  }
  if (array->n_buffers < 1 || array->buffers == NULL || array->buffers[0] == NULL) return 1;
  return pt__bit_get(array->buffers[0], array->offset + i);
}

/* ------------------------------------------------------------------------ */
/* Compacting copies */

void *pt__buffer_alloc_zeroed(int64_t size) {
  if (size < 0 || (uint64_t)size > SIZE_MAX - 64) return NULL;
  size_t rounded = ((size_t)size + 63) & ~(size_t)63;
  if (rounded == 0) rounded = 64;
  void *p = pt__malloc_aligned(rounded);
  if (p != NULL) memset(p, 0, rounded);
  return p;
}

static int copy_oom(pt_error *err) {
  return pt__errorf(err, PT_ENOMEM, "out of memory copying an array");
}

static int copy_view(const pt__view *v, int64_t start, int64_t len, struct ArrowArray *out,
                     pt_error *err);

/* The run-end encoded part of copy_view (out made): the runs rows [start,
 * start+len) of the view touch, their ends rebased to the rows. */
static int copy_ree(const pt__view *v, int64_t start, int64_t len, struct ArrowArray *out,
                    pt_error *err) {
  out->null_count = 0;
  const pt__view *ends = &v->children[0];
  int64_t w = pt__type_bit_width(&ends->type) / 8, k0 = 0, n = 0;
  if (len > 0) {
    k0 = pt__view_ree_run(v, start);
    n = pt__view_ree_run(v, start + len - 1) - k0 + 1;
  }
  struct ArrowArray *e = out->children[0];
  PT_RETURN_NOT_OK(pt__array_init(e, 2, 0, false, err));
  e->length = n;
  e->null_count = 0;
  uint8_t *buf = pt__buffer_alloc_zeroed(n * w);
  if (buf == NULL) return copy_oom(err);
  pt__array_set_buffer(e, 1, buf, true);
  int64_t first = v->offset + start;
  for (int64_t k = 0; k < n; k++) {
    int64_t end = pt__view_get_int(ends, k0 + k) - first;
    pt__store_run_end(buf + k * w, w, end < len ? end : len);
  }
  return copy_view(&v->children[1], k0, n, out->children[1], err);
}

/* The union part of copy_view (out made, first the physical first row):
 * type ids copied; sparse children sliced as struct children are; each
 * dense child copied over the span of its rows' offsets, which are rebased
 * to it (compact up to the values the rows skip inside that span). */
static int copy_union(const pt__view *v, int64_t first, int64_t len, struct ArrowArray *out,
                      pt_error *err) {
  out->null_count = 0;
  uint8_t *types = pt__buffer_alloc_zeroed(len);
  if (types == NULL) return copy_oom(err);
  if (len > 0) memcpy(types, v->values + first, (size_t)len);
  pt__array_set_buffer(out, 0, types, true);
  if (v->type.id == PT_TYPE_SPARSE_UNION) {
    for (int64_t i = 0; i < v->n_children; i++)
      PT_RETURN_NOT_OK(copy_view(&v->children[i], first, len, out->children[i], err));
    return PT_OK;
  }
  uint8_t *offsets = pt__buffer_alloc_zeroed(len * 4);
  if (offsets == NULL) return copy_oom(err);
  pt__array_set_buffer(out, 1, offsets, true);
  for (int64_t ci = 0; ci < v->n_children; ci++) {
    int64_t lo = INT64_MAX, hi = -1;
    for (int64_t k = 0; k < len; k++) {
      int64_t row;
      if (pt__view_union_at(v, first - v->offset + k, &row) != ci) continue;
      if (row < lo) lo = row;
      if (row > hi) hi = row;
    }
    if (hi < 0) {
      lo = 0; /* no row uses this child: an empty copy */
      hi = -1;
    }
    for (int64_t k = 0; k < len; k++) {
      int64_t row;
      if (pt__view_union_at(v, first - v->offset + k, &row) == ci)
        pt__store_i32(offsets + k * 4, (int32_t)(row - lo));
    }
    PT_RETURN_NOT_OK(copy_view(&v->children[ci], lo, hi - lo + 1, out->children[ci], err));
  }
  return PT_OK;
}

/* Copies rows [start, start+len) of view v (relative to the view) into a new
 * compact array *out. */
static int copy_view(const pt__view *v, int64_t start, int64_t len, struct ArrowArray *out,
                     pt_error *err) {
  int nb = pt__type_n_buffers(v->type.id);
  PT_RETURN_NOT_OK(pt__array_init(out, nb, v->n_children, v->dictionary != NULL, err));
  int rc = PT_OK;
  int64_t first = v->offset + start; /* physical index of the first row */
  out->length = len;

  if (v->type.id == PT_TYPE_NA) {
    out->null_count = len;
    return PT_OK;
  }
  if (v->type.id == PT_TYPE_RUN_END_ENCODED) {
    rc = copy_ree(v, start, len, out, err);
    if (rc != PT_OK) goto release_out;
    return PT_OK;
  }
  if (pt__type_is_union(v->type.id)) {
    rc = copy_union(v, first, len, out, err);
    if (rc != PT_OK) goto release_out;
    return PT_OK;
  }

  /* Validity: only kept when some copied row is null. */
  int64_t nulls = 0;
  if (v->validity != NULL) nulls = len - pt__bits_count(v->validity, first, len);
  out->null_count = nulls;
  if (nulls > 0) {
    uint8_t *bits = pt__buffer_alloc_zeroed((len + 7) / 8);
    if (bits == NULL) { rc = copy_oom(err); goto release_out; }
    pt__bits_copy(v->validity, first, bits, 0, len);
    pt__array_set_buffer(out, 0, bits, true);
  }

  int64_t bw = pt__type_bit_width(&v->type);
  int ok = pt__type_offsets_kind(v->type.id);
  if (bw > 0 || v->type.id == PT_TYPE_FIXED_SIZE_BINARY) {
    uint8_t *values = pt__buffer_alloc_zeroed((bw * len + 7) / 8);
    if (values == NULL) { rc = copy_oom(err); goto release_out; }
    if (bw == 1) pt__bits_copy(v->values, first, values, 0, len);
    else if (bw > 0 && len > 0) memcpy(values, v->values + first * (bw / 8), (size_t)(len * (bw / 8)));
    pt__array_set_buffer(out, 1, values, true);
  } else if (ok != 0) {
    int w = ok == 1 ? 4 : 8;
    uint8_t *offsets = pt__buffer_alloc_zeroed((len + 1) * w);
    if (offsets == NULL) { rc = copy_oom(err); goto release_out; }
    pt__array_set_buffer(out, 1, offsets, true);
    int64_t base = 0, end = 0;
    if (len > 0) {
      base = ok == 1 ? pt__load_i32(v->values + first * 4) : pt__load_i64(v->values + first * 8);
      for (int64_t i = 0; i <= len; i++) {
        int64_t o = ok == 1 ? pt__load_i32(v->values + (first + i) * 4)
                            : pt__load_i64(v->values + (first + i) * 8);
        if (ok == 1) pt__store_i32(offsets + i * 4, (int32_t)(o - base));
        else pt__store_i64(offsets + i * 8, o - base);
        end = o;
      }
    }
    if (nb == 3) {
      uint8_t *data = pt__buffer_alloc_zeroed(end - base);
      if (data == NULL) { rc = copy_oom(err); goto release_out; }
      if (end > base) memcpy(data, v->data + base, (size_t)(end - base));
      pt__array_set_buffer(out, 2, data, true);
    } else {
      rc = copy_view(&v->children[0], base, end - base, out->children[0], err);
      if (rc != PT_OK) goto release_out;
    }
  } else if (pt__type_list_view_width(v->type.id)) {
    /* The child over the span the valid rows' ranges cover, offsets rebased
     * to it; null rows become empty. */
    int64_t w = pt__type_list_view_width(v->type.id), lo = INT64_MAX, hi = 0, s, e;
    for (int64_t k = 0; k < len; k++) {
      if (!pt__view_is_valid(v, start + k)) continue;
      pt__view_list_range(v, start + k, &s, &e);
      if (e > s && s < lo) lo = s;
      if (e > s && e > hi) hi = e;
    }
    if (hi == 0) lo = 0;
    uint8_t *offsets = pt__buffer_alloc_zeroed(len * w);
    uint8_t *sizes = pt__buffer_alloc_zeroed(len * w);
    if (offsets) pt__array_set_buffer(out, 1, offsets, true);
    if (sizes) pt__array_set_buffer(out, 2, sizes, true);
    if (offsets == NULL || sizes == NULL) { rc = copy_oom(err); goto release_out; }
    for (int64_t k = 0; k < len; k++) {
      if (!pt__view_is_valid(v, start + k)) continue;
      pt__view_list_range(v, start + k, &s, &e);
      int64_t o = e > s ? s - lo : 0;
      if (w == 4) {
        pt__store_i32(offsets + k * 4, (int32_t)o);
        pt__store_i32(sizes + k * 4, (int32_t)(e - s));
      } else {
        pt__store_i64(offsets + k * 8, o);
        pt__store_i64(sizes + k * 8, e - s);
      }
    }
    rc = copy_view(&v->children[0], lo, hi - lo, out->children[0], err);
    if (rc != PT_OK) goto release_out;
  } else if (pt__type_is_view(v->type.id)) {
    /* One data buffer with the out-of-line bytes of the rows, in order. */
    int64_t total = 0, len_k;
    for (int64_t k = 0; k < len; k++) {
      if (!pt__view_is_valid(v, start + k)) continue;
      pt__view_get_bytes(v, start + k, &len_k);
      if (len_k > 12) total += len_k;
    }
    if (total > INT32_MAX) {
      rc = pt__errorf(err, PT_ERANGE,
                      "a view array of more than 2 GiB out of line cannot be copied at once; "
                      "copy fewer rows");
      goto release_out;
    }
    uint8_t *views = pt__buffer_alloc_zeroed(len * 16);
    uint8_t *data = pt__buffer_alloc_zeroed(total);
    uint8_t *sizes = pt__buffer_alloc_zeroed(8);
    if (views) pt__array_set_buffer(out, 1, views, true);
    if (data) pt__array_set_buffer(out, 2, data, true);
    if (sizes) pt__array_set_buffer(out, 3, sizes, true);
    if (views == NULL || data == NULL || sizes == NULL) { rc = copy_oom(err); goto release_out; }
    pt__store_i64(sizes, total);
    int64_t pos = 0;
    for (int64_t k = 0; k < len; k++) {
      if (!pt__view_is_valid(v, start + k)) continue; /* null: a zero view */
      const uint8_t *p = pt__view_get_bytes(v, start + k, &len_k);
      pt__view_make(views + k * 16, p, (int32_t)len_k, 0, (int32_t)pos);
      if (len_k > 12) {
        memcpy(data + pos, p, (size_t)len_k);
        pos += len_k;
      }
    }
  } else if (v->type.id == PT_TYPE_FIXED_SIZE_LIST) {
    int64_t n = v->type.list_size;
    rc = copy_view(&v->children[0], first * n, len * n, out->children[0], err);
    if (rc != PT_OK) goto release_out;
  } else if (v->type.id == PT_TYPE_STRUCT) {
    for (int64_t i = 0; i < v->n_children; i++) {
      rc = copy_view(&v->children[i], first, len, out->children[i], err);
      if (rc != PT_OK) goto release_out;
    }
  }
  if (v->dictionary != NULL) {
    rc = copy_view(v->dictionary, 0, v->dictionary->length, out->dictionary, err);
    if (rc != PT_OK) goto release_out;
  }
  return PT_OK;

release_out:
  out->release(out);
  return rc;
}

int pt_array_copy(const struct ArrowSchema *schema, const struct ArrowArray *array,
                  struct ArrowArray *out, pt_error *err) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (out == NULL) return pt__errorf(err, PT_EINVAL, "copy: out must not be NULL");
  pt__view v;
  PT_RETURN_NOT_OK(pt__view_init(&v, schema, array, err));
  /* Reading out of bounds is worse than a second pass: check first. */
  int rc = pt__view_validate(&v, NULL, NULL, err);
  if (rc == PT_OK) rc = copy_view(&v, 0, v.length, out, err);
  pt__view_reset(&v);
  return rc;
}
