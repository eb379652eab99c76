/* flatbuf.c — the FlatBuffers reader (bounds-checked, sticky errors) and the
 * back-to-front builder declared in flatbuf.h. Layout reminders: a table
 * starts with an int32 soffset to its vtable (vtable = table - soffset); a
 * vtable is uint16 [vtable bytes, table inline bytes, field offsets...] with 0
 * meaning absent; references to strings, vectors and tables are uint32
 * offsets relative to where the offset itself is stored; strings and vectors
 * start with a uint32 element count.
 */
#include "arrow/flatbuf.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* Reader */

static void set_bad(pt__fb_reader *r, const char *what) {
  if (r->bad == NULL) r->bad = what;
}

/* Opens the table at pos; all of its header and vtable must lie inside. */
static bool open_table(pt__fb_reader *r, uint64_t pos, int depth, pt__fb_table *out) {
  memset(out, 0, sizeof *out);
  if (r->bad) return false;
  if (depth > PT_FB_MAX_DEPTH) {
    set_bad(r, "tables nested too deeply");
    return false;
  }
  if (--r->budget < 0) {
    set_bad(r, "too many tables (shared or cyclic references?)");
    return false;
  }
  if (pos + 4 > r->size) {
    set_bad(r, "table offset out of range");
    return false;
  }
  int64_t vt = (int64_t)pos - (int64_t)pt__load_i32(r->buf + pos);
  if (vt < 0 || (uint64_t)vt + 4 > r->size) {
    set_bad(r, "vtable offset out of range");
    return false;
  }
  uint16_t vt_size = pt__load_u16(r->buf + vt);
  uint16_t inline_size = pt__load_u16(r->buf + vt + 2);
  if (vt_size < 4 || (vt_size & 1) || (uint64_t)vt + vt_size > r->size) {
    set_bad(r, "vtable size out of range");
    return false;
  }
  if (inline_size < 4 || pos + inline_size > r->size) {
    set_bad(r, "table size out of range");
    return false;
  }
  out->r = r;
  out->pos = (uint32_t)pos;
  out->vt = (uint32_t)vt;
  out->vt_size = vt_size;
  out->inline_size = inline_size;
  out->depth = depth;
  return true;
}

bool pt__fb_reader_init(pt__fb_reader *r, const void *buf, int64_t size, pt__fb_table *root) {
  memset(r, 0, sizeof *r);
  memset(root, 0, sizeof *root);
  r->buf = buf;
  if (size < 8 || size > INT32_MAX) {
    r->bad = size < 8 ? "flatbuffer too short" : "flatbuffer larger than 2 GiB";
    return false;
  }
  r->size = (uint32_t)size;
  /* A table takes at least 4 bytes and honest decoding opens each a few
   * times, but tables can be shared: without a bound, a small buffer whose
   * fields all point at the same children could make a walker do
   * exponential work (and build exponentially many schema nodes). */
  r->budget = (int64_t)size / 2 + 1024;
  return open_table(r, pt__load_u32(r->buf), 0, root);
}

/* Position of field id's inline data (size bytes), or 0 if absent/bad. */
static uint32_t field_pos(const pt__fb_table *t, int id, uint32_t size) {
  if (t->r == NULL || t->r->bad || id < 0) return 0;
  uint32_t idx = 4 + 2 * (uint32_t)id;
  if (idx + 2 > t->vt_size) return 0;
  uint16_t fo = pt__load_u16(t->r->buf + t->vt + idx);
  if (fo == 0) return 0;
  if (fo < 4 || (uint32_t)fo + size > t->inline_size) {
    set_bad(t->r, "field lies outside its table");
    return 0;
  }
  return t->pos + fo;
}

bool pt__fb_has(const pt__fb_table *t, int id) { return field_pos(t, id, 0) != 0; }

#define SCALAR_GETTER(name, type, width, load)                                 \
  type name(const pt__fb_table *t, int id, type def) {                         \
    uint32_t p = field_pos(t, id, width);                                      \
    if (p == 0) return def;                                                    \
    return (type)load(t->r->buf + p);                                          \
  }

