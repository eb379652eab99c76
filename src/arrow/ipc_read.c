/* ipc_read.c — reading Arrow IPC streams and files as ArrowArrayStreams.
 *
 * Input is either a memory region (a mapped file or caller's bytes), read in
 * place, or a file descriptor read message by message. Uncompressed buffers of
 * a region are used where they lie: every array holds a reference on the
 * region (pt__shared), so it stays mapped until the last array and the stream
 * are released. Everything read is untrusted: each offset is checked before
 * use, allocations are bounded by the input actually present, and every
 * decoded array passes pt__view_validate with the true buffer sizes.
 * Compressed buffers of a batch are decompressed together on the worker pool
 * (pool.h) before the batch is walked.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arrow/ipc_int.h"
#include "arrow/kernels.h"
#include "arrow/pool.h"

/* Backing for empty buffers (and the single zero offset of empty arrays):
 * consumers get a valid pointer to readable zeros. */
static const uint8_t empty_buffer[64] __attribute__((aligned(64)));

/* ------------------------------------------------------------------------ */
/* Reader state */

enum { SRC_REGION, SRC_FD };

typedef struct dict_slot {
  int64_t id;
  const struct ArrowSchema *node; /* the dictionary-encoded node in r->schema */
  pt__shared *cur; /* the current dictionary (data: struct ArrowArray *); NULL before any */
  struct ArrowSchema vvalues; /* node->dictionary with inner dictionaries as null type */
} dict_slot;

struct prebuf;

/* Buffers of a later record batch decompressed ahead, with an earlier
 * batch's (decode_record_batch), waiting for their batch. */
typedef struct ahead {
  int64_t pos;          /* where the batch's message starts in the input */
  struct prebuf *pre;   /* owned, n_pre */
  uint32_t n_pre;
  pt__shared *zregion;  /* our reference, or NULL */
  const uint8_t *zblock;
  int64_t zsize;
} ahead;

/* Batches decompressed ahead at most. */
#define MAX_AHEAD 4

typedef struct reader {
  int src;
  /* SRC_REGION */
  const uint8_t *data;
  int64_t size;        /* bytes of data the stream part may use (file: up to the footer) */
  pt__shared *region;  /* our reference; arrays take their own */
  int64_t pos;         /* next message */
  bool is_file;
  int64_t *batch_offsets; /* file: where each record batch message starts */
  int64_t n_file_batches, next_file_batch;
  /* SRC_FD */
  int fd;
  bool own_fd;
  bool first_read;     /* nothing read from fd yet (a file magic may come) */
  /* Both */
  struct ArrowSchema schema;
  /* schema with each dictionary's value type replaced by the null type:
   * batches are validated against it with stand-ins for their dictionaries,
   * which were validated once when read. */
  struct ArrowSchema vschema;
  pt__ipc_dicts ids;
  dict_slot *slots;    /* one per ids entry */
  int64_t n_batches;   /* record batches decoded so far */
  int64_t n_messages;  /* messages read so far */
  bool finished;
  int failed;          /* sticky get_next status (PT_*), 0 while fine */
  ahead ahead[MAX_AHEAD]; /* SRC_REGION: n_ahead batches decompressed ahead */
  int n_ahead;
  char last_error[PT_ERROR_SIZE];
} reader;

/* One message: its metadata (parsed) and body. */
typedef struct message {
  pt__fb_reader fb;
  pt__fb_table root;
  pt__fb_table header;
  uint8_t type;
  int16_t version;    /* metadata version (PT_IPC_V4 or PT_IPC_V5) */
  bool eos;
  const uint8_t *body;
  int64_t body_size;
  pt__shared *region; /* what body lies in (a reference we own), or NULL */
  uint8_t *meta;      /* owned metadata bytes (fd input) */
} message;

static void message_reset(message *m) {
  pt__free(m->meta);
  pt__shared_unref(m->region);
  memset(m, 0, sizeof *m);
}

static int fb_error(const pt__fb_reader *r, pt_error *err) {
  return pt__errorf(err, PT_EFORMAT, "corrupt metadata flatbuffer: %s", r->bad);
}

static int check_version(int16_t v, pt_error *err) {
  if (v == PT_IPC_V4 || v == PT_IPC_V5) return PT_OK;
  if (v >= 0 && v < PT_IPC_V4)
    return pt__errorf(err, PT_ENOTSUP,
                      "metadata version V%d is not supported (only V4 and V5, written by "
                      "Arrow 0.8 and later)", v + 1);
  return pt__errorf(err, PT_ENOTSUP, "unknown metadata version %d", v);
}

/* Parses metadata meta[0, len) into m; *body_len gets Message.bodyLength. */
static int parse_metadata(message *m, const uint8_t *meta, int64_t len, int64_t *body_len,
                          pt_error *err) {
  if (!pt__fb_reader_init(&m->fb, meta, len, &m->root)) return fb_error(&m->fb, err);
  int16_t version = pt__fb_i16(&m->root, MSG_VERSION, 0);
  m->version = version;
  m->type = pt__fb_u8(&m->root, MSG_HEADER_TYPE, 0);
  bool has_header = pt__fb_table_get(&m->root, MSG_HEADER, &m->header);
  *body_len = pt__fb_i64(&m->root, MSG_BODY_LENGTH, 0);
  if (m->fb.bad) return fb_error(&m->fb, err);
  PT_RETURN_NOT_OK(check_version(version, err));
  if (*body_len < 0)
    return pt__errorf(err, PT_EFORMAT, "negative body length %lld", (long long)*body_len);
  if (m->type == PT_IPC_HDR_NONE || m->type > PT_IPC_HDR_SPARSE_TENSOR)
    return pt__errorf(err, PT_EFORMAT, "unknown message type %d", m->type);
  if (m->type == PT_IPC_HDR_TENSOR || m->type == PT_IPC_HDR_SPARSE_TENSOR)
    return pt__errorf(err, PT_ENOTSUP, "tensor messages are not supported");
  if (!has_header) return pt__errorf(err, PT_EFORMAT, "message has no header");
  return PT_OK;
}

/* Reads the message starting at data[pos] (data holds size bytes). */
static int read_message_region(reader *r, int64_t pos, int64_t size, message *m, int64_t *next,
                               pt_error *err) {
  memset(m, 0, sizeof *m);
  const uint8_t *d = r->data;
  if (pos == size) {
    m->eos = true; /* input ends without an end-of-stream marker: allowed */
    *next = pos;
    return PT_OK;
  }
  if (pos < 0 || pos > size || size - pos < 4)
    return pt__errorf(err, PT_EFORMAT, "truncated: %lld bytes left where a message starts",
                      (long long)(size - pos));
  int64_t prefix = 4;
  int32_t len = pt__load_i32(d + pos);
  if (pt__load_u32(d + pos) == PT_IPC_CONTINUATION) {
    if (size - pos < 8)
      return pt__errorf(err, PT_EFORMAT, "truncated: message length missing");
    len = pt__load_i32(d + pos + 4);
    prefix = 8;
  }
  if (len == 0) {
    m->eos = true;
    *next = pos + prefix;
    return PT_OK;
  }
  if (len < 0) return pt__errorf(err, PT_EFORMAT, "negative metadata length %d", (int)len);
  int64_t meta_at = pos + prefix;
  if (len > size - meta_at)
    return pt__errorf(err, PT_EFORMAT,
                      "truncated: metadata of %d bytes but only %lld bytes left", (int)len,
                      (long long)(size - meta_at));
  int64_t body_len;
  PT_RETURN_NOT_OK(parse_metadata(m, d + meta_at, len, &body_len, err));
  int64_t body_at = meta_at + len;
  if (body_len > size - body_at)
    return pt__errorf(err, PT_EFORMAT, "truncated: body of %lld bytes but only %lld bytes left",
                      (long long)body_len, (long long)(size - body_at));
  m->body = d + body_at;
  m->body_size = body_len;
  m->region = r->region;
  if (m->region) pt__shared_ref(m->region);
  *next = body_at + body_len;
  return PT_OK;
}

/* Reads up to n bytes; *got < n only at end of input. */
static int read_some(int fd, uint8_t *buf, int64_t n, int64_t *got, pt_error *err) {
  *got = 0;
  while (*got < n) {
    size_t chunk = (size_t)(n - *got > (1 << 30) ? (1 << 30) : n - *got);
    ssize_t k = read(fd, buf + *got, chunk);
    if (k < 0) {
      if (errno == EINTR) continue;
      return pt__errorf(err, PT_EIO, "read failed: %s", strerror(errno));
    }
    if (k == 0) break;
    *got += k;
  }
  return PT_OK;
}

/* Reads exactly n bytes into a new 64-byte aligned buffer that grows as the
 * bytes arrive, so that a lying length costs only what the input holds. */
