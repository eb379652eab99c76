/* test_net_util.h — helpers the transport tests share: a raw connection to
 * a local driver port, waiting for a peer to close it, and the row count and
 * sum of a dataset's first int64 column (a shuffle's result checked exactly).
 * Header-only, like test_util.h, which it includes.
 */
#ifndef PT_TEST_NET_UTIL_H
#define PT_TEST_NET_UTIL_H

#include <poll.h>
#include <unistd.h>

#include "net/net.h"
#include "test_util.h"

/* A plain TCP connection to 127.0.0.1:port; the caller closes it. */
static int pt_test_connect_local(int port) {
  char where[64];
  snprintf(where, sizeof where, "tcp:127.0.0.1:%d", port);
  int fd = -1;
  CHECK(pt__net_connect(where, &fd, &err));
  return fd;
}

/* 1 when the peer closes fd (read returns 0 or fails) within 20 s. */
static int pt_test_closed_by_peer(int fd) {
  uint8_t buf[256];
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 20000) <= 0) return 0;
    ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0) return 1;
  }
}

/* Rows and the sum of column 0 (int64) of a collected dataset. */
static void pt_test_collect_sum(pt_dataset *ds, int64_t *rows, int64_t *sum) {
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  *rows = *sum = 0;
  for (;;) {
    struct ArrowArray a;
    assert_int_equal(st.get_next(&st, &a), 0);
    if (a.release == NULL) break;
    const int64_t *v = (const int64_t *)a.children[0]->buffers[1];
    for (int64_t i = 0; i < a.length; i++) *sum += v[a.children[0]->offset + i];
    *rows += a.length;
    a.release(&a);
  }
  st.release(&st);
}

#endif
