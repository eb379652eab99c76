/* fuzz_frames.c — libFuzzer target for the control plane's decoders: the
 * input is fed to the frame decoder in two pieces (split where the first byte
 * says, as a socket may deliver it), every complete frame is popped and its
 * payload decoded as the message of its type, then freed; a status batch's
 * inline results go through the driver's check of them. A protocol error
 * must be an error, never a crash, a hang or a leak.
 */
#include <stddef.h>
#include <stdint.h>

#include "net/net.h"
#include "sched/sched.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pt__frame_decoder d;
  pt__frame_decoder_init(&d);
  pt_error err;
  size_t split = size ? (size_t)data[0] % (size + 1) : 0;
  const uint8_t *pieces[2] = {data, data + split};
  size_t lens[2] = {split, size - split};
  for (int p = 0; p < 2; p++) {
    if (pt__frame_decoder_feed(&d, pieces[p], lens[p], &err) != PT_OK) break;
    for (;;) {
      pt__frame f;
      int have = 0;
      if (pt__frame_decoder_next(&d, &f, &have, &err) != PT_OK || !have) break;
      ProtobufCMessage *msg = NULL;
      if (pt__msg_unpack(f.type, f.payload, f.len, &msg, &err) != PT_OK) continue;
      if (f.type == PT__MSG_STATUS_BATCH) {
        const Protium__StatusBatch *sb = (const Protium__StatusBatch *)msg;
        for (size_t i = 0; i < sb->n_statuses; i++)
          if (sb->statuses[i]->result_inline.len > 0)
            (void)pt__results_inline_check(sb->statuses[i], 0, &err);
      }
      pt__msg_free(msg);
    }
  }
  pt__frame_decoder_reset(&d);
  return 0;
}