static int read_growing(int fd, int64_t n, const char *what, uint8_t **out, pt_error *err) {
  *out = NULL;
  const int64_t first = INT64_C(8) << 20;
  int64_t cap = n < first ? n : first, have = 0;
  uint8_t *buf = pt__malloc_aligned((size_t)(cap ? cap : 1));
  if (buf == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory reading %s", what);
  for (;;) {
    int64_t got;
    int rc = read_some(fd, buf + have, cap - have, &got, err);
    if (rc != PT_OK) {
      pt__free(buf);
      return rc;
    }
    have += got;
    if (have == n) break;
    if (have < cap) {
      pt__free(buf);
      return pt__errorf(err, PT_EFORMAT, "truncated: %s of %lld bytes ends after %lld", what,
                        (long long)n, (long long)have);
    }
    int64_t ncap = cap * 2 > n ? n : cap * 2;
    uint8_t *nb = pt__malloc_aligned((size_t)ncap);
    if (nb == NULL) {
      pt__free(buf);
      return pt__errorf(err, PT_ENOMEM, "out of memory reading %s of %lld bytes", what,
                        (long long)n);
    }
    memcpy(nb, buf, (size_t)have);
    pt__free(buf);
    buf = nb;
    cap = ncap;
  }
  *out = buf;
  return PT_OK;
}

static void free_body(void *data, void *arg) { pt__free(data); }

static int read_message_fd(reader *r, message *m, pt_error *err) {
  memset(m, 0, sizeof *m);
  uint8_t pre[8];
  int64_t got;
  PT_RETURN_NOT_OK(read_some(r->fd, pre, 4, &got, err));
  if (r->first_read && got == 4 && memcmp(pre, "ARRO", 4) == 0) {
    /* A file read as a stream: skip the magic, the stream follows. */
    PT_RETURN_NOT_OK(read_some(r->fd, pre, 4, &got, err));
    if (got < 4 || memcmp(pre, "W1\0\0", 4) != 0)
      return pt__errorf(err, PT_EFORMAT, "not an Arrow IPC stream or file");
    PT_RETURN_NOT_OK(read_some(r->fd, pre, 4, &got, err));
  }
  r->first_read = false;
  if (got == 0) {
    m->eos = true;
    return PT_OK;
  }
  if (got < 4) return pt__errorf(err, PT_EFORMAT, "truncated: message prefix cut short");
  int32_t len = pt__load_i32(pre);
  if (pt__load_u32(pre) == PT_IPC_CONTINUATION) {
    PT_RETURN_NOT_OK(read_some(r->fd, pre + 4, 4, &got, err));
    if (got < 4) return pt__errorf(err, PT_EFORMAT, "truncated: message length missing");
    len = pt__load_i32(pre + 4);
  }
  if (len == 0) {
    m->eos = true;
    return PT_OK;
  }
  if (len < 0) return pt__errorf(err, PT_EFORMAT, "negative metadata length %d", (int)len);
  PT_RETURN_NOT_OK(read_growing(r->fd, len, "metadata", &m->meta, err));
  int64_t body_len;
  PT_RETURN_NOT_OK(parse_metadata(m, m->meta, len, &body_len, err));
  if (body_len > 0) {
    uint8_t *body;
    PT_RETURN_NOT_OK(read_growing(r->fd, body_len, "message body", &body, err));
    m->region = pt__shared_new(body, free_body, NULL);
    if (m->region == NULL) {
      pt__free(body);
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    }
    m->body = body;
    m->body_size = body_len;
  } else {
    m->body = empty_buffer;
  }
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Decoding record batches */

typedef struct size_entry {
  const struct ArrowArray *array;
  int64_t size[3]; /* bytes behind each buffer */
  bool offsets_sorted; /* buffer 1 (offsets) was checked non-decreasing whole */
} size_entry;

typedef struct decoder {
  reader *r;
  const uint8_t *body;
  int64_t body_size;
  pt__shared *region;
  pt_compression codec;
  pt__fb_vec nodes, buffers;
  uint32_t node_i, buf_i;
  size_entry *sizes;
  int64_t n_sizes, cap_sizes;
  struct prebuf *pre; /* per buffer index < n_pre, decompressed ahead (owned), or NULL */
  uint32_t n_pre;
  pt__shared *zregion;  /* our reference on zblock, or NULL */
  const uint8_t *zblock; /* decompressed buffers in one block (zregion's), zsize bytes */
  int64_t zsize;
  bool v4;              /* V4 metadata: unions there have a validity buffer */
  pt__fb_vec variadic;  /* variadicBufferCounts: per view field, its data buffers */
  uint32_t var_i;       /* the next of them */
} decoder;

/* A buffer decompressed before the batch is walked (decoder_prefetch). */
typedef struct prebuf {
  const uint8_t *src; /* the frame, after the length prefix */
  int64_t n;          /* bytes of the frame */
  int64_t ulen;       /* declared uncompressed length */
  uint8_t *out;       /* owned until next_buffer takes it, unless in_block */
  int64_t at;         /* in_block: offset of out in d->zblock */
  int rc;             /* PT_OK: out holds ulen bytes; else next_buffer redoes it */
  int offsets_width;  /* 4 or 8 when the walk takes this buffer as offsets, else 0 */
  bool ready;         /* decompressed (or tried): next_buffer uses rc and out */
  bool in_block;      /* out lies in d->zblock */
  bool sorted;        /* offsets: all of out checked non-decreasing */
} prebuf;

static int cmp_entry(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const size_entry *)a)->array;
  uintptr_t y = (uintptr_t)((const size_entry *)b)->array;
  return x < y ? -1 : x > y;
}

static int64_t size_of(const struct ArrowArray *array, int64_t i, void *arg) {
  const decoder *d = arg;
  size_entry key = {array, {0, 0, 0}, false};
  if (d->n_sizes == 0) return -1;
  const size_entry *e = bsearch(&key, d->sizes, (size_t)d->n_sizes, sizeof key, cmp_entry);
  if (e == NULL) return -1;
  if (i == PT__SORTED_OFFSETS) return e->offsets_sorted;
  if (i < 0 || i >= 3) return -1;
  return e->size[i];
}

static const char *buffer_role(pt_type_id id, int i) {
  if (pt__type_is_union(id)) return i == 0 ? "type ids" : "offsets";
  if (pt__type_is_view(id) && i > 0) return i == 1 ? "views" : "data";
  if (pt__type_list_view_width(id) && i > 0) return i == 1 ? "offsets" : "sizes";
  if (i == 0) return "validity";
  if (i == 2) return "data";
  if (pt__type_offsets_kind(id)) return "offsets";
  return "values";
}

/* Bytes a buffer must be aligned to for zero-copy use. */
static int64_t buffer_align(const pt_type *t, int i) {
  if (pt__type_is_union(t->id)) return i == 1 ? 4 : 1;
  if (pt__type_is_view(t->id)) return i == 1 ? 4 : 1;
  if (pt__type_list_view_width(t->id)) return i == 0 ? 1 : pt__type_list_view_width(t->id);
  if (i != 1) return 1;
  int ok = pt__type_offsets_kind(t->id);
  if (ok) return ok == 1 ? 4 : 8;
  int64_t bytes = pt__type_bit_width(t) / 8;
  if (bytes >= 8) return t->id == PT_TYPE_FIXED_SIZE_BINARY ? 1 : 8;
  return bytes == 2 || bytes == 4 ? bytes : 1;
}

/* The next buffer of the body: *p and *size, *owned when it had to be
 * decompressed or copied, *sorted when it was checked ahead as offsets. */
static int next_buffer(decoder *d, const pt_type *t, int i, const uint8_t **p, int64_t *size,
                       bool *owned, bool *sorted, pt_error *err) {
  *p = empty_buffer;
  *size = 0;
  *owned = false;
  *sorted = false;
  uint32_t index = d->buf_i;
  if (index >= d->buffers.len)
    return pt__errorf(err, PT_EFORMAT, "the batch has %u buffers, the schema needs more",
                      d->buffers.len);
  d->buf_i++;
  const uint8_t *e = pt__fb_vec_elem(&d->buffers, index);
  if (e == NULL) return fb_error(d->buffers.r, err);
  int64_t off = pt__load_i64(e), len = pt__load_i64(e + 8);
  const char *role = buffer_role(t->id, i);
  if (off < 0 || len < 0)
    return pt__errorf(err, PT_EFORMAT, "buffer %u (%s) has offset %lld and length %lld", index,
                      role, (long long)off, (long long)len);
  if (off > d->body_size || len > d->body_size - off)
    return pt__errorf(err, PT_EFORMAT, "buffer %u (%s) ends at byte %lld past the body of %lld bytes",
                      index, role, (long long)((uint64_t)off + (uint64_t)len),
                      (long long)d->body_size);
  if (len == 0) return PT_OK;
  const uint8_t *src = d->body + off;
  if (d->codec != PT_COMPRESSION_NONE) {
    if (len < 8)
      return pt__errorf(err, PT_EFORMAT,
                        "buffer %u (%s): %lld bytes cannot hold a compressed buffer", index,
                        role, (long long)len);
    int64_t ulen = pt__load_i64(src);
    src += 8;
    len -= 8;
    if (ulen != -1) {
      if (ulen < 0)
        return pt__errorf(err, PT_EFORMAT, "buffer %u (%s): uncompressed length %lld", index,
                          role, (long long)ulen);
      uint8_t *out = NULL;
      int rc = PT_EINTERNAL;
      bool in_block = false;
      if (index < d->n_pre && d->pre[index].ready) {
        prebuf *b = &d->pre[index];
        rc = b->rc;
        if (rc == PT_OK) {
          out = b->out;
          in_block = b->in_block;
          *sorted = b->sorted && b->offsets_width == (pt__type_offsets_kind(t->id) == 2 ? 8 : 4);
          b->out = NULL;
        }
        b->ready = false;
      }
      /* Not done ahead, or failed there: here, for the error message (a
       * failure to allocate may not repeat, which is fine). */
      if (rc != PT_OK) rc = pt__decompress(d->codec, src, len, ulen, &out, err);
      if (rc != PT_OK) return pt__error_prefix(err, rc, "buffer %u (%s): ", index, role);
      *p = ulen ? out : empty_buffer;
      if (!ulen && !in_block) pt__free(out);
      *size = ulen;
      *owned = ulen != 0 && !in_block; /* block pointers: decode_node holds zregion */
      return PT_OK;
    }
    if (len == 0) return PT_OK;
  }
  if ((uintptr_t)src % (uintptr_t)buffer_align(t, i) != 0) {
    uint8_t *copy = pt__malloc_aligned((size_t)len);
    if (copy == NULL)
      return pt__errorf(err, PT_ENOMEM, "out of memory copying a buffer of %lld bytes",
                        (long long)len);
    memcpy(copy, src, (size_t)len);
    *p = copy;
    *owned = true;
  } else {
    *p = src;
  }
  *size = len;
  return PT_OK;
}

static void shared_array_destroy(void *data, void *arg) {
  struct ArrowArray *a = data;
  if (a->release) a->release(a);
  pt__free(a);
}