static inline uint8_t load_u8(const uint8_t *p) { return p[0]; }
SCALAR_GETTER(pt__fb_i8, int8_t, 1, load_u8)
SCALAR_GETTER(pt__fb_u8, uint8_t, 1, load_u8)
SCALAR_GETTER(pt__fb_i16, int16_t, 2, pt__load_u16)
SCALAR_GETTER(pt__fb_i32, int32_t, 4, pt__load_i32)
SCALAR_GETTER(pt__fb_i64, int64_t, 8, pt__load_i64)

bool pt__fb_bool(const pt__fb_table *t, int id, bool def) {
  return pt__fb_u8(t, id, def ? 1 : 0) != 0;
}

/* Follows the uoffset stored at p: the target position, or 0 on failure. */
static uint64_t deref(pt__fb_reader *r, uint32_t p) {
  uint64_t target = (uint64_t)p + pt__load_u32(r->buf + p);
  if (target >= r->size) {
    set_bad(r, "offset out of range");
    return 0;
  }
  return target;
}

bool pt__fb_table_get(const pt__fb_table *t, int id, pt__fb_table *out) {
  memset(out, 0, sizeof *out);
  uint32_t p = field_pos(t, id, 4);
  if (p == 0) return false;
  uint64_t target = deref(t->r, p);
  if (target == 0) return false;
  return open_table(t->r, target, t->depth + 1, out);
}

static bool read_string(pt__fb_reader *r, uint64_t target, const char **s, uint32_t *len) {
  if (target == 0 || target + 4 > r->size) {
    set_bad(r, "string offset out of range");
    return false;
  }
  uint32_t n = pt__load_u32(r->buf + target);
  if (target + 4 + (uint64_t)n + 1 > r->size) {
    set_bad(r, "string runs past the end of the buffer");
    return false;
  }
  if (r->buf[target + 4 + n] != 0) {
    set_bad(r, "string is not NUL-terminated");
    return false;
  }
  *s = (const char *)r->buf + target + 4;
  *len = n;
  return true;
}

bool pt__fb_string(const pt__fb_table *t, int id, const char **s, uint32_t *len) {
  *s = NULL;
  *len = 0;
  uint32_t p = field_pos(t, id, 4);
  if (p == 0) return false;
  return read_string(t->r, deref(t->r, p), s, len);
}

const uint8_t *pt__fb_struct(const pt__fb_table *t, int id, uint32_t size) {
  uint32_t p = field_pos(t, id, size);
  return p ? t->r->buf + p : NULL;
}

bool pt__fb_vector(const pt__fb_table *t, int id, uint32_t elem_size, pt__fb_vec *out) {
  memset(out, 0, sizeof *out);
  uint32_t p = field_pos(t, id, 4);
  if (p == 0) return false;
  pt__fb_reader *r = t->r;
  uint64_t target = deref(r, p);
  if (target == 0 || target + 4 > r->size) {
    set_bad(r, "vector offset out of range");
    return false;
  }
  uint32_t n = pt__load_u32(r->buf + target);
  if ((uint64_t)n * elem_size > r->size - target - 4) {
    set_bad(r, "vector runs past the end of the buffer");
    return false;
  }
  out->r = r;
  out->pos = (uint32_t)target + 4;
  out->len = n;
  out->elem_size = elem_size;
  out->depth = t->depth;
  return true;
}

const uint8_t *pt__fb_vec_elem(const pt__fb_vec *v, uint32_t i) {
  if (v->r == NULL || v->r->bad) return NULL;
  if (i >= v->len) {
    set_bad(v->r, "vector index out of range");
    return NULL;
  }
  return v->r->buf + v->pos + (uint64_t)i * v->elem_size;
}

bool pt__fb_vec_table(const pt__fb_vec *v, uint32_t i, pt__fb_table *out) {
  memset(out, 0, sizeof *out);
  const uint8_t *e = pt__fb_vec_elem(v, i);
  if (e == NULL) return false;
  uint64_t target = deref(v->r, (uint32_t)(e - v->r->buf));
  if (target == 0) return false;
  return open_table(v->r, target, v->depth + 1, out);
}

bool pt__fb_vec_string(const pt__fb_vec *v, uint32_t i, const char **s, uint32_t *len) {
  *s = NULL;
  *len = 0;
  const uint8_t *e = pt__fb_vec_elem(v, i);
  if (e == NULL) return false;
  return read_string(v->r, deref(v->r, (uint32_t)(e - v->r->buf)), s, len);
}

