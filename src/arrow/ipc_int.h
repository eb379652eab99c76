/* ipc_int.h — private to the Arrow IPC code (ipc_schema.c, ipc_write.c,
 * ipc_read.c, compress.c): the byte layout of the stream and file formats,
 * the FlatBuffers table and field ids of Message.fbs, Schema.fbs and File.fbs
 * that we read and write, and the few functions these files share.
 *
 * Encapsulated message (all integers little-endian):
 *
 *   offset  size  field
 *   0       4     continuation marker 0xFFFFFFFF (absent in pre-0.15 framing,
 *                 where the stream starts directly with the length)
 *   4       4     int32 metadata length M: flatbuffer bytes + padding, so
 *                 that 8 + M is a multiple of 8 (we always write it so)
 *   8       M     Message flatbuffer (root table Message), then zero padding
 *   8+M     B     body: the buffers, each starting at a multiple of 8 and
 *                 zero-padded to one; B = Message.bodyLength
 *
 *   End of stream: 0xFFFFFFFF 0x00000000 (old framing: 0x00000000), or
 *   simply the end of the input.
 *
 * Stream: Schema message, then DictionaryBatch and RecordBatch messages in
 * any order as long as each dictionary comes before the first batch that uses
 * it, then end of stream.
 *
 * File:
 *
 *   0       6     magic "ARROW1"
 *   6       2     zero padding
 *   8       ...   a stream as above (Schema message first, with EOS)
 *   F       L     Footer flatbuffer (root table Footer)
 *   F+L     4     int32 L
 *   F+L+4   6     magic "ARROW1"
 *
 * Block (struct, 24 bytes): int64 offset of the message's first byte (the
 * continuation marker) from the file start; int32 metaDataLength = 8 + M
 * (prefix included); 4 bytes padding; int64 bodyLength.
 *
 * Compressed bodies (RecordBatch.compression set): every buffer of nonzero
 * length is an int64 uncompressed length followed by the codec's frame; an
 * uncompressed length of -1 means the bytes follow as they are. Zero-length
 * buffers stay empty.
 *
 * Tables (field id: name type) used here:
 *
 *   Message         0 version:short(MetadataVersion) 1 header_type:ubyte
 *                   2 header:table 3 bodyLength:long 4 custom_metadata
 *   Schema          0 endianness:short(0 Little, 1 Big) 1 fields:[Field]
 *                   2 custom_metadata:[KeyValue] 3 features:[long]
 *   Field           0 name:string 1 nullable:bool 2 type_type:ubyte
 *                   3 type:table 4 dictionary:DictionaryEncoding
 *                   5 children:[Field] 6 custom_metadata:[KeyValue]
 *   KeyValue        0 key:string 1 value:string
 *   DictionaryEncoding 0 id:long 1 indexType:Int 2 isOrdered:bool
 *                   3 dictionaryKind:short
 *   RecordBatch     0 length:long 1 nodes:[FieldNode] 2 buffers:[Buffer]
 *                   3 compression:BodyCompression 4 variadicBufferCounts
 *   FieldNode       struct {long length; long null_count} (16 bytes)
 *   Buffer          struct {long offset; long length} (16 bytes)
 *   BodyCompression 0 codec:byte(0 LZ4_FRAME, 1 ZSTD) 1 method:byte(BUFFER)
 *   DictionaryBatch 0 id:long 1 data:RecordBatch 2 isDelta:bool
 *   Footer          0 version:short 1 schema:Schema 2 dictionaries:[Block]
 *                   3 recordBatches:[Block] 4 custom_metadata
 *   Int 0 bitWidth:int 1 is_signed:bool      FloatingPoint 0 precision:short
 *   Decimal 0 precision:int 1 scale:int 2 bitWidth:int(=128)
 *   Date 0 unit:short(0 DAY, 1 MILLISECOND)  Time 0 unit 1 bitWidth
 *   Timestamp 0 unit:short 1 timezone:string Duration 0 unit:short
 *   FixedSizeBinary 0 byteWidth:int          FixedSizeList 0 listSize:int
 *   Null, Utf8, Binary, LargeUtf8, LargeBinary, Bool, List, LargeList,
 *   Struct_: no fields.
 */
#ifndef PT_ARROW_IPC_INT_H
#define PT_ARROW_IPC_INT_H

#include <string.h>

#include "arrow/arrow.h"
#include "arrow/flatbuf.h"

#define PT_IPC_CONTINUATION 0xFFFFFFFFu
#define PT_IPC_MAGIC "ARROW1"
#define PT_IPC_MAGIC_LEN 6
/* Schema nesting deeper than this is refused (it bounds our recursion). */
#define PT_IPC_MAX_NESTING 48