/* *out becomes an array of the same contents as src, sharing its buffers
 * and holding a reference on s (which keeps src alive). */
static int clone_shared(const struct ArrowArray *src, pt__shared *s, struct ArrowArray *out,
                        int depth, pt_error *err) {
  if (depth > PT_IPC_MAX_NESTING + 8)
    return pt__errorf(err, PT_EINTERNAL, "dictionary nesting too deep");
  PT_RETURN_NOT_OK(pt__array_init(out, src->n_buffers, src->n_children, src->dictionary != NULL,
                                  err));
  out->length = src->length;
  out->null_count = src->null_count;
  out->offset = src->offset;
  for (int64_t i = 0; i < src->n_buffers; i++) pt__array_set_buffer(out, i, src->buffers[i], false);
  pt__array_hold(out, s);
  int rc = PT_OK;
  for (int64_t i = 0; i < src->n_children && rc == PT_OK; i++)
    rc = clone_shared(src->children[i], s, out->children[i], depth + 1, err);
  if (rc == PT_OK && src->dictionary)
    rc = clone_shared(src->dictionary, s, out->dictionary, depth + 1, err);
  if (rc != PT_OK) out->release(out);
  return rc;
}

/* An empty (length 0) array of schema's type. */
static int make_empty(const struct ArrowSchema *schema, struct ArrowArray *out, int depth,
                      pt_error *err) {
  pt_type t;
  PT_RETURN_NOT_OK(pt_type_parse(schema, &t, err));
  if (depth > PT_IPC_MAX_NESTING + 8)
    return pt__errorf(err, PT_EINTERNAL, "nesting too deep");
  int nb = pt__type_n_buffers(t.id);
  PT_RETURN_NOT_OK(pt__array_init(out, nb, schema->n_children, schema->dictionary != NULL, err));
  for (int i = 1; i < nb; i++) pt__array_set_buffer(out, i, empty_buffer, false);
  int rc = PT_OK;
  for (int64_t i = 0; i < schema->n_children && rc == PT_OK; i++)
    rc = make_empty(schema->children[i], out->children[i], depth + 1, err);
  if (rc == PT_OK && schema->dictionary)
    rc = make_empty(schema->dictionary, out->dictionary, depth + 1, err);
  if (rc != PT_OK) out->release(out);
  return rc;
}

static dict_slot *slot_of(reader *r, const struct ArrowSchema *node) {
  /* Fields sharing an id share the slot of its first field. */
  int64_t at = pt__ipc_dicts_find_node(&r->ids, node);
  if (at >= 0) at = pt__ipc_dicts_find_id(&r->ids, r->ids.items[at].id);
  return at < 0 ? NULL : &r->slots[at];
}

/* Fills out (released) with the current dictionary of node, for an array of
 * length rows of which nulls are null. */
static int attach_dictionary(reader *r, const struct ArrowSchema *node, int64_t length,
                             int64_t nulls, struct ArrowArray *out, pt_error *err) {
  dict_slot *s = slot_of(r, node);
  if (s == NULL) return pt__errorf(err, PT_EINTERNAL, "dictionary node without an id");
  if (s->cur != NULL) return clone_shared(s->cur->data, s->cur, out, 0, err);
  /* No dictionary sent yet: fine only if no value needs one. */
  if (nulls != length)
    return pt__errorf(err, PT_EFORMAT, "dictionary %lld is used before any dictionary batch for it",
                      (long long)s->id);
  return make_empty(node->dictionary, out, 0, err);
}

static int note_sizes(decoder *d, const struct ArrowArray *a, const int64_t size[3],
                      bool offsets_sorted) {
  if (pt__grow((void **)&d->sizes, &d->cap_sizes, d->n_sizes + 1, sizeof *d->sizes) != PT_OK)
    return PT_ENOMEM;
  d->sizes[d->n_sizes].array = a;
  memcpy(d->sizes[d->n_sizes].size, size, sizeof d->sizes[0].size);
  d->sizes[d->n_sizes].offsets_sorted = offsets_sorted;
  d->n_sizes++;
  return PT_OK;
}

static int decode_node(decoder *d, const struct ArrowSchema *schema, struct ArrowArray *out,
                       int depth, pt_error *err) {
  pt_type t;
  int rc = pt_type_parse(schema, &t, err);
  if (rc != PT_OK) return rc;
  if (depth > PT_IPC_MAX_NESTING + 2) return pt__errorf(err, PT_EFORMAT, "nesting too deep");
  uint32_t index = d->node_i;
  if (index >= d->nodes.len)
    return pt__errorf(err, PT_EFORMAT, "the batch has %u field nodes, the schema needs more",
                      d->nodes.len);
  d->node_i++;
  const uint8_t *fn = pt__fb_vec_elem(&d->nodes, index);
  if (fn == NULL) return fb_error(d->nodes.r, err);
  int64_t length = pt__load_i64(fn), nulls = pt__load_i64(fn + 8);
  if (length < 0 || nulls < 0 || nulls > length)
    return pt__errorf(err, PT_EFORMAT, "field node %u has length %lld and null count %lld", index,
                      (long long)length, (long long)nulls);
  if (t.id == PT_TYPE_NA) nulls = length;
  if (t.id == PT_TYPE_RUN_END_ENCODED) nulls = 0; /* nulls are the values' */
  if (pt__type_is_union(t.id)) {
    nulls = 0; /* a union has no nulls of its own */
    if (d->v4) {
      /* V4 gave unions a validity buffer, which says nothing now: skip it. */
      const uint8_t *p;
      int64_t size;
      bool owned, sorted;
      pt_type bitmap = {.id = PT_TYPE_BOOL};
      PT_RETURN_NOT_OK(next_buffer(d, &bitmap, 0, &p, &size, &owned, &sorted, err));
      if (owned) pt__free((void *)p);
    }
  }
  int nb = pt__type_n_buffers(t.id), n_read = nb;
  bool view = pt__type_is_view(t.id);
  if (view) {
    /* The views' data buffers: as many as variadicBufferCounts says, then
     * the C Data Interface's buffer of their sizes, made here. */
    if (d->var_i >= d->variadic.len)
      return pt__errorf(err, PT_EFORMAT,
                        "the batch gives no data buffer count (variadicBufferCounts) for this "
                        "view field");
    const uint8_t *e = pt__fb_vec_elem(&d->variadic, d->var_i++);
    if (e == NULL) return fb_error(d->variadic.r, err);
    int64_t n_data = pt__load_i64(e);
    if (n_data < 0 || n_data > (int64_t)d->buffers.len)
      return pt__errorf(err, PT_EFORMAT, "a view field has %lld data buffers, the batch %u",
                        (long long)n_data, d->buffers.len);
    n_read = 2 + (int)n_data;
    nb = n_read + 1;
  }
  PT_RETURN_NOT_OK(pt__array_init(out, nb, schema->n_children, schema->dictionary != NULL, err));
  out->length = length;
  out->null_count = nulls;
  uint8_t *view_sizes = NULL;
  if (view) {
    view_sizes = pt__buffer_alloc_zeroed((int64_t)(nb - 3) * 8);
    if (view_sizes == NULL) {
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      goto fail;
    }
    pt__array_set_buffer(out, nb - 1, view_sizes, true);
  }
  int64_t sizes[3] = {0, 0, 0};
  bool in_region = false; /* some buffer points into the body */
  bool in_zblock = false; /* some buffer points into the decompressed block */
  bool offsets_sorted = false;
  for (int i = 0; i < n_read; i++) {
    const uint8_t *p;
    bool owned, sorted;
    int64_t size_i;
    if ((rc = next_buffer(d, &t, i, &p, &size_i, &owned, &sorted, err)) != PT_OK) goto fail;
    if (i < 3) sizes[i] = size_i;
    if (view && i >= 2) pt__store_i64(view_sizes + (i - 2) * 8, size_i);
    if (i == 1 && pt__type_offsets_kind(t.id)) offsets_sorted = sorted;
    if (i == 0 && nulls == 0 && !pt__type_is_union(t.id)) {
      /* No nulls: consumers need no bitmap, whatever the writer sent. */
      if (owned) pt__free((void *)p);
      p = NULL;
      owned = false;
      sizes[0] = 0;
    } else if (i == 1 && sizes[1] == 0 && pt__type_offsets_kind(t.id) && length == 0) {
      sizes[1] = sizeof empty_buffer; /* the one zero offset readers may look at */
    }
    pt__array_set_buffer(out, i, p, owned);
    if (!owned && p != NULL && p != empty_buffer) {
      uintptr_t at = (uintptr_t)p, z = (uintptr_t)d->zblock;
      if (d->zblock != NULL && at >= z && at < z + (uintptr_t)d->zsize) in_zblock = true;
      else in_region = true;
    }
  }
  /* Arrays whose buffers were all decompressed do not keep the body. */
  if (in_region && d->region) pt__array_hold(out, d->region);
  if (in_zblock) pt__array_hold(out, d->zregion);
  if ((rc = note_sizes(d, out, sizes, offsets_sorted)) != PT_OK) {
    rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    goto fail;
  }
  for (int64_t i = 0; i < schema->n_children; i++) {
    const struct ArrowSchema *c = schema->children[i];
    if ((rc = decode_node(d, c, out->children[i], depth + 1, err)) != PT_OK) {
      pt__error_prefix(err, rc, "field '%s': ", c->name ? c->name : "");
      goto fail;
    }
  }
  if (schema->dictionary &&
      (rc = attach_dictionary(d->r, schema, length, nulls, out->dictionary, err)) != PT_OK)
    goto fail;
  return PT_OK;
fail:
  out->release(out);
  return rc;
}

/* Decompression ahead: one pool item per buffer. */
typedef struct unz {
  pt_compression codec;
  prebuf **tasks;
} unz;