int64_t pt__fb_vec_i64(const pt__fb_vec *v, uint32_t i) {
  const uint8_t *e = pt__fb_vec_elem(v, i);
  return e ? pt__load_i64(e) : 0;
}

/* ------------------------------------------------------------------------ */
/* Builder */

/* The largest buffer we build; IPC metadata is tiny in comparison. */
#define FB_MAX_SIZE ((uint32_t)INT32_MAX)

void pt__fb_builder_init(pt__fb_builder *b) { memset(b, 0, sizeof *b); b->minalign = 1; }

void pt__fb_builder_reset(pt__fb_builder *b) {
  pt__free(b->buf);
  pt__fb_builder_init(b);
}

static bool ensure(pt__fb_builder *b, uint32_t n) {
  if (b->status != PT_OK) return false;
  if (b->cap - b->used >= n) return true;
  if ((uint64_t)b->used + n > FB_MAX_SIZE) {
    b->status = PT_ERANGE;
    return false;
  }
  uint64_t cap = b->cap ? (uint64_t)b->cap * 2 : 512;
  while (cap < (uint64_t)b->used + n) cap *= 2;
  if (cap > FB_MAX_SIZE) cap = FB_MAX_SIZE;
  uint8_t *nb = pt__malloc((size_t)cap);
  if (nb == NULL) {
    b->status = PT_ENOMEM;
    return false;
  }
  if (b->used) memcpy(nb + cap - b->used, b->buf + b->cap - b->used, b->used);
  pt__free(b->buf);
  b->buf = nb;
  b->cap = (uint32_t)cap;
  return true;
}

static void push(pt__fb_builder *b, const void *data, uint32_t n) {
  if (n == 0 || !ensure(b, n)) return;
  b->used += n;
  memcpy(b->buf + b->cap - b->used, data, n);
}

static void push_zeros(pt__fb_builder *b, uint32_t n) {
  if (n == 0 || !ensure(b, n)) return;
  b->used += n;
  memset(b->buf + b->cap - b->used, 0, n);
}

/* Pads so that after `additional` more bytes the distance from the end is a
 * multiple of align (a power of two <= 8). */
static void prep(pt__fb_builder *b, uint32_t align, uint32_t additional) {
  if (align > b->minalign) b->minalign = align;
  uint32_t pad = (uint32_t)(-(b->used + additional)) & (align - 1);
  push_zeros(b, pad);
}

static void push_u32(pt__fb_builder *b, uint32_t v) { push(b, &v, 4); }

pt__fb_ref pt__fb_create_string(pt__fb_builder *b, const char *s, size_t len) {
  if (b->in_table || b->in_vector) b->status = b->status ? b->status : PT_EINTERNAL;
  if (len > FB_MAX_SIZE) {
    b->status = PT_ERANGE;
    return 0;
  }
  prep(b, 4, (uint32_t)len + 1);
  push_zeros(b, 1);
  push(b, s, (uint32_t)len);
  push_u32(b, (uint32_t)len);
  return b->status == PT_OK ? b->used : 0;
}

pt__fb_ref pt__fb_create_vector(pt__fb_builder *b, const void *data, uint32_t n,
                                uint32_t elem_size, uint32_t align) {
  if (b->in_table) b->status = b->status ? b->status : PT_EINTERNAL;
  uint64_t bytes = (uint64_t)n * elem_size;
  if (bytes > FB_MAX_SIZE) {
    b->status = PT_ERANGE;
    return 0;
  }
  prep(b, 4, (uint32_t)bytes);
  prep(b, align, (uint32_t)bytes);
  push(b, data, (uint32_t)bytes);
  push_u32(b, n);
  return b->status == PT_OK ? b->used : 0;
}

pt__fb_ref pt__fb_create_ref_vector(pt__fb_builder *b, const pt__fb_ref *refs, uint32_t n) {
  if (b->in_table) b->status = b->status ? b->status : PT_EINTERNAL;
  if ((uint64_t)n * 4 > FB_MAX_SIZE) {
    b->status = PT_ERANGE;
    return 0;
  }
  prep(b, 4, 4 * n);
  for (uint32_t i = n; i-- > 0;) push_u32(b, b->used + 4 - refs[i]);
  push_u32(b, n);
  return b->status == PT_OK ? b->used : 0;
}

