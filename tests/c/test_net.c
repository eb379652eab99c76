/* test_net.c — control-plane frames: round trips of every message type,
 * frames split across reads and coalesced into one, protocol errors for
 * malformed headers, and random bytes that must never crash the decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/net.h"

#define CHECK(call)                                                                    \
  do {                                                                                 \
    pt_error err = {0};                                                                \
    int chk_rc_ = (call);                                                              \
    if (chk_rc_ != PT_OK) fail_msg("%s: %s (%d)", #call, err.message, chk_rc_);        \
  } while (0)

static void make_launch(Protium__LaunchBatch *lb, Protium__TaskLaunch *tasks,
                        Protium__TaskLaunch **task_ptrs, int n) {
  protium__launch_batch__init(lb);
  for (int i = 0; i < n; i++) {
    protium__task_launch__init(&tasks[i]);
    tasks[i].task_id = 1000 + i;
    tasks[i].stage_id = 3;
    tasks[i].partition = i;
    tasks[i].attempt = i % 2;
    task_ptrs[i] = &tasks[i];
  }
  lb->n_tasks = (size_t)n;
  lb->tasks = task_ptrs;
}

static void test_round_trip(void **state) {
  pt_buf out = {0};
  Protium__Hello hello;
  protium__hello__init(&hello);
  hello.protocol_version = 1;
  hello.executor_id = 7;
  hello.pid = 4242;
  hello.slots = 3;
  hello.host = "localhost";
  hello.local_dir = "/tmp/x";
  CHECK(pt__frame_append(&out, PT__MSG_HELLO, &hello.base, &err));

  Protium__LaunchBatch lb;
  Protium__TaskLaunch tasks[5], *ptrs[5];
  make_launch(&lb, tasks, ptrs, 5);
  CHECK(pt__frame_append(&out, PT__MSG_LAUNCH_BATCH, &lb.base, &err));
  Protium__Shutdown sd;
  protium__shutdown__init(&sd);
  CHECK(pt__frame_append(&out, PT__MSG_SHUTDOWN, &sd.base, &err));

  pt__frame_decoder d;
  pt__frame_decoder_init(&d);
  CHECK(pt__frame_decoder_feed(&d, out.data, out.len, &err));
  pt__frame f;
  int have;
  CHECK(pt__frame_decoder_next(&d, &f, &have, &err));
  assert_int_equal(have, 1);
  assert_int_equal(f.type, PT__MSG_HELLO);
  ProtobufCMessage *m;
  CHECK(pt__msg_unpack(f.type, f.payload, f.len, &m, &err));
  Protium__Hello *h = (Protium__Hello *)m;
  assert_int_equal(h->executor_id, 7);
  assert_int_equal(h->pid, 4242);
  assert_int_equal(h->slots, 3);
  assert_string_equal(h->local_dir, "/tmp/x");
  pt__msg_free(m);

  CHECK(pt__frame_decoder_next(&d, &f, &have, &err));
  assert_int_equal(have, 1);
  assert_int_equal(f.type, PT__MSG_LAUNCH_BATCH);
  CHECK(pt__msg_unpack(f.type, f.payload, f.len, &m, &err));
  Protium__LaunchBatch *l = (Protium__LaunchBatch *)m;
  assert_int_equal(l->n_tasks, 5);
  assert_int_equal(l->tasks[4]->task_id, 1004);
  assert_int_equal(l->tasks[3]->attempt, 1);
  pt__msg_free(m);

  CHECK(pt__frame_decoder_next(&d, &f, &have, &err));
  assert_int_equal(have, 1);
  assert_int_equal(f.type, PT__MSG_SHUTDOWN);
  assert_int_equal(f.len, 0);
  CHECK(pt__frame_decoder_next(&d, &f, &have, &err));
  assert_int_equal(have, 0);
  pt__frame_decoder_reset(&d);
  pt_buf_free(&out);
}

/* Feeding one byte at a time and in odd chunks yields the same frames. */
static void test_split_reads(void **state) {
  pt_buf out = {0};
  for (int k = 0; k < 20; k++) {
    Protium__Heartbeat hb;
    protium__heartbeat__init(&hb);
    hb.executor_id = k;
    hb.running_tasks = k * 3;
    CHECK(pt__frame_append(&out, PT__MSG_HEARTBEAT, &hb.base, &err));
  }
  for (size_t chunk = 1; chunk < 40; chunk += 7) {
    pt__frame_decoder d;
    pt__frame_decoder_init(&d);
    int seen = 0;
    for (size_t off = 0; off < out.len; off += chunk) {
      size_t n = out.len - off < chunk ? out.len - off : chunk;
      CHECK(pt__frame_decoder_feed(&d, out.data + off, n, &err));
      for (;;) {
        pt__frame f;
        int have;
        CHECK(pt__frame_decoder_next(&d, &f, &have, &err));
        if (!have) break;
        ProtobufCMessage *m;
        CHECK(pt__msg_unpack(f.type, f.payload, f.len, &m, &err));
        assert_int_equal(((Protium__Heartbeat *)m)->executor_id, seen);
        assert_int_equal(((Protium__Heartbeat *)m)->running_tasks, seen * 3);
        pt__msg_free(m);
        seen++;
      }
    }
    assert_int_equal(seen, 20);
    pt__frame_decoder_reset(&d);
  }
  pt_buf_free(&out);
}