/* Offsets are checked here, right after they are made: while they are
 * still in this core's cache, and in parallel with the other buffers'
 * decompression, instead of in a pass of their own during validation. */
static void decompress_one(void *arg, int64_t k) {
  unz *u = arg;
  prebuf *b = u->tasks[k];
  if (b->in_block)
    b->rc = pt__decompress_into(u->codec, b->src, b->n, b->out, b->ulen, NULL);
  else
    b->rc = pt__decompress(u->codec, b->src, b->n, b->ulen, &b->out, NULL);
  int w = b->offsets_width;
  if (b->rc == PT_OK && w != 0 && b->ulen >= w)
    b->sorted = pt__offsets_sorted(b->out, b->ulen / w - 1, w);
  b->ready = true;
}

/* Blocks of decompressed buffers are kept for reuse when their batches are
 * released, a few and up to a bound: a new block is fresh memory, whose
 * first touch (the kernel clearing every page) costs as much as
 * decompressing into it, and with batches decompressed ahead several
 * blocks are alive at once, so that malloc gives their memory back to the
 * system between batches (measured: one int64 column, LZ4, 35 ms -> 10 ms
 * for 64 MiB). Arrow C++ gets the same from its allocator, which keeps freed
 * memory. Small blocks are left to malloc. The cache is only tried (trylock):
 * a busy one, or one whose lock a thread held when the process forked, is
 * passed by, never waited for. */
#define BLOCK_CACHE_SLOTS 8
#define BLOCK_CACHE_BYTES ((int64_t)64 << 20)
#define BLOCK_CACHE_MIN ((int64_t)1 << 20)

static struct {
  pthread_mutex_t lock;
  void *mem[BLOCK_CACHE_SLOTS];
  int64_t cap[BLOCK_CACHE_SLOTS];
  int n;
  int64_t bytes;
} block_cache = {PTHREAD_MUTEX_INITIALIZER, {NULL}, {0}, 0, 0};

/* A 64-byte aligned block of at least size bytes: a kept one (the smallest
 * that fits, if not more than twice the need) or a new one (*cap = size). */
static void *block_get(int64_t size, int64_t *cap) {
  if (size >= BLOCK_CACHE_MIN && pthread_mutex_trylock(&block_cache.lock) == 0) {
    int best = -1;
    for (int k = 0; k < block_cache.n; k++)
      if (block_cache.cap[k] >= size && block_cache.cap[k] <= 2 * size &&
          (best < 0 || block_cache.cap[k] < block_cache.cap[best]))
        best = k;
    if (best >= 0) {
      void *mem = block_cache.mem[best];
      *cap = block_cache.cap[best];
      block_cache.bytes -= *cap;
      block_cache.n--;
      block_cache.mem[best] = block_cache.mem[block_cache.n];
      block_cache.cap[best] = block_cache.cap[block_cache.n];
      pthread_mutex_unlock(&block_cache.lock);
      return mem;
    }
    pthread_mutex_unlock(&block_cache.lock);
  }
  *cap = size;
  void *mem = pt__malloc_aligned((size_t)size);
  if (mem != NULL) pt__advise_huge(mem);
  return mem;
}

/* The free function of a block's region (arg: its capacity). */
static void block_put(void *mem, void *arg) {
  int64_t cap = (int64_t)(uintptr_t)arg;
  if (cap >= BLOCK_CACHE_MIN && pthread_mutex_trylock(&block_cache.lock) == 0) {
    if (block_cache.n < BLOCK_CACHE_SLOTS && block_cache.bytes + cap <= BLOCK_CACHE_BYTES) {
      block_cache.mem[block_cache.n] = mem;
      block_cache.cap[block_cache.n++] = cap;
      block_cache.bytes += cap;
      mem = NULL;
    }
    pthread_mutex_unlock(&block_cache.lock);
  }
  pt__free(mem);
}

/* Places the buffers of tasks whose declared length pt__decompress would
 * allocate outright anyway in one block, so that a batch's output is one
 * allocation (huge pages when big: its first touch costs a fault per 2 MiB,
 * not per 4 KiB) instead of one per buffer, faulted in afresh each batch
 * once malloc has given the last one's back. The block is a shared region:
 * arrays that use it hold it, as others hold the body. It never exceeds 16
 * times the body (plus 1 MiB); buffers beyond stay on their own. */
static void place_in_block(decoder *d, prebuf **tasks, int64_t n_tasks) {
  int64_t limit = d->body_size > (INT64_MAX >> 5) ? INT64_MAX : d->body_size * 16 + (1 << 20);
  int64_t total = 0;
  for (int64_t k = 0; k < n_tasks; k++) {
    prebuf *b = tasks[k];
    int64_t left = limit - total;
    if (b->ulen == 0 || pt__decompress_first_cap(b->n, b->ulen) != b->ulen || left < 64 ||
        b->ulen > left - 63)
      continue;
    int64_t room = (b->ulen + 63) & ~(int64_t)63;
    b->at = total;
    b->in_block = true;
    total += room;
  }
  if (total == 0) return;
  int64_t cap;
  uint8_t *mem = block_get(total, &cap);
  pt__shared *z = mem ? pt__shared_new(mem, block_put, (void *)(uintptr_t)cap) : NULL;
  if (z == NULL) {
    pt__free(mem);
    for (int64_t k = 0; k < n_tasks; k++) tasks[k]->in_block = false;
    return;
  }
  d->zregion = z;
  d->zblock = mem;
  d->zsize = total;
  for (int64_t k = 0; k < n_tasks; k++)
    if (tasks[k]->in_block) tasks[k]->out = mem + tasks[k]->at;
}

/* Walks schema's node (children included, dictionary not) in the order
 * decode_node takes buffers from the body, starting at buffer *at: counts
 * them and, with pre (n of them) given, notes the width of those the walk
 * will take as offsets. A malformed schema counts as far as it parses. */
static void walk_buffers(const struct ArrowSchema *schema, int depth, int64_t *at, prebuf *pre,
                         int64_t n, bool v4, const pt__fb_vec *variadic, uint32_t *var_i) {
  pt_type t;
  if (depth > PT_IPC_MAX_NESTING + 2 || pt_type_parse(schema, &t, NULL) != PT_OK) return;
  int kind = pt__type_offsets_kind(t.id);
  if (pre != NULL && kind != 0 && *at + 1 < n) pre[*at + 1].offsets_width = kind == 2 ? 8 : 4;
  if (pt__type_is_view(t.id)) {
    const uint8_t *e = *var_i < variadic->len ? pt__fb_vec_elem(variadic, *var_i) : NULL;
    int64_t n_data = e ? pt__load_i64(e) : 0;
    (*var_i)++;
    /* A bad count stops the walk: decode_node reports it. */
    *at += 2 + (n_data >= 0 && n_data <= (1 << 24) ? n_data : 0);
    return;
  }
  *at += pt__type_n_buffers(t.id) + (v4 && pt__type_is_union(t.id));
  for (int64_t i = 0; i < schema->n_children; i++)
    walk_buffers(schema->children[i], depth + 1, at, pre, n, v4, variadic, var_i);
}

/* Lays out the work ahead for d's batch: d->pre gets a prebuf per buffer the
 * walk over the n_roots nodes of roots will take (that walk bounds the work,
 * so that a batch listing more buffers than its schema has costs no more than
 * the walk would spend), and tasks (room for d->buffers.len more, from
 * *n_tasks on) the compressed ones. Buffers whose entry is not well-formed
 * are skipped, so that next_buffer reports them in order with the same
 * messages as without work ahead. Failing to allocate only means no work
 * ahead. Returns how many tasks it added. */
static int64_t prefetch_plan(decoder *d, const struct ArrowSchema *const *roots, int64_t n_roots,
                             prebuf **tasks, int64_t *n_tasks) {
  int64_t wanted = 0;
  uint32_t var_i = 0;
  for (int64_t i = 0; i < n_roots; i++)
    walk_buffers(roots[i], 1, &wanted, NULL, 0, d->v4, &d->variadic, &var_i);
  uint32_t n = d->buffers.len;
  if (wanted < n) n = (uint32_t)wanted;
  if (d->codec == PT_COMPRESSION_NONE || n == 0) return 0;
  prebuf *pre = pt__calloc(n, sizeof *pre);
  if (pre == NULL) return 0;
  int64_t at = 0, first = *n_tasks;
  var_i = 0;
  for (int64_t i = 0; i < n_roots; i++)
    walk_buffers(roots[i], 1, &at, pre, n, d->v4, &d->variadic, &var_i);
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *e = pt__fb_vec_elem(&d->buffers, i);
    if (e == NULL) break;
    int64_t off = pt__load_i64(e), len = pt__load_i64(e + 8);
    if (off < 0 || len < 8 || off > d->body_size || len > d->body_size - off) continue;
    int64_t ulen = pt__load_i64(d->body + off);
    if (ulen < 0) continue; /* -1: stored as is; others are errors */
    pre[i].src = d->body + off + 8;
    pre[i].n = len - 8;
    pre[i].ulen = ulen;
    tasks[(*n_tasks)++] = &pre[i];
  }
  if (*n_tasks == first) {
    pt__free(pre);
    return 0;
  }
  place_in_block(d, tasks + first, *n_tasks - first);
  d->pre = pre;
  d->n_pre = n;
  return *n_tasks - first;
}

/* Decompresses tasks (of n_tasks) all at once on the pool's threads, before
 * the walks in schema order consume them. */
static void prefetch_run(pt_compression codec, prebuf **tasks, int64_t n_tasks) {
  unz u = {codec, tasks};
  pt__pool_run(n_tasks, decompress_one, &u);
}

/* Frees the buffers decompressed ahead for a batch and its block. */
static void ahead_free(prebuf *pre, uint32_t n_pre, pt__shared *zregion) {
  if (pre != NULL)
    for (uint32_t i = 0; i < n_pre; i++)
      if (!pre[i].in_block) pt__free(pre[i].out);
  pt__free(pre);
  pt__shared_unref(zregion);
}

