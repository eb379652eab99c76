/* fuzz_auth.c — libFuzzer target for what a TCP peer's first bytes meet:
 * the handshake check (tcp.h), fed growing prefixes as a socket may deliver
 * them, then — only when the response passes — the frame decoder on the
 * rest, as the driver does. Refusal must be an error, never a crash or a
 * read past the bytes given.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/net.h"
#include "net/tcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pt__secret s = {.len = 6};
  memcpy(s.bytes, "secret", 6);
  uint8_t nonce[PT__AUTH_NONCE] = {0};
  uint8_t proof[PT__AUTH_PROOF];
  pt_error err;
  int done = 0;
  size_t step = size ? (size_t)data[0] % 16 + 1 : 1;
  for (size_t n = 0; n <= size; n += step) {
    size_t have = n < PT__AUTH_RESPONSE ? n : PT__AUTH_RESPONSE;
    if (pt__auth_check(&s, nonce, data, have, &done, proof, &err) != PT_OK || done) break;
  }
  if (!done || size < PT__AUTH_RESPONSE) return 0;
  pt__frame_decoder d;
  pt__frame_decoder_init(&d);
  if (pt__frame_decoder_feed(&d, data + PT__AUTH_RESPONSE, size - PT__AUTH_RESPONSE, &err) ==
      PT_OK)
    for (;;) {
      pt__frame f;
      int got = 0;
      if (pt__frame_decoder_next(&d, &f, &got, &err) != PT_OK || !got) break;
      ProtobufCMessage *msg = NULL;
      if (pt__msg_unpack(f.type, f.payload, f.len, &msg, &err) == PT_OK) pt__msg_free(msg);
    }
  pt__frame_decoder_reset(&d);
  return 0;
}