/* MetadataVersion */
enum { PT_IPC_V1 = 0, PT_IPC_V2, PT_IPC_V3, PT_IPC_V4, PT_IPC_V5 };

/* MessageHeader union */
enum {
  PT_IPC_HDR_NONE = 0,
  PT_IPC_HDR_SCHEMA = 1,
  PT_IPC_HDR_DICTIONARY_BATCH = 2,
  PT_IPC_HDR_RECORD_BATCH = 3,
  PT_IPC_HDR_TENSOR = 4,
  PT_IPC_HDR_SPARSE_TENSOR = 5,
};

/* Type union of Schema.fbs */
enum {
  PT_FBT_NONE = 0,
  PT_FBT_NULL = 1,
  PT_FBT_INT = 2,
  PT_FBT_FLOATING_POINT = 3,
  PT_FBT_BINARY = 4,
  PT_FBT_UTF8 = 5,
  PT_FBT_BOOL = 6,
  PT_FBT_DECIMAL = 7,
  PT_FBT_DATE = 8,
  PT_FBT_TIME = 9,
  PT_FBT_TIMESTAMP = 10,
  PT_FBT_INTERVAL = 11,
  PT_FBT_LIST = 12,
  PT_FBT_STRUCT = 13,
  PT_FBT_UNION = 14,
  PT_FBT_FIXED_SIZE_BINARY = 15,
  PT_FBT_FIXED_SIZE_LIST = 16,
  PT_FBT_MAP = 17,
  PT_FBT_DURATION = 18,
  PT_FBT_LARGE_BINARY = 19,
  PT_FBT_LARGE_UTF8 = 20,
  PT_FBT_LARGE_LIST = 21,
  PT_FBT_RUN_END_ENCODED = 22,
  PT_FBT_BINARY_VIEW = 23,
  PT_FBT_UTF8_VIEW = 24,
  PT_FBT_LIST_VIEW = 25,
  PT_FBT_LARGE_LIST_VIEW = 26,
};

/* Field ids (see the table above). */
enum { MSG_VERSION = 0, MSG_HEADER_TYPE = 1, MSG_HEADER = 2, MSG_BODY_LENGTH = 3 };
enum { SCHEMA_ENDIANNESS = 0, SCHEMA_FIELDS = 1, SCHEMA_METADATA = 2, SCHEMA_FEATURES = 3 };
enum {
  FIELD_NAME = 0,
  FIELD_NULLABLE = 1,
  FIELD_TYPE_TYPE = 2,
  FIELD_TYPE = 3,
  FIELD_DICTIONARY = 4,
  FIELD_CHILDREN = 5,
  FIELD_METADATA = 6,
};
enum { KV_KEY = 0, KV_VALUE = 1 };
enum { DICTENC_ID = 0, DICTENC_INDEX_TYPE = 1, DICTENC_ORDERED = 2, DICTENC_KIND = 3 };
enum { RB_LENGTH = 0, RB_NODES = 1, RB_BUFFERS = 2, RB_COMPRESSION = 3, RB_VARIADIC = 4 };
enum { COMP_CODEC = 0, COMP_METHOD = 1 };
enum { DB_ID = 0, DB_DATA = 1, DB_IS_DELTA = 2 };
enum { FOOTER_VERSION = 0, FOOTER_SCHEMA = 1, FOOTER_DICTIONARIES = 2, FOOTER_BATCHES = 3 };

#define PT_IPC_BLOCK_SIZE 24
#define PT_IPC_NODE_SIZE 16
#define PT_IPC_BUFFER_SIZE 16

/* ------------------------------------------------------------------------ */
/* Dictionary ids of a schema: which dictionary-encoded node has which id. */

typedef struct pt__ipc_dict_entry {
  int64_t id;
  const struct ArrowSchema *node; /* the dictionary-encoded node (borrowed) */
} pt__ipc_dict_entry;

typedef struct pt__ipc_dicts {
  pt__ipc_dict_entry *items; /* owned */
  int64_t n, cap;
} pt__ipc_dicts;

void pt__ipc_dicts_reset(pt__ipc_dicts *d);
int pt__ipc_dicts_add(pt__ipc_dicts *d, int64_t id, const struct ArrowSchema *node);
/* Index of node's entry, or -1. */
int64_t pt__ipc_dicts_find_node(const pt__ipc_dicts *d, const struct ArrowSchema *node);
/* Index of the first entry with this id, or -1. */
int64_t pt__ipc_dicts_find_id(const pt__ipc_dicts *d, int64_t id);
/* Whether two schema trees have the same types (names, nullability and
 * metadata aside). */