/* Frees what d owns (decompressed buffers nobody took included). */
static void decoder_reset(decoder *d) {
  ahead_free(d->pre, d->n_pre, d->zregion); /* arrays using the block hold it */
  pt__free(d->sizes);
  d->pre = NULL;
  d->sizes = NULL;
  d->zregion = NULL;
}

/* Sets up d for RecordBatch table rb with body (body, size, region). */
static int decoder_init(decoder *d, reader *r, const pt__fb_table *rb, const message *m,
                        pt_error *err) {
  memset(d, 0, sizeof *d);
  d->r = r;
  d->body = m->body;
  d->body_size = m->body_size;
  d->region = m->region;
  d->v4 = m->version == PT_IPC_V4;
  d->codec = PT_COMPRESSION_NONE;
  pt__fb_vector(rb, RB_NODES, PT_IPC_NODE_SIZE, &d->nodes);
  pt__fb_vector(rb, RB_BUFFERS, PT_IPC_BUFFER_SIZE, &d->buffers);
  pt__fb_vector(rb, RB_VARIADIC, 8, &d->variadic);
  pt__fb_table comp;
  if (pt__fb_table_get(rb, RB_COMPRESSION, &comp)) {
    int8_t codec = pt__fb_i8(&comp, COMP_CODEC, 0);
    int8_t method = pt__fb_i8(&comp, COMP_METHOD, 0);
    if (!rb->r->bad) {
      if (method != 0)
        return pt__errorf(err, PT_ENOTSUP, "body compression method %d is not supported", method);
      if (codec == 0) d->codec = PT_COMPRESSION_LZ4_FRAME;
      else if (codec == 1) d->codec = PT_COMPRESSION_ZSTD;
      else return pt__errorf(err, PT_EFORMAT, "unknown compression codec %d", codec);
    }
  }
  if (rb->r->bad) return fb_error(rb->r, err);
  return PT_OK;
}

static void standin_release(struct ArrowArray *a) { a->release = NULL; }

static int64_t count_dictionaries(const struct ArrowArray *a) {
  int64_t n = a->dictionary != NULL;
  for (int64_t i = 0; i < a->n_children; i++) n += count_dictionaries(a->children[i]);
  return n;
}

/* Swaps each dictionary under a for stand-ins[*k...] (null arrays of the
 * same length), remembering the real ones in saved; or back (restore). */
static void swap_dictionaries(struct ArrowArray *a, struct ArrowArray *standins,
                              struct ArrowArray **saved, int64_t *k, bool restore) {
  for (int64_t i = 0; i < a->n_children; i++)
    swap_dictionaries(a->children[i], standins, saved, k, restore);
  if (a->dictionary == NULL) return;
  if (restore) {
    a->dictionary = saved[(*k)++];
    return;
  }
  struct ArrowArray *s = &standins[*k];
  memset(s, 0, sizeof *s);
  s->length = a->dictionary->length;
  s->null_count = s->length;
  s->release = standin_release;
  saved[(*k)++] = a->dictionary;
  a->dictionary = s;
}

/* Validates the array tree a (buffer sizes through sizes, if known) with
 * vschema: the schema of a whose dictionaries are of the null type.
 * Dictionaries were validated when they were read: here only their lengths
 * matter (for the indices). */
static int validate_tree(const struct ArrowSchema *vschema, struct ArrowArray *a,
                         pt__buffer_size_fn sizes, void *arg, pt_error *err) {
  int64_t n = count_dictionaries(a), k = 0;
  struct ArrowArray *standins = NULL, **saved = NULL;
  if (n > 0) {
    standins = pt__malloc((size_t)n * sizeof *standins);
    saved = pt__malloc((size_t)n * sizeof *saved);
    if (standins == NULL || saved == NULL) {
      pt__free(standins);
      pt__free(saved);
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    }
    swap_dictionaries(a, standins, saved, &k, false);
  }
  pt__view v;
  int rc = pt__view_init(&v, vschema, a, err);
  if (rc == PT_OK) {
    rc = pt__view_validate(&v, sizes, arg, err);
    pt__view_reset(&v);
  }
  if (n > 0) {
    k = 0;
    swap_dictionaries(a, standins, saved, &k, true);
    pt__free(standins);
    pt__free(saved);
  }
  /* Invalid arrays made from input are malformed input. */
  if (rc == PT_EINVAL) {
    if (err) err->code = PT_EFORMAT;
    rc = PT_EFORMAT;
  }
  return rc;
}

/* Validates a decoded tree against the true sizes of its buffers. */
static int decoder_validate(decoder *d, const struct ArrowSchema *vschema, struct ArrowArray *a,
                            pt_error *err) {
  if (d->n_sizes > 1) qsort(d->sizes, (size_t)d->n_sizes, sizeof *d->sizes, cmp_entry);
  return validate_tree(vschema, a, size_of, d, err);
}

/* Takes the work done ahead for the batch whose message is at pos into d. */
static bool take_ahead(reader *r, int64_t pos, decoder *d) {
  for (int k = 0; k < r->n_ahead; k++) {
    if (r->ahead[k].pos != pos) continue;
    ahead a = r->ahead[k];
    r->ahead[k] = r->ahead[--r->n_ahead];
    d->pre = a.pre;
    d->n_pre = a.n_pre;
    d->zregion = a.zregion;
    d->zblock = a.zblock;
    d->zsize = a.zsize;
    return true;
  }
  return false;
}

/* Compressed buffers listed by d's batch; *bytes gets what they declare
 * (as far as their entries are well-formed, capped). */
static int64_t listed_compressed(const decoder *d, int64_t *bytes) {
  *bytes = 0;
  if (d->codec == PT_COMPRESSION_NONE) return 0;
  int64_t n = 0;
  for (uint32_t i = 0; i < d->buffers.len; i++) {
    const uint8_t *e = pt__fb_vec_elem(&d->buffers, i);
    if (e == NULL) break;
    int64_t off = pt__load_i64(e), len = pt__load_i64(e + 8);
    if (len <= 0) continue;
    n++;
    if (off >= 0 && len >= 8 && off <= d->body_size && len <= d->body_size - off) {
      int64_t ulen = pt__load_i64(d->body + off);
      if (ulen > 0) *bytes += ulen < (INT64_MAX >> 8) - *bytes ? ulen : (INT64_MAX >> 8) - *bytes;
    }
  }
  return n;
}

/* Decompressed bytes the batches read ahead may declare in all: memory
 * spent before the consumer asks for them. */
#define AHEAD_BYTES ((int64_t)64 << 20)

/* Where the k-th record batch message after the current one (at pos) starts
 * in an in-memory input, or -1 when that is not known without decoding
 * what comes between. */
static int64_t following(const reader *r, int64_t k, int64_t prev_next) {
  if (r->is_file) {
    int64_t i = r->next_file_batch + k;
    return i < r->n_file_batches ? r->batch_offsets[i] : -1;
  }
  return prev_next;
}

/* Decompresses the buffers of d's batch ahead of the walk (one pool item
 * each), and when that is too little work for the pool (a batch of one big
 * column: one thread would do it all while the others wait), those of the
 * record batches that follow in an in-memory input too, up to MAX_AHEAD
 * batches, AHEAD_BYTES or two items per thread: they wait in r->ahead for
 * their turn,
 * which then costs nothing. Only record batches straight after each other
 * are taken (a dictionary batch between ends the look). Nothing read ahead
 * is trusted: a message that does not parse, or a buffer that fails, is left
 * to the normal path, which reports it when its turn comes. */
static void prefetch_batches(reader *r, decoder *d, const struct ArrowSchema *const *roots,
                             int64_t n_roots, bool look) {
  int64_t declared, ahead_bytes = 0;
  int64_t want = listed_compressed(d, &declared);
  if (want == 0) return;
  message lm[MAX_AHEAD];
  decoder ld[MAX_AHEAD];
  int64_t lpos[MAX_AHEAD];
  int nl = 0;
  int64_t room = d->buffers.len;
  int64_t enough = 2 * (int64_t)pt__pool_threads();
  int64_t next = r->pos;
  while (look && r->src == SRC_REGION && want < enough && nl < MAX_AHEAD - r->n_ahead) {
    int64_t pos = following(r, nl, next);
    if (pos < 0) break;
    bool dup = false;
    for (int k = 0; k < r->n_ahead; k++) dup |= r->ahead[k].pos == pos;
    if (dup || read_message_region(r, pos, r->size, &lm[nl], &next, NULL) != PT_OK) break;
    int64_t more = 0;
    if (lm[nl].eos || lm[nl].type != PT_IPC_HDR_RECORD_BATCH ||
        decoder_init(&ld[nl], r, &lm[nl].header, &lm[nl], NULL) != PT_OK ||
        (more = listed_compressed(&ld[nl], &declared)) == 0 ||
        declared > AHEAD_BYTES - ahead_bytes) {
      message_reset(&lm[nl]);
      break;
    }
    ahead_bytes += declared;
    want += more;
    room += ld[nl].buffers.len;
    lpos[nl++] = pos;
  }
  prebuf **tasks = pt__malloc((size_t)room * sizeof *tasks);
  int64_t n_tasks = 0;
  if (tasks != NULL) {
    prefetch_plan(d, roots, n_roots, tasks, &n_tasks);
    for (int k = 0; k < nl; k++) prefetch_plan(&ld[k], roots, n_roots, tasks, &n_tasks);
    prefetch_run(d->codec, tasks, n_tasks);
    pt__free(tasks);
  }
  for (int k = 0; k < nl; k++) {
    if (ld[k].pre != NULL)
      r->ahead[r->n_ahead++] = (ahead){lpos[k], ld[k].pre, ld[k].n_pre, ld[k].zregion,
                                       ld[k].zblock, ld[k].zsize};
    else
      pt__shared_unref(ld[k].zregion);
    message_reset(&lm[k]);
  }
}

