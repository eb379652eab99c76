/* blocks.h — shuffle blocks across hosts: each executor on TCP serves the
 * map output it keeps in memory and the shuffle files of its local
 * directory on a port of its own (the block
 * server), and reduce tasks whose map output is not on their disk fetch
 * their segment from there. Connections pass the same handshake as the
 * control plane (src/net/tcp.h) before a request is read.
 *
 * Request (client -> server, after the handshake; integers little-endian):
 *
 *   offset  size  field
 *   0       4     magic "PTBK"
 *   4       4     u32 path length n (1 .. PT__BLOCK_PATH_MAX)
 *   8       8     u64 offset of the segment in the file
 *   16      8     u64 length of the segment (<= PT__MAX_FRAME)
 *   24      n     the file's path, under the server's directory
 *
 * The server serves the files named shuffle-* (map outputs; those kept in
 * memory, shuffle_mem.c, from there) and result-* (result partitions the
 * driver fetches, net.results) of its directory.
 *
 * Reply: u8 status; 0 = the length bytes follow (from memory, or from the
 * file with sendfile); 1 = a
 * u16 message length and the message (file missing, outside the directory,
 * range past its end), then the server closes the connection. After a
 * segment the connection takes the next request: fetching processes keep
 * connections per server (at most 8 idle, reused within 30 s of their last
 * use) across blocks and tasks; the server closes one idle for 60 s.
 */
#ifndef PT_EXEC_BLOCKS_H
#define PT_EXEC_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "net/tcp.h"
#include "net/tls.h"

#define PT__BLOCK_PATH_MAX 4096

typedef struct pt__block_server pt__block_server;

/* Serves the files under dir (borrowed for the server's life; so are
 * secret and tls, NULL = plain TCP) on every interface, any free port;
 * address "HOST:PORT" names it with advertise_host (the address peers reach
 * this host by). On PT_OK the caller owns *out; it runs until the process
 * ends. */
int pt__block_server_start(const char *dir, const pt__secret *secret, pt__tls_ctx *tls,
                           const char *advertise_host, pt__block_server **out, pt_error *err);
const char *pt__block_server_address(const pt__block_server *s);

/* Fetches len bytes at off of path from the block server at addr
 * ("HOST:PORT") into buf, over TLS when tls is not NULL (borrowed). PT_EIO
 * when it cannot be reached or refuses, with the server's message;
 * *unreachable = 1 when no authenticated connection could be made (the
 * executor is gone), a connect unanswered for connect_timeout_ms included
 * (executor.heartbeat_timeout: the driver's own rule for a lost peer; <= 0
 * waits as long as the kernel does). Thread-safe: the connections kept for
 * reuse are the process's. */
int pt__block_fetch(const char *addr, const pt__secret *secret, pt__tls_ctx *tls,
                    int64_t connect_timeout_ms, const char *path, int64_t off, size_t len,
                    uint8_t *buf, int *unreachable, pt_error *err);

#endif /* PT_EXEC_BLOCKS_H */