/* Through a real socket pair: many frames written at once, read back with
 * the blocking helper; end of file gives a clear error. */
static void test_socket(void **state) {
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  pt_buf out = {0};
  Protium__StatusBatch sb;
  protium__status_batch__init(&sb);
  Protium__TaskStatus st[50], *ptrs[50];
  for (int i = 0; i < 50; i++) {
    protium__task_status__init(&st[i]);
    st[i].task_id = i;
    st[i].state = PROTIUM__TASK_STATE__TASK_SUCCEEDED;
    st[i].error = "no error at all, just some bytes to make frames longer";
    ptrs[i] = &st[i];
  }
  sb.n_statuses = 50;
  sb.statuses = ptrs;
  for (int i = 0; i < 30; i++)
    CHECK(pt__frame_append(&out, PT__MSG_STATUS_BATCH, &sb.base, &err));
  CHECK(pt__write_all(sv[0], out.data, out.len, &err));
  close(sv[0]);
  pt__frame_decoder d;
  pt__frame_decoder_init(&d);
  for (int i = 0; i < 30; i++) {
    pt__frame f;
    CHECK(pt__frame_read(sv[1], &d, &f, &err));
    ProtobufCMessage *m;
    CHECK(pt__msg_unpack(f.type, f.payload, f.len, &m, &err));
    assert_int_equal(((Protium__StatusBatch *)m)->n_statuses, 50);
    pt__msg_free(m);
  }
  pt__frame f;
  pt_error err = {0};
  assert_int_equal(pt__frame_read(sv[1], &d, &f, &err), PT_EIO);
  assert_string_equal(err.message, "connection closed");
  pt__frame_decoder_reset(&d);
  close(sv[1]);
  pt_buf_free(&out);
}

static void expect_protocol_error(const uint8_t *bytes, size_t n, const char *message) {
  pt__frame_decoder d;
  pt__frame_decoder_init(&d);
  CHECK(pt__frame_decoder_feed(&d, bytes, n, &err));
  pt__frame f;
  int have;
  pt_error err = {0};
  assert_int_equal(pt__frame_decoder_next(&d, &f, &have, &err), PT_EFORMAT);
  assert_string_equal(err.message, message);
  assert_int_equal(have, 0);
  /* Stays failed. */
  assert_int_equal(pt__frame_decoder_next(&d, &f, &have, &err), PT_EFORMAT);
  pt__frame_decoder_reset(&d);
}

static void test_protocol_errors(void **state) {
  uint8_t h[8];
  pt__store_u32(h, PT__MAX_FRAME + 1);
  h[4] = 1, h[5] = 0, h[6] = 1, h[7] = 0;
  expect_protocol_error(h, 8, "protocol error: frame of 67108865 bytes is larger than the limit");
  pt__store_u32(h, 2);
  expect_protocol_error(h, 8, "protocol error: frame length 2 is too small");
  pt__store_u32(h, 4);
  h[4] = 2;
  expect_protocol_error(h, 8, "protocol error: protocol version 2 is not supported (this is 1)");
  h[4] = 1, h[6] = 99;
  expect_protocol_error(h, 8, "protocol error: unknown message type 99");

  /* A valid header over a payload that is not the message. */
  uint8_t bad[12] = {0};
  pt__store_u32(bad, 8);
  bad[4] = 1, bad[6] = PT__MSG_LAUNCH_BATCH;
  memset(bad + 8, 0xff, 4);
  pt__frame_decoder d;
  pt__frame_decoder_init(&d);
  CHECK(pt__frame_decoder_feed(&d, bad, sizeof bad, &err));
  pt__frame f;
  int have;
  CHECK(pt__frame_decoder_next(&d, &f, &have, &err));
  assert_int_equal(have, 1);
  ProtobufCMessage *m;
  pt_error err = {0};
  assert_int_equal(pt__msg_unpack(f.type, f.payload, f.len, &m, &err), PT_EFORMAT);
  assert_string_equal(err.message, "LaunchBatch message of 4 bytes does not decode");
  assert_null(m);
  pt__frame_decoder_reset(&d);

  /* A truncated frame is just incomplete, and EOF names it. */
  pt_buf out = {0};
  Protium__Heartbeat hb;
  protium__heartbeat__init(&hb);
  hb.executor_id = 123456789;
  CHECK(pt__frame_append(&out, PT__MSG_HEARTBEAT, &hb.base, &err));
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  CHECK(pt__write_all(sv[0], out.data, out.len - 1, &err));
  close(sv[0]);
  pt__frame_decoder_init(&d);
  assert_int_equal(pt__frame_read(sv[1], &d, &f, &err), PT_EIO);
  assert_string_equal(err.message, "connection closed in the middle of a frame");
  pt__frame_decoder_reset(&d);
  close(sv[1]);
  pt_buf_free(&out);
}

