/* flatbuf.h — a small FlatBuffers codec for the Arrow IPC metadata: a reader
 * that checks every offset against the buffer before following it (inputs are
 * untrusted files and sockets), and a builder that lays tables out back to
 * front as the reference implementation does, with natural alignment so that
 * verifying readers of other Arrow libraries accept what it writes.
 *
 * Reader errors are sticky: the first bad offset marks the reader and every
 * later access returns defaults, so decoding code can read many fields and
 * check pt__fb_reader.bad once. Written from the FlatBuffers binary format
 * description (little-endian, uoffset/soffset 32-bit, vtables of uint16).
 */
#ifndef PT_ARROW_FLATBUF_H
#define PT_ARROW_FLATBUF_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

/* ------------------------------------------------------------------------ */
/* Reader */

/* Nesting deeper than this (tables inside tables) is refused: it bounds the
 * recursion of whoever walks the tree. */
#define PT_FB_MAX_DEPTH 64

typedef struct pt__fb_reader {
  const uint8_t *buf;
  uint32_t size;      /* bytes in buf; at most INT32_MAX */
  int64_t budget;     /* table opens left; bounds work on shared sub-tables */
  const char *bad;    /* NULL while fine; else what was wrong (static text) */
} pt__fb_reader;

typedef struct pt__fb_table {
  pt__fb_reader *r;   /* NULL for an absent table */
  uint32_t pos;       /* table start in buf */
  uint32_t vt;        /* vtable start in buf */
  uint16_t vt_size;   /* vtable bytes */
  uint16_t inline_size; /* bytes of the table's own inline fields */
  int depth;          /* 0 for the root */
} pt__fb_table;

typedef struct pt__fb_vec {
  pt__fb_reader *r;   /* NULL for an absent vector (then len is 0) */
  uint32_t pos;       /* first element */
  uint32_t len;       /* elements */
  uint32_t elem_size; /* bytes per element (4 for offsets to tables/strings) */
  int depth;          /* of the table holding the vector */
} pt__fb_vec;

/* Starts reading buf[0, size): on success *root is the root table. Returns
 * false (and sets r->bad) when the root offset or table is out of bounds. */
bool pt__fb_reader_init(pt__fb_reader *r, const void *buf, int64_t size, pt__fb_table *root);

/* Whether field id is present in the table's vtable. */
bool pt__fb_has(const pt__fb_table *t, int id);

/* Scalars: the value of field id, or def when absent (or the reader bad). */
bool pt__fb_bool(const pt__fb_table *t, int id, bool def);
int8_t pt__fb_i8(const pt__fb_table *t, int id, int8_t def);
uint8_t pt__fb_u8(const pt__fb_table *t, int id, uint8_t def);
int16_t pt__fb_i16(const pt__fb_table *t, int id, int16_t def);
int32_t pt__fb_i32(const pt__fb_table *t, int id, int32_t def);
int64_t pt__fb_i64(const pt__fb_table *t, int id, int64_t def);

/* Sub-table at field id. Returns false when absent (out->r = NULL) or bad. */
bool pt__fb_table_get(const pt__fb_table *t, int id, pt__fb_table *out);
/* String at field id: *s points into the buffer (NUL-terminated, checked),
 * *len bytes before the NUL. false when absent or bad (*s = NULL, *len = 0). */
bool pt__fb_string(const pt__fb_table *t, int id, const char **s, uint32_t *len);
/* Inline struct of `size` bytes at field id: a pointer into the buffer, or
 * NULL when absent or bad. */
const uint8_t *pt__fb_struct(const pt__fb_table *t, int id, uint32_t size);
/* Vector at field id with elements of elem_size bytes (structs inline, or 4
 * for tables and strings). false when absent (len 0) or bad. */