bool pt__ipc_same_types(const struct ArrowSchema *a, const struct ArrowSchema *b, int depth);

/* ------------------------------------------------------------------------ */
/* Schema <-> flatbuffers (ipc_schema.c) */

/* Writes the Schema table of schema (a "+s" node whose children are the
 * columns). Dictionary-encoded nodes take their ids from dicts, which must
 * hold every one of them (pt__ipc_dicts_assign). */
int pt__ipc_schema_encode(pt__fb_builder *b, const struct ArrowSchema *schema,
                          const pt__ipc_dicts *dicts, pt__fb_ref *out, pt_error *err);
/* Gives every dictionary-encoded node of schema (in columns, nested fields
 * and dictionary value types) an id: 0, 1, ... in depth-first order, the
 * nodes inside a dictionary's value type before the node itself. */
int pt__ipc_dicts_assign(const struct ArrowSchema *schema, pt__ipc_dicts *dicts, pt_error *err);

/* Reads a Schema table into *out (a protium-owned "+s" schema) and the ids of
 * its dictionary-encoded nodes into dicts (pointing into *out). On failure
 * nothing is left to release; the error is PT_EFORMAT for malformed input,
 * PT_ENOTSUP for types protium does not have. */
int pt__ipc_schema_decode(const pt__fb_table *schema, struct ArrowSchema *out,
                          pt__ipc_dicts *dicts, pt_error *err);

/* ------------------------------------------------------------------------ */
/* Compression (compress.c) */

const char *pt__codec_name(pt_compression codec);
/* Largest output pt__compress can produce for n input bytes. */
int64_t pt__compress_bound(pt_compression codec, int64_t n);
/* Compresses src[0, n) into dst (cap bytes, at least the bound). */
int pt__compress(pt_compression codec, int level, const void *src, int64_t n, void *dst,
                 int64_t cap, int64_t *written, pt_error *err);
/* One big buffer is compressed in parts on several threads: parts of
 * PT__COMPRESS_PART bytes (the last may be shorter), whose outputs, one
 * after another, make the buffer's compressed bytes. ZSTD: each part is a
 * frame of its own (a run of frames decompresses to the concatenation of
 * their contents, in libzstd and in every Arrow reader, which call
 * ZSTD_decompress). LZ4: Arrow readers take exactly one frame per buffer, so
 * the parts are the independent blocks of one frame (blocks of at most
 * 1 MiB, content size set): the first part begins with the frame's header,
 * the last ends with its end mark. */
#define PT__COMPRESS_PART ((int64_t)1 << 20)
/* Largest output of pt__compress_part for a part of n bytes. */
int64_t pt__compress_part_bound(pt_compression codec, int64_t n);
/* Compresses part src[0, n) of a buffer of total bytes: the first and/or
 * last part of it, as said. */
int pt__compress_part(pt_compression codec, int level, const void *src, int64_t n, int64_t total,
                      bool first, bool last, void *dst, int64_t cap, int64_t *written,
                      pt_error *err);
/* Decompresses src[0, n), which must give exactly `expected` bytes, into a
 * new 64-byte aligned buffer; on PT_OK the caller owns *out (pt__free). */
int pt__decompress(pt_compression codec, const uint8_t *src, int64_t n, int64_t expected,
                   uint8_t **out, pt_error *err);
/* The same into dst, which has room for exactly `expected` bytes (the
 * caller's; its contents are undefined after a failure). */
int pt__decompress_into(pt_compression codec, const uint8_t *src, int64_t n, uint8_t *dst,
                        int64_t expected, pt_error *err);
/* Bytes pt__decompress allocates before any output for n bytes of input
 * declaring `expected`: all of them when a 16:1 ratio (plus 1 MiB) covers
 * them, so a lying length costs at most that much up front. */
static inline int64_t pt__decompress_first_cap(int64_t n, int64_t expected) {
  int64_t guess = n > (INT64_MAX >> 8) ? INT64_MAX : n * 16 + (1 << 20);
  return expected < guess ? expected : guess;
}

/* ------------------------------------------------------------------------ */
/* Memory (ipc_write.c) */

/* Asks for transparent huge pages behind p, a block from pt__malloc or
 * pt__malloc_aligned, when it is big and sits alone in its own mapping (as
 * glibc and musl place big blocks); otherwise does nothing. Only a hint: it
 * makes first touch of a fresh block take one fault per 2 MiB instead of one
 * per 4 KiB, and leaves realloc able to move the mapping without copying. */
void pt__advise_huge(void *p);

#endif /* PT_ARROW_IPC_INT_H */