static int decode_record_batch(reader *r, const message *m, int64_t pos, struct ArrowArray *out,
                               pt_error *err) {
  out->release = NULL;
  decoder d;
  int rc = decoder_init(&d, r, &m->header, m, err);
  int64_t length = pt__fb_i64(&m->header, RB_LENGTH, 0);
  if (rc == PT_OK && m->header.r->bad) rc = fb_error(m->header.r, err);
  if (rc != PT_OK) goto cleanup;
  if (length < 0) {
    rc = pt__errorf(err, PT_EFORMAT, "negative length %lld", (long long)length);
    goto cleanup;
  }
  const struct ArrowSchema *s = &r->schema;
  const struct ArrowSchema *const *roots = (const struct ArrowSchema *const *)s->children;
  if (!take_ahead(r, pos, &d)) prefetch_batches(r, &d, roots, s->n_children, pos >= 0);
  if ((rc = pt__array_init(out, 1, s->n_children, false, err)) != PT_OK) goto cleanup;
  out->length = length;
  out->null_count = 0;
  for (int64_t i = 0; i < s->n_children; i++) {
    const struct ArrowSchema *c = s->children[i];
    if ((rc = decode_node(&d, c, out->children[i], 1, err)) != PT_OK) {
      pt__error_prefix(err, rc, "column '%s': ", c->name ? c->name : "");
      goto cleanup;
    }
    /* The C Data Interface lets struct children be longer than their parent,
     * but a record batch's columns are exactly its rows: Arrow readers
     * (pyarrow too) refuse a batch whose columns disagree with it. */
    if (out->children[i]->length != length) {
      rc = pt__errorf(err, PT_EFORMAT, "column '%s' has %lld rows, the batch %lld",
                      c->name ? c->name : "", (long long)out->children[i]->length,
                      (long long)length);
      goto cleanup;
    }
  }
  rc = decoder_validate(&d, &r->vschema, out, err);
cleanup:
  if (rc != PT_OK && out->release) out->release(out);
  decoder_reset(&d);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Dictionaries */

static void set_validity_range(uint8_t *dst, int64_t at, const struct ArrowArray *a,
                               int64_t start, int64_t len) {
  const uint8_t *v = a->n_buffers > 0 ? a->buffers[0] : NULL;
  if (v == NULL) {
    for (int64_t i = 0; i < len; i++) pt__bit_set(dst, at + i, 1);
  } else {
    pt__bits_copy(v, a->offset + start, dst, at, len);
  }
}

static int concat(reader *r, const struct ArrowSchema *schema, const struct ArrowArray *a,
                  int64_t as, int64_t al, const struct ArrowArray *b, int64_t bs, int64_t bl,
                  struct ArrowArray *out, int depth, pt_error *err);

/* Attaches the reader's current dictionaries to every dictionary-encoded
 * node of a (made by pt__array_concat_ranges without them). */
static int attach_dictionaries(reader *r, const struct ArrowSchema *schema, struct ArrowArray *a,
                               int depth, pt_error *err) {
  if (depth > PT_IPC_MAX_NESTING + 8) return pt__errorf(err, PT_EINTERNAL, "nesting too deep");
  if (schema->dictionary != NULL)
    PT_RETURN_NOT_OK(attach_dictionary(r, schema, a->length, a->null_count, a->dictionary, err));
  for (int64_t i = 0; i < schema->n_children; i++)
    PT_RETURN_NOT_OK(attach_dictionaries(r, schema->children[i], a->children[i], depth + 1, err));
  return PT_OK;
}

static inline int64_t offset_at(const struct ArrowArray *a, int wide, int64_t i) {
  const uint8_t *o = a->buffers[1];
  return wide ? pt__load_i64(o + 8 * i) : pt__load_i32(o + 4 * i);
}

/* Rows [as, as+al) of a followed by rows [bs, bs+bl) of b (both valid
 * arrays of schema) as a new array that owns all its buffers. */
static int concat(reader *r, const struct ArrowSchema *schema, const struct ArrowArray *a,
                  int64_t as, int64_t al, const struct ArrowArray *b, int64_t bs, int64_t bl,
                  struct ArrowArray *out, int depth, pt_error *err) {
  pt_type t;
  PT_RETURN_NOT_OK(pt_type_parse(schema, &t, err));
  if (depth > PT_IPC_MAX_NESTING + 8) return pt__errorf(err, PT_EINTERNAL, "nesting too deep");
  if (pt__type_is_union(t.id) || pt__type_is_view(t.id) || pt__type_list_view_width(t.id) ||
      t.id == PT_TYPE_RUN_END_ENCODED) {
    /* Arrays whose rows do not lie in one span of their buffers (dense
     * union offsets, views into several data buffers, list view ranges in
     * any order, runs): the kernels' gather over the two ranges, which
     * lays them out anew. It leaves the dictionaries of nodes below to us:
     * the current ones, as for every other node a delta joins. */
    const struct ArrowArray *parts[2] = {a, b};
    const int64_t starts[2] = {as, bs}, lengths[2] = {al, bl};
    PT_RETURN_NOT_OK(pt__array_concat_ranges(schema, parts, starts, lengths, 2,
                                             PT__CONCAT_NO_DICTIONARIES, out, err));
    int rc = attach_dictionaries(r, schema, out, depth, err);
    if (rc != PT_OK) out->release(out);
    return rc;
  }
  int nb = pt__type_n_buffers(t.id);
  PT_RETURN_NOT_OK(pt__array_init(out, nb, schema->n_children, schema->dictionary != NULL, err));
  int64_t n = al + bl;
  out->length = n;
  int rc = PT_OK;
  int64_t pa = a->offset + as, pb = b->offset + bs; /* physical starts */
  if (t.id == PT_TYPE_NA) {
    out->null_count = n;
    return PT_OK;
  }
  /* Validity */
  int64_t a_nulls = a->buffers[0] ? al - pt__bits_count(a->buffers[0], pa, al) : 0;
  int64_t b_nulls = b->buffers[0] ? bl - pt__bits_count(b->buffers[0], pb, bl) : 0;
  out->null_count = a_nulls + b_nulls;
  if (out->null_count > 0) {
    uint8_t *bits = pt__calloc(1, (size_t)((n + 7) / 8));
    if (bits == NULL) goto oom;
    set_validity_range(bits, 0, a, as, al);
    set_validity_range(bits, al, b, bs, bl);
    pt__array_set_buffer(out, 0, bits, true);
  }
  int ok = pt__type_offsets_kind(t.id);
  int64_t bw = pt__type_bit_width(&t);
  if (t.id == PT_TYPE_BOOL) {
    uint8_t *bits = pt__calloc(1, (size_t)((n + 7) / 8));
    if (bits == NULL) goto oom;
    pt__bits_copy(a->buffers[1], pa, bits, 0, al);
    pt__bits_copy(b->buffers[1], pb, bits, al, bl);
    pt__array_set_buffer(out, 1, bits, true);
  } else if (bw > 0) {
    int64_t w = bw / 8;
    int64_t bytes = n * w;
    uint8_t *vals = pt__malloc_aligned((size_t)(bytes > 0 ? bytes : 1));
    if (vals == NULL) goto oom;
    if (al) memcpy(vals, (const uint8_t *)a->buffers[1] + pa * w, (size_t)(al * w));
    if (bl) memcpy(vals + al * w, (const uint8_t *)b->buffers[1] + pb * w, (size_t)(bl * w));
    pt__array_set_buffer(out, 1, vals, true);
  } else if (ok) {
    int wide = ok == 2;
    int64_t w = wide ? 8 : 4;
    int64_t a0 = al ? offset_at(a, wide, pa) : 0, a1 = al ? offset_at(a, wide, pa + al) : 0;
    int64_t b0 = bl ? offset_at(b, wide, pb) : 0, b1 = bl ? offset_at(b, wide, pb + bl) : 0;
    int64_t total = (a1 - a0) + (b1 - b0);
    if (!wide && total > INT32_MAX) {
      out->release(out);
      return pt__errorf(err, PT_ERANGE, "dictionary delta makes the dictionary larger than 2 GiB; "
                                        "use large types");
    }
    uint8_t *offs = pt__malloc_aligned((size_t)((n + 1) * w));
    if (offs == NULL) goto oom;
    pt__array_set_buffer(out, 1, offs, true);
    for (int64_t i = 0; i <= n; i++) {
      int64_t v = i <= al ? (al ? offset_at(a, wide, pa + i) - a0 : 0)
                          : offset_at(b, wide, pb + (i - al)) - b0 + (a1 - a0);
      if (wide) pt__store_i64(offs + 8 * i, v);
      else pt__store_i32(offs + 4 * i, (int32_t)v);
    }
    if (nb == 3) {
      uint8_t *data = pt__malloc_aligned((size_t)(total ? total : 1));
      if (data == NULL) goto oom;
      if (a1 > a0) memcpy(data, (const uint8_t *)a->buffers[2] + a0, (size_t)(a1 - a0));
      if (b1 > b0) memcpy(data + (a1 - a0), (const uint8_t *)b->buffers[2] + b0, (size_t)(b1 - b0));
      pt__array_set_buffer(out, 2, data, true);
    } else {
      rc = concat(r, schema->children[0], a->children[0], a0, a1 - a0, b->children[0], b0,
                  b1 - b0, out->children[0], depth + 1, err);
    }
  } else if (t.id == PT_TYPE_FIXED_SIZE_LIST) {
    int64_t k = t.list_size;
    rc = concat(r, schema->children[0], a->children[0], pa * k, al * k, b->children[0], pb * k,
                bl * k, out->children[0], depth + 1, err);
  } else if (t.id == PT_TYPE_STRUCT) {
    for (int64_t i = 0; i < schema->n_children && rc == PT_OK; i++)
      rc = concat(r, schema->children[i], a->children[i], pa, al, b->children[i], pb, bl,
                  out->children[i], depth + 1, err);
  }
  if (rc == PT_OK && schema->dictionary)
    rc = attach_dictionary(r, schema, n, out->null_count, out->dictionary, err);
  if (rc != PT_OK) out->release(out);
  return rc;
oom:
  out->release(out);
  return pt__errorf(err, PT_ENOMEM, "out of memory concatenating a dictionary delta");
}

static int apply_dictionary_batch(reader *r, const message *m, pt_error *err) {
  int64_t id = pt__fb_i64(&m->header, DB_ID, 0);
  bool delta = pt__fb_bool(&m->header, DB_IS_DELTA, false);
  pt__fb_table rb;
  bool has_data = pt__fb_table_get(&m->header, DB_DATA, &rb);
  if (m->header.r->bad) return fb_error(m->header.r, err);
  int64_t at = pt__ipc_dicts_find_id(&r->ids, id);
  if (at < 0)
    return pt__errorf(err, PT_EFORMAT, "dictionary batch for id %lld, which no field uses",
                      (long long)id);
  if (!has_data) return pt__errorf(err, PT_EFORMAT, "dictionary batch %lld has no data", (long long)id);
  dict_slot *s = &r->slots[at];
  if (!delta && s->cur != NULL && r->is_file)
    return pt__errorf(err, PT_EFORMAT,
                      "a second dictionary for id %lld: the file format does not allow "
                      "replacing dictionaries", (long long)id);
  const struct ArrowSchema *values = s->node->dictionary;
  struct ArrowArray col, joined;
  col.release = NULL;
  joined.release = NULL;
  struct ArrowArray *heap = NULL;
  decoder d;
  int rc = decoder_init(&d, r, &rb, m, err);
  if (rc != PT_OK) goto cleanup;
  prefetch_batches(r, &d, &values, 1, false);
  if ((rc = decode_node(&d, values, &col, 1, err)) != PT_OK) goto cleanup;
  if ((rc = decoder_validate(&d, &s->vvalues, &col, err)) != PT_OK) goto cleanup;
  struct ArrowArray *result = &col;
  if (delta && s->cur != NULL) {
    const struct ArrowArray *old = s->cur->data;
    if ((rc = concat(r, values, old, 0, old->length, &col, 0, col.length, &joined, 0, err)) != PT_OK)
      goto cleanup;
    /* Both parts were valid, but an inner dictionary may have been replaced
     * by a shorter one since the old part was read: check the indices. Our
     * own buffers are exactly as large as needed. */
    if ((rc = validate_tree(&s->vvalues, &joined, NULL, NULL, err)) != PT_OK) goto cleanup;
    result = &joined;
  }
  heap = pt__malloc(sizeof *heap);
  if (heap == NULL) goto oom;
  pt__array_move(result, heap);
  pt__shared *sh = pt__shared_new(heap, shared_array_destroy, NULL);
  if (sh == NULL) goto oom;
  heap = NULL;
  pt__shared_unref(s->cur); /* earlier batches keep their own references */
  s->cur = sh;
  goto cleanup;
oom:
  rc = pt__errorf(err, PT_ENOMEM, "out of memory");
cleanup:
  if (heap) {
    if (heap->release) heap->release(heap);
    pt__free(heap);
  }
  if (col.release) col.release(&col);
  if (joined.release) joined.release(&joined);
  decoder_reset(&d);
  if (rc != PT_OK)
    pt__error_prefix(err, rc, "dictionary batch (id %lld%s): ", (long long)id,
                     delta ? ", delta" : "");
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Message loop */

static int read_message(reader *r, message *m, pt_error *err) {
  int rc;
  if (r->src == SRC_FD) {
    rc = read_message_fd(r, m, err);
  } else {
    int64_t next;
    rc = read_message_region(r, r->pos, r->size, m, &next, err);
    if (rc == PT_OK) r->pos = next;
  }
  if (rc != PT_OK) pt__error_prefix(err, rc, "message %lld: ", (long long)r->n_messages);
  r->n_messages++;
  return rc;
}

/* Replaces every dictionary value type under s (a protium-owned copy) by
 * the null type. */
static int strip_dictionaries(struct ArrowSchema *s, pt_error *err) {
  for (int64_t i = 0; i < s->n_children; i++)
    PT_RETURN_NOT_OK(strip_dictionaries(s->children[i], err));
  if (s->dictionary == NULL) return PT_OK;
  struct ArrowSchema null_type;
  PT_RETURN_NOT_OK(pt_schema_init(&null_type, "n", NULL, ARROW_FLAG_NULLABLE, 0, err));
  int rc = pt_schema_set_dictionary(s, &null_type, err);
  if (rc != PT_OK) null_type.release(&null_type);
  return rc;
}

static int validation_schema(const struct ArrowSchema *s, struct ArrowSchema *out,
                             pt_error *err) {
  PT_RETURN_NOT_OK(pt_schema_copy(s, out, err));
  int rc = strip_dictionaries(out, err);
  if (rc != PT_OK) out->release(out);
  return rc;
}

static int set_schema(reader *r, const pt__fb_table *schema, pt_error *err) {
  PT_RETURN_NOT_OK(pt__ipc_schema_decode(schema, &r->schema, &r->ids, err));
  PT_RETURN_NOT_OK(validation_schema(&r->schema, &r->vschema, err));
  if (r->ids.n > 0) {
    r->slots = pt__calloc((size_t)r->ids.n, sizeof *r->slots);
    if (r->slots == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    for (int64_t i = 0; i < r->ids.n; i++) {
      r->slots[i].id = r->ids.items[i].id;
      r->slots[i].node = r->ids.items[i].node;
      PT_RETURN_NOT_OK(validation_schema(r->slots[i].node->dictionary, &r->slots[i].vvalues, err));
    }
  }
  return PT_OK;
}

/* The next record batch of a stream (out released at the end). */
static int next_stream_batch(reader *r, struct ArrowArray *out, pt_error *err) {
  out->release = NULL;
  for (;;) {
    message m;
    int64_t at = r->src == SRC_REGION ? r->pos : -1; /* where m starts */
    int rc = read_message(r, &m, err);
    if (rc != PT_OK) {
      message_reset(&m);
      return rc;
    }
    if (m.eos) {
      message_reset(&m);
      r->finished = true;
      return PT_OK;
    }
    switch (m.type) {
      case PT_IPC_HDR_RECORD_BATCH:
        rc = decode_record_batch(r, &m, at, out, err);
        if (rc != PT_OK) pt__error_prefix(err, rc, "record batch %lld: ", (long long)r->n_batches);
        else r->n_batches++;
        message_reset(&m);
        return rc;
      case PT_IPC_HDR_DICTIONARY_BATCH:
        rc = apply_dictionary_batch(r, &m, err);
        break;
      case PT_IPC_HDR_SCHEMA:
        rc = pt__errorf(err, PT_EFORMAT, "a second schema message in the stream");
        break;
      default: rc = pt__errorf(err, PT_EFORMAT, "unexpected message type %d", m.type);
    }
    message_reset(&m);
    if (rc != PT_OK) return rc;
  }
}

static int next_file_batch(reader *r, struct ArrowArray *out, pt_error *err) {
  out->release = NULL;
  if (r->next_file_batch >= r->n_file_batches) {
    r->finished = true;
    return PT_OK;
  }
  int64_t index = r->next_file_batch++;
  message m;
  int64_t next;
  int rc = read_message_region(r, r->batch_offsets[index], r->size, &m, &next, err);
  if (rc == PT_OK && (m.eos || m.type != PT_IPC_HDR_RECORD_BATCH))
    rc = pt__errorf(err, PT_EFORMAT, "the footer's block does not point to a record batch");
  if (rc == PT_OK) rc = decode_record_batch(r, &m, r->batch_offsets[index], out, err);
  message_reset(&m);
  if (rc != PT_OK) pt__error_prefix(err, rc, "record batch %lld: ", (long long)index);
  return rc;
}

static int block_offset(const pt__fb_vec *v, uint32_t i, int64_t limit, int64_t *off,
                        pt_error *err) {
  const uint8_t *e = pt__fb_vec_elem(v, i);
  if (e == NULL) return fb_error(v->r, err);
  *off = pt__load_i64(e);
  if (*off < 8 || *off >= limit)
    return pt__errorf(err, PT_EFORMAT, "block %u starts at byte %lld, outside the file's %lld "
                                       "bytes of messages", i, (long long)*off, (long long)limit);
  return PT_OK;
}

/* Reads the footer of a file in r->data[0, r->size): schema, dictionaries,
 * where the record batches are. */
static int open_file(reader *r, pt_error *err) {
  const int64_t tail = 4 + PT_IPC_MAGIC_LEN;
  if (r->size < 8 + tail || memcmp(r->data + r->size - PT_IPC_MAGIC_LEN, PT_IPC_MAGIC,
                                   PT_IPC_MAGIC_LEN) != 0)
    return pt__errorf(err, PT_EFORMAT,
                      "truncated Arrow IPC file: the footer and closing magic are missing");
  int32_t footer_len = pt__load_i32(r->data + r->size - tail);
  if (footer_len <= 0 || footer_len > r->size - 8 - tail)
    return pt__errorf(err, PT_EFORMAT, "footer length %d does not fit the file of %lld bytes",
                      (int)footer_len, (long long)r->size);
  int64_t footer_at = r->size - tail - footer_len;
  pt__fb_reader fb;
  pt__fb_table footer, schema;
  pt__fb_vec dicts, batches;
  if (!pt__fb_reader_init(&fb, r->data + footer_at, footer_len, &footer))
    return pt__error_prefix(err, fb_error(&fb, err), "footer: ");
  /* -1: left out, as older Java and JS writers do; the messages carry
   * their own version, checked one by one (pyarrow reads such files). */
  int16_t version = pt__fb_i16(&footer, FOOTER_VERSION, -1);
  bool has_schema = pt__fb_table_get(&footer, FOOTER_SCHEMA, &schema);
  pt__fb_vector(&footer, FOOTER_DICTIONARIES, PT_IPC_BLOCK_SIZE, &dicts);
  pt__fb_vector(&footer, FOOTER_BATCHES, PT_IPC_BLOCK_SIZE, &batches);
  if (fb.bad) return pt__error_prefix(err, fb_error(&fb, err), "footer: ");
  int rc = version == -1 ? PT_OK : check_version(version, err);
  if (rc != PT_OK) return pt__error_prefix(err, rc, "footer: ");
  if (!has_schema) return pt__errorf(err, PT_EFORMAT, "footer: no schema");
  if ((rc = set_schema(r, &schema, err)) != PT_OK) return pt__error_prefix(err, rc, "schema: ");
  r->size = footer_at; /* messages lie before the footer */
  for (uint32_t i = 0; i < dicts.len; i++) {
    int64_t off;
    if ((rc = block_offset(&dicts, i, r->size, &off, err)) != PT_OK)
      return pt__error_prefix(err, rc, "footer: dictionaries: ");
    message m;
    int64_t next;
    rc = read_message_region(r, off, r->size, &m, &next, err);
    if (rc == PT_OK && (m.eos || m.type != PT_IPC_HDR_DICTIONARY_BATCH))
      rc = pt__errorf(err, PT_EFORMAT, "the footer's block does not point to a dictionary batch");
    if (rc == PT_OK) rc = apply_dictionary_batch(r, &m, err);
    message_reset(&m);
    if (rc != PT_OK) return pt__error_prefix(err, rc, "dictionary block %u: ", i);
  }
  if (batches.len > 0) {
    r->batch_offsets = pt__malloc((size_t)batches.len * sizeof *r->batch_offsets);
    if (r->batch_offsets == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  for (uint32_t i = 0; i < batches.len; i++)
    if ((rc = block_offset(&batches, i, r->size, &r->batch_offsets[i], err)) != PT_OK)
      return pt__error_prefix(err, rc, "footer: record batches: ");
  r->n_file_batches = batches.len;
  return PT_OK;
}

/* Reads the schema message that starts a stream. */
static int open_stream(reader *r, pt_error *err) {
  message m;
  int rc = read_message(r, &m, err);
  if (rc == PT_OK && (m.eos || m.type != PT_IPC_HDR_SCHEMA))
    rc = pt__errorf(err, PT_EFORMAT, m.eos ? "empty input: no schema message"
                                           : "the stream does not start with a schema message");
  if (rc == PT_OK) {
    rc = set_schema(r, &m.header, err);
    if (rc != PT_OK) pt__error_prefix(err, rc, "schema: ");
  }
  message_reset(&m);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* ArrowArrayStream */

static int errno_of(int rc) {
  switch (rc) {
    case PT_OK: return 0;
    case PT_ENOMEM: return ENOMEM;
    case PT_EIO: return EIO;
    case PT_ENOTSUP: return ENOSYS;
    default: return EINVAL;
  }
}

static void reader_free(reader *r) {
  if (r == NULL) return;
  for (int k = 0; k < r->n_ahead; k++)
    ahead_free(r->ahead[k].pre, r->ahead[k].n_pre, r->ahead[k].zregion);
  for (int64_t i = 0; r->slots && i < r->ids.n; i++) {
    pt__shared_unref(r->slots[i].cur);
    if (r->slots[i].vvalues.release) r->slots[i].vvalues.release(&r->slots[i].vvalues);
  }
  if (r->vschema.release) r->vschema.release(&r->vschema);
  pt__free(r->slots);
  pt__ipc_dicts_reset(&r->ids);
  if (r->schema.release) r->schema.release(&r->schema);
  pt__free(r->batch_offsets);
  pt__shared_unref(r->region);
  if (r->own_fd) close(r->fd);
  pt__free(r);
}

static int stream_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  reader *r = s->private_data;
  pt_error err;
  int rc = pt_schema_copy(&r->schema, out, &err);
  if (rc != PT_OK) {
    memcpy(r->last_error, err.message, sizeof r->last_error);
    return errno_of(rc);
  }
  return 0;
}

static int stream_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  reader *r = s->private_data;
  out->release = NULL;
  if (r->failed) return errno_of(r->failed);
  if (r->finished) return 0;
  pt_error err;
  int rc = r->is_file ? next_file_batch(r, out, &err) : next_stream_batch(r, out, &err);
  if (rc != PT_OK) {
    r->failed = rc;
    pt__error_prefix(&err, rc, "ipc: ");
    memcpy(r->last_error, err.message, sizeof r->last_error);
    return errno_of(rc);
  }
  return 0;
}

static const char *stream_get_last_error(struct ArrowArrayStream *s) {
  reader *r = s->private_data;
  return r->last_error[0] ? r->last_error : NULL;
}

static void stream_release(struct ArrowArrayStream *s) {
  if (s == NULL || s->release == NULL) return;
  reader_free(s->private_data);
  s->release = NULL;
  s->private_data = NULL;
}

static int finish_open(reader *r, const char *label, struct ArrowArrayStream *out,
                       pt_error *err) {
  int rc;
  if (r->src == SRC_REGION && r->size >= PT_IPC_MAGIC_LEN &&
      memcmp(r->data, PT_IPC_MAGIC, PT_IPC_MAGIC_LEN) == 0) {
    r->is_file = true;
    rc = open_file(r, err);
  } else {
    rc = open_stream(r, err);
  }
  if (rc != PT_OK) {
    pt__error_prefix(err, rc, "ipc: %s", label);
    return rc;
  }
  out->get_schema = stream_get_schema;
  out->get_next = stream_get_next;
  out->get_last_error = stream_get_last_error;
  out->release = stream_release;
  out->private_data = r;
  return PT_OK;
}

static reader *reader_new(pt_error *err) {
  reader *r = pt__calloc(1, sizeof *r);
  if (r == NULL) pt__errorf(err, PT_ENOMEM, "out of memory");
  else r->fd = -1;
  return r;
}

/* Opens a reader over a region; on failure the region's data is not
 * destroyed (the caller keeps it). */
static int open_region(const void *data, int64_t size, pt__shared *region, const char *label,
                       struct ArrowArrayStream *out, pt_error *err) {
  reader *r = reader_new(err);
  if (r == NULL) {
    region->destroy = NULL;
    pt__shared_unref(region);
    return PT_ENOMEM;
  }
  r->src = SRC_REGION;
  r->data = data;
  r->size = size;
  r->region = region;
  int rc = finish_open(r, label, out, err);
  if (rc != PT_OK) {
    /* Every array made while opening has been released, so ours is the last
     * reference: disarm it so the data stays the caller's. */
    region->destroy = NULL;
    reader_free(r);
  }
  return rc;
}

int pt_ipc_read_buffer(const void *data, int64_t size,
                       void (*free_data)(void *data, void *free_arg), void *free_arg,
                       struct ArrowArrayStream *out, pt_error *err) {
  if (out == NULL) return pt__errorf(err, PT_EINVAL, "ipc: out is NULL");
  out->release = NULL;
  if ((data == NULL && size != 0) || size < 0)
    return pt__errorf(err, PT_EINVAL, "ipc: invalid buffer (%p, %lld bytes)", data, (long long)size);
  if (data == NULL) data = empty_buffer;
  pt__shared *region = pt__shared_new((void *)data, free_data, free_arg);
  if (region == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  return open_region(data, size, region, "", out, err);
}

static void unmap(void *data, void *arg) { munmap(data, (size_t)(uintptr_t)arg); }

static int open_fd(int fd, bool own, const char *label, struct ArrowArrayStream *out,
                   pt_error *err) {
  reader *r = reader_new(err);
  if (r == NULL) return PT_ENOMEM;
  r->src = SRC_FD;
  r->fd = fd;
  r->own_fd = own;
  r->first_read = true;
  int rc = finish_open(r, label, out, err);
  if (rc != PT_OK) {
    r->own_fd = false; /* the caller closes it on failure */
    reader_free(r);
  }
  return rc;
}

int pt_ipc_read_fd(int fd, struct ArrowArrayStream *out, pt_error *err) {
  if (out == NULL) return pt__errorf(err, PT_EINVAL, "ipc: out is NULL");
  out->release = NULL;
  if (fd < 0) return pt__errorf(err, PT_EINVAL, "ipc: invalid file descriptor %d", fd);
  return open_fd(fd, false, "", out, err);
}

int pt_ipc_read_path(const char *path, struct ArrowArrayStream *out, pt_error *err) {
  if (out == NULL || path == NULL) return pt__errorf(err, PT_EINVAL, "ipc: NULL argument");
  out->release = NULL;
  pt__keep_freed_memory();
  if (strcmp(path, "-") == 0) return open_fd(STDIN_FILENO, false, "stdin: ", out, err);
  char label[300];
  snprintf(label, sizeof label, "'%.280s': ", path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return pt__errorf(err, PT_EIO, "ipc: cannot open '%s': %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return pt__errorf(err, PT_EIO, "ipc: cannot stat '%s': %s", path, strerror(e));
  }
  int rc;
  if (!S_ISREG(st.st_mode)) {
    rc = open_fd(fd, true, label, out, err);
    if (rc != PT_OK) close(fd);
  } else if (st.st_size == 0) {
    close(fd);
    rc = pt__errorf(err, PT_EFORMAT, "ipc: '%s' is empty", path);
  } else {
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping stays valid */
    if (map == MAP_FAILED)
      return pt__errorf(err, PT_EIO, "ipc: cannot map '%s': %s", path, strerror(e));
    pt__shared *region = pt__shared_new(map, unmap, (void *)(uintptr_t)st.st_size);
    if (region == NULL) {
      munmap(map, (size_t)st.st_size);
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    }
    rc = open_region(map, st.st_size, region, label, out, err);
    if (rc != PT_OK) munmap(map, (size_t)st.st_size);
  }
  return rc;
}
