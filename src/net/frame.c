/* frame.c — control-plane frames (layout in net.h): encoding messages into a
 * buffer that one write sends, an incremental decoder that turns whatever
 * bytes arrived into whole frames and refuses malformed input without
 * reading past it, and blocking read/write helpers for the executor.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net/net.h"

/* ------------------------------------------------------------------------ */
/* Allocation */

/* Set when an allocation for protobuf-c failed on this thread: its unpack
 * returns NULL alike for corrupt bytes and for no memory. */
static _Thread_local int pb_alloc_failed;

static void *pb_alloc(void *data, size_t size) {
  void *p = pt__malloc(size);
  if (p == NULL) pb_alloc_failed = 1;
  return p;
}
static void pb_free(void *data, void *p) { pt__free(p); }

ProtobufCAllocator pt__pb_allocator = {pb_alloc, pb_free, NULL};

/* ------------------------------------------------------------------------ */
/* Encoding and decoding messages */

const ProtobufCMessageDescriptor *pt__msg_descriptor(pt__msg_type type) {
  switch (type) {
    case PT__MSG_HELLO: return &protium__hello__descriptor;
    case PT__MSG_HEARTBEAT: return &protium__heartbeat__descriptor;
    case PT__MSG_STATUS_BATCH: return &protium__status_batch__descriptor;
    case PT__MSG_WELCOME: return &protium__welcome__descriptor;
    case PT__MSG_LAUNCH_BATCH: return &protium__launch_batch__descriptor;
    case PT__MSG_KILL_TASKS: return &protium__kill_tasks__descriptor;
    case PT__MSG_CLEANUP: return &protium__cleanup__descriptor;
    case PT__MSG_SHUTDOWN: return &protium__shutdown__descriptor;
    case PT__MSG_BARRIER_CALL: return &protium__barrier_call__descriptor;
    case PT__MSG_BARRIER_FAULT: return &protium__barrier_fault__descriptor;
    case PT__MSG_BARRIER_REPLY: return &protium__barrier_reply__descriptor;
    case PT__MSG_BARRIER_ABORT: return &protium__barrier_abort__descriptor;
  }
  return NULL;
}

int pt__frame_append(pt_buf *out, pt__msg_type type, const ProtobufCMessage *msg,
                     pt_error *err) {
  const ProtobufCMessageDescriptor *desc = pt__msg_descriptor(type);
  if (desc == NULL || msg == NULL || msg->descriptor != desc)
    return pt__errorf(err, PT_EINVAL, "frame: message does not match type %d", (int)type);
  size_t size = protobuf_c_message_get_packed_size(msg);
  if (size > PT__MAX_FRAME - 4)
    return pt__errorf(err, PT_EINVAL, "frame: %s message of %zu bytes is larger than %u",
                      desc->short_name, size, PT__MAX_FRAME - 4);
  if (pt__buf_reserve(out, PT__FRAME_HEADER + size) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "frame: out of memory for a %zu-byte message", size);
  uint8_t *h = (uint8_t *)out->data + out->len;
  pt__store_u32(h, (uint32_t)(size + 4));
  uint16_t version = PT__PROTOCOL_VERSION, t = (uint16_t)type;
  memcpy(h + 4, &version, 2);
  memcpy(h + 6, &t, 2);
  size_t packed = protobuf_c_message_pack(msg, h + PT__FRAME_HEADER);
  if (packed != size)
    return pt__errorf(err, PT_EINTERNAL, "frame: packed %zu bytes, expected %zu", packed, size);
  out->len += PT__FRAME_HEADER + size;
  return PT_OK;
}

int pt__msg_unpack(pt__msg_type type, const uint8_t *payload, size_t len,
                   ProtobufCMessage **out, pt_error *err) {
  *out = NULL;
  const ProtobufCMessageDescriptor *desc = pt__msg_descriptor(type);
  if (desc == NULL) return pt__errorf(err, PT_EFORMAT, "unknown message type %d", (int)type);
  pb_alloc_failed = 0;
  *out = protobuf_c_message_unpack(desc, &pt__pb_allocator, len, payload);
  if (*out == NULL && pb_alloc_failed)
    return pt__errorf(err, PT_ENOMEM, "%s message of %zu bytes: out of memory",
                      desc->short_name, len);
  if (*out == NULL)
    return pt__errorf(err, PT_EFORMAT, "%s message of %zu bytes does not decode",
                      desc->short_name, len);
  return PT_OK;
}

void pt__msg_free(ProtobufCMessage *msg) {
  if (msg != NULL) protobuf_c_message_free_unpacked(msg, &pt__pb_allocator);
}