void pt__fb_table_start(pt__fb_builder *b) {
  if (b->in_table) b->status = b->status ? b->status : PT_EINTERNAL;
  b->in_table = true;
  b->n_fields = 0;
  memset(b->fields, 0, sizeof b->fields);
  b->table_start = b->used;
}

static void note_field(pt__fb_builder *b, int id) {
  if (id < 0 || id >= PT_FB_MAX_FIELDS || !b->in_table) {
    if (b->status == PT_OK) b->status = PT_EINTERNAL;
    return;
  }
  b->fields[id] = b->used;
  if (id + 1 > b->n_fields) b->n_fields = id + 1;
}

static void add_scalar(pt__fb_builder *b, int id, const void *v, uint32_t size) {
  prep(b, size, size);
  push(b, v, size);
  note_field(b, id);
}

void pt__fb_add_bool(pt__fb_builder *b, int id, bool v, bool def) {
  if (v == def) return;
  uint8_t x = v ? 1 : 0;
  add_scalar(b, id, &x, 1);
}
void pt__fb_add_i8(pt__fb_builder *b, int id, int8_t v, int8_t def) {
  if (v != def) add_scalar(b, id, &v, 1);
}
void pt__fb_add_u8(pt__fb_builder *b, int id, uint8_t v, uint8_t def) {
  if (v != def) add_scalar(b, id, &v, 1);
}
void pt__fb_add_i16(pt__fb_builder *b, int id, int16_t v, int16_t def) {
  if (v != def) add_scalar(b, id, &v, 2);
}
void pt__fb_add_i16_always(pt__fb_builder *b, int id, int16_t v) { add_scalar(b, id, &v, 2); }
void pt__fb_add_i32(pt__fb_builder *b, int id, int32_t v, int32_t def) {
  if (v != def) add_scalar(b, id, &v, 4);
}
void pt__fb_add_i64(pt__fb_builder *b, int id, int64_t v, int64_t def) {
  if (v != def) add_scalar(b, id, &v, 8);
}

void pt__fb_add_ref(pt__fb_builder *b, int id, pt__fb_ref ref) {
  if (ref == 0) return;
  prep(b, 4, 4);
  push_u32(b, b->used + 4 - ref);
  note_field(b, id);
}

void pt__fb_add_struct(pt__fb_builder *b, int id, const void *data, uint32_t size,
                       uint32_t align) {
  prep(b, align, size);
  push(b, data, size);
  note_field(b, id);
}

pt__fb_ref pt__fb_table_end(pt__fb_builder *b) {
  if (!b->in_table) {
    if (b->status == PT_OK) b->status = PT_EINTERNAL;
    return 0;
  }
  b->in_table = false;
  prep(b, 4, 4);
  push_zeros(b, 4); /* the soffset, patched below */
  pt__fb_ref table = b->used;
  uint32_t inline_size = table - b->table_start;
  if (inline_size > UINT16_MAX && b->status == PT_OK) b->status = PT_ERANGE;
  /* The vtable goes just before the table; fields are pushed last to first
   * because the buffer grows towards its start. */
  for (int id = b->n_fields; id-- > 0;) {
    uint16_t fo = b->fields[id] ? (uint16_t)(table - b->fields[id]) : 0;
    push(b, &fo, 2);
  }
  uint16_t sizes[2] = {(uint16_t)(4 + 2 * b->n_fields), (uint16_t)inline_size};
  push(b, sizes, 4);
  if (b->status != PT_OK) return 0;
  pt__fb_ref vt = b->used;
  pt__store_i32(b->buf + b->cap - table, (int32_t)(vt - table));
  return table;
}

int pt__fb_builder_finish(pt__fb_builder *b, pt__fb_ref root, const uint8_t **data,
                          uint32_t *size) {
  if (b->in_table || root == 0) {
    if (b->status == PT_OK) b->status = PT_EINTERNAL;
  }
  if (b->minalign < 8) b->minalign = 8;
  prep(b, b->minalign, 4);
  push_u32(b, b->used + 4 - root);
  if (b->status != PT_OK) return b->status;
  *data = b->buf + b->cap - b->used;
  *size = b->used;
  return PT_OK;
}