bool pt__fb_vector(const pt__fb_table *t, int id, uint32_t elem_size, pt__fb_vec *out);
/* Element i (< v->len, checked) of a vector. */
const uint8_t *pt__fb_vec_elem(const pt__fb_vec *v, uint32_t i);
bool pt__fb_vec_table(const pt__fb_vec *v, uint32_t i, pt__fb_table *out);
bool pt__fb_vec_string(const pt__fb_vec *v, uint32_t i, const char **s, uint32_t *len);
int64_t pt__fb_vec_i64(const pt__fb_vec *v, uint32_t i);

/* ------------------------------------------------------------------------ */
/* Builder
 *
 * Objects are written from the end of the buffer towards its start, children
 * before their parents, so every uoffset points forward as the format wants.
 * An object is named by its distance from the end of the buffer (pt__fb_ref),
 * which stays valid as the buffer grows. Errors (out of memory, misuse) are
 * sticky too: check pt__fb_builder_finish's status. */

typedef uint32_t pt__fb_ref;

#define PT_FB_MAX_FIELDS 16

typedef struct pt__fb_builder {
  uint8_t *buf;        /* owned (pt__malloc); data in buf[cap - used, cap) */
  uint32_t cap;
  uint32_t used;
  uint32_t minalign;   /* largest alignment needed so far */
  int status;          /* PT_OK or the first failure */
  /* The table being built (tables cannot nest while being built). */
  bool in_table;
  pt__fb_ref table_start;
  int n_fields;        /* 1 + highest field id added */
  pt__fb_ref fields[PT_FB_MAX_FIELDS]; /* 0 = absent */
  /* Vector being built. */
  bool in_vector;
  uint32_t vec_len;
} pt__fb_builder;

void pt__fb_builder_init(pt__fb_builder *b);
void pt__fb_builder_reset(pt__fb_builder *b); /* frees */

/* Strings and vectors are built outside tables (before the table that refers
 * to them). */
pt__fb_ref pt__fb_create_string(pt__fb_builder *b, const char *s, size_t len);
/* A vector of n elements of elem_size bytes each, aligned to align, copied
 * from data (structs or scalars, little-endian). */
pt__fb_ref pt__fb_create_vector(pt__fb_builder *b, const void *data, uint32_t n,
                                uint32_t elem_size, uint32_t align);
/* A vector of n offsets to objects already built. */
pt__fb_ref pt__fb_create_ref_vector(pt__fb_builder *b, const pt__fb_ref *refs, uint32_t n);

void pt__fb_table_start(pt__fb_builder *b);
/* Scalars: not written when equal to the schema default def, as flatc does. */
void pt__fb_add_bool(pt__fb_builder *b, int id, bool v, bool def);
void pt__fb_add_i8(pt__fb_builder *b, int id, int8_t v, int8_t def);
void pt__fb_add_u8(pt__fb_builder *b, int id, uint8_t v, uint8_t def);
void pt__fb_add_i16(pt__fb_builder *b, int id, int16_t v, int16_t def);
void pt__fb_add_i32(pt__fb_builder *b, int id, int32_t v, int32_t def);
void pt__fb_add_i64(pt__fb_builder *b, int id, int64_t v, int64_t def);
/* Scalars written even when equal to the default (the union type field,
 * fields other readers require to be present). */
void pt__fb_add_i16_always(pt__fb_builder *b, int id, int16_t v);
/* Offset to an object already built (string, vector, table). 0 = skip. */
void pt__fb_add_ref(pt__fb_builder *b, int id, pt__fb_ref ref);
/* Inline struct of size bytes aligned to align. */
void pt__fb_add_struct(pt__fb_builder *b, int id, const void *data, uint32_t size,
                       uint32_t align);
pt__fb_ref pt__fb_table_end(pt__fb_builder *b);

/* Writes the root offset. On PT_OK *data points to *size bytes inside the
 * builder (valid until reset); the first byte is aligned as the content
 * needs when placed at an 8-byte-aligned address. */
int pt__fb_builder_finish(pt__fb_builder *b, pt__fb_ref root, const uint8_t **data,
                          uint32_t *size);

#endif /* PT_ARROW_FLATBUF_H */