/* ------------------------------------------------------------------------ */
/* Incremental decoder */

void pt__frame_decoder_init(pt__frame_decoder *d) { memset(d, 0, sizeof *d); }

void pt__frame_decoder_reset(pt__frame_decoder *d) {
  pt_buf_free(&d->buf);
  pt__frame_decoder_init(d);
}

/* Drops popped bytes once they are the larger part, so that a long-lived
 * connection neither grows its buffer nor moves bytes on every frame. */
static void compact(pt__frame_decoder *d) {
  if (d->pos == 0) return;
  if (d->pos == d->buf.len) {
    d->buf.len = d->pos = 0;
  } else if (d->pos >= d->buf.len - d->pos) {
    memmove(d->buf.data, d->buf.data + d->pos, d->buf.len - d->pos);
    d->buf.len -= d->pos;
    d->pos = 0;
  }
}

int pt__frame_decoder_feed(pt__frame_decoder *d, const void *data, size_t len, pt_error *err) {
  compact(d);
  if (pt__buf_append(&d->buf, data, len) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "frame: out of memory buffering %zu bytes", len);
  return PT_OK;
}

static int protocol_error(pt__frame_decoder *d, pt_error *err, const char *fmt, unsigned a) {
  d->failed = 1;
  snprintf(d->why, sizeof d->why, fmt, a);
  return pt__errorf(err, PT_EFORMAT, "protocol error: %s", d->why);
}

int pt__frame_decoder_next(pt__frame_decoder *d, pt__frame *out, int *have, pt_error *err) {
  *have = 0;
  if (d->failed) return pt__errorf(err, PT_EFORMAT, "protocol error: %s", d->why);
  size_t avail = d->buf.len - d->pos;
  if (avail < PT__FRAME_HEADER) return PT_OK;
  const uint8_t *h = (const uint8_t *)d->buf.data + d->pos;
  uint32_t length = pt__load_u32(h);
  /* Check the header as soon as it is here, not when the (possibly huge)
   * rest has arrived. */
  if (length < 4) return protocol_error(d, err, "frame length %u is too small", length);
  if (length > PT__MAX_FRAME)
    return protocol_error(d, err, "frame of %u bytes is larger than the limit", length);
  uint16_t version = pt__load_u16(h + 4), type = pt__load_u16(h + 6);
  if (version != PT__PROTOCOL_VERSION)
    return protocol_error(d, err, "protocol version %u is not supported (this is 1)", version);
  if (pt__msg_descriptor((pt__msg_type)type) == NULL)
    return protocol_error(d, err, "unknown message type %u", type);
  if (avail - 4 < length) return PT_OK;
  out->type = (pt__msg_type)type;
  out->payload = h + PT__FRAME_HEADER;
  out->len = length - 4;
  d->pos += 4 + (size_t)length;
  *have = 1;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Blocking helpers */

int pt__write_all(int fd, const void *data, size_t len, pt_error *err) {
  const uint8_t *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n > 0) {
      p += n;
      len -= (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
        return pt__errorf(err, PT_EIO, "poll: %s", strerror(errno));
      continue;
    }
    return pt__errorf(err, PT_EIO, "write: %s", n < 0 ? strerror(errno) : "wrote nothing");
  }
  return PT_OK;
}

int pt__frame_fill(int fd, pt__frame_decoder *d, int *eof, pt_error *err) {
  *eof = 0;
  compact(d);
  if (pt__buf_reserve(&d->buf, 64 * 1024) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "frame: out of memory for the receive buffer");
  for (;;) {
    ssize_t n = read(fd, d->buf.data + d->buf.len, d->buf.cap - d->buf.len);
    if (n > 0) {
      d->buf.len += (size_t)n;
      return PT_OK;
    }
    if (n == 0) {
      *eof = 1;
      return PT_OK;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return PT_OK;
    return pt__errorf(err, PT_EIO, "read: %s", strerror(errno));
  }
}

int pt__frame_read(int fd, pt__frame_decoder *d, pt__frame *out, pt_error *err) {
  for (;;) {
    int have, eof;
    PT_RETURN_NOT_OK(pt__frame_decoder_next(d, out, &have, err));
    if (have) return PT_OK;
    PT_RETURN_NOT_OK(pt__frame_fill(fd, d, &eof, err));
    if (eof)
      return pt__errorf(err, PT_EIO, d->buf.len > d->pos
                                         ? "connection closed in the middle of a frame"
                                         : "connection closed");
  }
}
