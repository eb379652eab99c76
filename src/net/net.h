/* net.h — the control plane's framing between driver and executors: framed
 * messages over stream sockets (unix sockets locally, TCP later), encoded
 * with protobuf-c from control.proto. Data (record batches) never travels in
 * these frames; they carry paths of Arrow IPC files.
 *
 * Frame layout (all integers little-endian):
 *
 *   offset  size  field
 *   0       4     u32 length of what follows (version + type + payload)
 *   4       2     u16 protocol version (PT__PROTOCOL_VERSION)
 *   6       2     u16 message type (pt__msg_type)
 *   8       n     payload: the protobuf-c encoding of the message
 *
 * A frame longer than PT__MAX_FRAME, a version we don't speak, an unknown
 * type or a payload that does not decode is a protocol error: the connection
 * is closed and the peer treated as lost. Several frames are written with one
 * write call whenever there are several to send.
 */
#ifndef PT_NET_H
#define PT_NET_H

#include <stdint.h>

#include "core/core.h"
#include "net/control.pb-c.h"

#define PT__PROTOCOL_VERSION 1
#define PT__FRAME_HEADER 8
#define PT__MAX_FRAME (64u << 20) /* bytes after the length field */
/* net.results: a result of at most PT__INLINE_RESULT bytes travels in its
 * task's status (TaskStatus.result_inline) rather than through the block
 * server; the driver refuses an inline result over PT__INLINE_RESULT_MAX. */
#define PT__INLINE_RESULT (64u << 10)
#define PT__INLINE_RESULT_MAX (1u << 20)

typedef enum pt__msg_type {
  PT__MSG_HELLO = 1,
  PT__MSG_HEARTBEAT = 2,
  PT__MSG_STATUS_BATCH = 3,
  PT__MSG_BARRIER_CALL = 4,
  PT__MSG_BARRIER_FAULT = 14,
  PT__MSG_WELCOME = 16,
  PT__MSG_LAUNCH_BATCH = 17,
  PT__MSG_KILL_TASKS = 18,
  PT__MSG_CLEANUP = 19,
  PT__MSG_SHUTDOWN = 20,
  PT__MSG_BARRIER_REPLY = 21,
  PT__MSG_BARRIER_ABORT = 22,
} pt__msg_type;

/* ------------------------------------------------------------------------ */
/* Encoding */

/* Appends one frame (header + msg packed with protobuf-c) to out. Several
 * calls build a buffer that one write sends. PT_EINVAL for a message larger
 * than PT__MAX_FRAME, PT_ENOMEM. On failure out is left as it was. */
int pt__frame_append(pt_buf *out, pt__msg_type type, const ProtobufCMessage *msg,
                     pt_error *err);

/* The descriptor of the message carried by frames of this type; NULL for a
 * type we do not know. */
const ProtobufCMessageDescriptor *pt__msg_descriptor(pt__msg_type type);

/* Decodes a frame's payload as the message of its type. On PT_OK the caller
 * owns *out (free with pt__msg_free). PT_EFORMAT when the bytes do not
 * decode. */
int pt__msg_unpack(pt__msg_type type, const uint8_t *payload, size_t len,
                   ProtobufCMessage **out, pt_error *err);
void pt__msg_free(ProtobufCMessage *msg);

/* protobuf-c's allocator over pt__malloc/pt__free (fault injection reaches
 * decoding too). */
extern ProtobufCAllocator pt__pb_allocator;

/* ------------------------------------------------------------------------ */
/* Incremental decoding: feed bytes as they arrive, pop whole frames. */

typedef struct pt__frame {
  pt__msg_type type;
  const uint8_t *payload; /* borrowed from the decoder: valid until the next
                             feed, read or reset on it */
  size_t len;
} pt__frame;

typedef struct pt__frame_decoder {
  pt_buf buf;      /* bytes received; [pos, buf.len) not yet popped */
  size_t pos;
  int failed;      /* a protocol error was seen: every later call fails */
  char why[256];   /* the protocol error, repeated by later calls */
} pt__frame_decoder;

void pt__frame_decoder_init(pt__frame_decoder *d);
void pt__frame_decoder_reset(pt__frame_decoder *d);
/* Appends received bytes (copied). PT_ENOMEM. */
int pt__frame_decoder_feed(pt__frame_decoder *d, const void *data, size_t len, pt_error *err);
/* Pops the next complete frame: PT_OK with *have = 1 and *out filled, or
 * *have = 0 when more bytes are needed. PT_EFORMAT (protocol error: oversized
 * frame, wrong version, unknown type) leaves the decoder failed for good. */
int pt__frame_decoder_next(pt__frame_decoder *d, pt__frame *out, int *have, pt_error *err);

/* ------------------------------------------------------------------------ */
/* Blocking helpers (executor side; the driver uses libuv). */

/* Writes all len bytes to fd, retrying on EINTR, short writes and EAGAIN (a
 * non-blocking fd is polled). PT_EIO with strerror otherwise. */
int pt__write_all(int fd, const void *data, size_t len, pt_error *err);

/* Blocks until d holds a complete frame (reading fd as needed), then pops
 * it. PT_EIO "connection closed" at end of file (also mid-frame), PT_EIO on a
 * read error, PT_EFORMAT on a protocol error. */
int pt__frame_read(int fd, pt__frame_decoder *d, pt__frame *out, pt_error *err);

/* Reads whatever is available on fd into d (one read call, blocking if fd
 * is). *eof = 1 when the peer closed the connection. */
int pt__frame_fill(int fd, pt__frame_decoder *d, int *eof, pt_error *err);

#endif /* PT_NET_H */