/* Random bytes and mutated valid frames: errors or frames, never a crash
 * (the ASan build checks the reads). */
static void test_random_bytes(void **state) {
  srand(12345);
  pt_buf valid = {0};
  Protium__LaunchBatch lb;
  Protium__TaskLaunch tasks[3], *ptrs[3];
  make_launch(&lb, tasks, ptrs, 3);
  CHECK(pt__frame_append(&valid, PT__MSG_LAUNCH_BATCH, &lb.base, &err));
  uint8_t bytes[512];
  for (int iter = 0; iter < 20000; iter++) {
    size_t n;
    if (iter % 2) {
      n = (size_t)(rand() % (int)sizeof bytes);
      for (size_t i = 0; i < n; i++) bytes[i] = (uint8_t)rand();
    } else {
      n = valid.len;
      memcpy(bytes, valid.data, n);
      for (int k = 0; k < 1 + rand() % 4; k++)
        bytes[8 + rand() % (int)(n - 8)] ^= (uint8_t)(1 + rand() % 255);
      if (iter % 4 == 0) bytes[rand() % 8] ^= (uint8_t)(1 + rand() % 255);
    }
    pt__frame_decoder d;
    pt__frame_decoder_init(&d);
    CHECK(pt__frame_decoder_feed(&d, bytes, n, &err));
    for (;;) {
      pt__frame f;
      int have;
      if (pt__frame_decoder_next(&d, &f, &have, NULL) != PT_OK || !have) break;
      ProtobufCMessage *m;
      if (pt__msg_unpack(f.type, f.payload, f.len, &m, NULL) == PT_OK) pt__msg_free(m);
    }
    pt__frame_decoder_reset(&d);
  }
  pt_buf_free(&valid);
}

static void test_alloc_failure(void **state) {
  pt_buf out = {0};
  Protium__LaunchBatch lb;
  Protium__TaskLaunch tasks[4], *ptrs[4];
  make_launch(&lb, tasks, ptrs, 4);
  /* Encoding into a buffer that cannot grow: PT_ENOMEM, buffer untouched. */
  pt__alloc_fail_after(0);
  pt_error e = {0};
  int rc = pt__frame_append(&out, PT__MSG_LAUNCH_BATCH, &lb.base, &e);
  pt__alloc_fail_after(-1);
  assert_int_equal(rc, PT_ENOMEM);
  assert_int_equal(out.len, 0);
  CHECK(pt__frame_append(&out, PT__MSG_LAUNCH_BATCH, &lb.base, &err));
  /* Decoding with the k-th allocation failing: PT_ENOMEM said as such (not
   * "does not decode"), nothing leaked (ASan), until k is past the
   * allocations needed and the message decodes whole. */
  int failures = 0, ok = 0;
  for (int64_t k = 0; k < 20 && !ok; k++) {
    ProtobufCMessage *m = NULL;
    memset(&e, 0, sizeof e);
    pt__alloc_fail_after(k);
    rc = pt__msg_unpack(PT__MSG_LAUNCH_BATCH, (uint8_t *)out.data + 8, out.len - 8, &m, &e);
    pt__alloc_fail_after(-1);
    if (rc != PT_OK) {
      assert_int_equal(rc, PT_ENOMEM);
      assert_null(m);
      assert_non_null(strstr(e.message, "out of memory"));
      failures++;
      continue;
    }
    ok = 1;
    Protium__LaunchBatch *got = (Protium__LaunchBatch *)m;
    assert_int_equal(got->n_tasks, 4);
    for (int i = 0; i < 4; i++) {
      assert_int_equal(got->tasks[i]->task_id, 1000 + i);
      assert_int_equal(got->tasks[i]->partition, i);
      assert_int_equal(got->tasks[i]->attempt, i % 2);
    }
    pt__msg_free(m);
  }
  assert_true(failures >= 5); /* the batch and each of its 4 tasks */
  assert_true(ok);
  pt_buf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_split_reads),
      cmocka_unit_test(test_socket),         cmocka_unit_test(test_protocol_errors),
      cmocka_unit_test(test_random_bytes),   cmocka_unit_test(test_alloc_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
