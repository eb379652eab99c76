/* tcp.c — addresses and blocking sockets for the transport across hosts:
 * "unix:PATH" or "tcp:HOST:PORT" (IPv4, IPv6 in brackets, or a name that
 * getaddrinfo resolves), connect with TCP_NODELAY (control frames are small
 * and latency-bound), and listening sockets for executors' block servers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/tcp.h"

int pt__addr_split(const char *addr, char *host, size_t cap, int *port, pt_error *err) {
  const char *colon, *h = addr;
  size_t hl;
  if (addr[0] == '[') {
    const char *close = strchr(addr, ']');
    if (!close || close[1] != ':')
      return pt__errorf(err, PT_EINVAL, "address '%s': want [IPV6]:PORT", addr);
    h = addr + 1;
    hl = (size_t)(close - h);
    colon = close + 1;
  } else {
    colon = strrchr(addr, ':');
    if (!colon) return pt__errorf(err, PT_EINVAL, "address '%s': want HOST:PORT", addr);
    hl = (size_t)(colon - addr);
    if (memchr(addr, ':', hl))
      return pt__errorf(err, PT_EINVAL, "address '%s': write an IPv6 host in brackets, "
                        "[::1]:PORT", addr);
  }
  char *end;
  errno = 0;
  long p = strtol(colon + 1, &end, 10);
  if (colon[1] == 0 || *end || errno || p < 0 || p > 65535)
    return pt__errorf(err, PT_EINVAL, "address '%s': port is not a number from 0 to 65535",
                      addr);
  if (hl >= cap) return pt__errorf(err, PT_EINVAL, "address '%s': host name too long", addr);
  memcpy(host, h, hl);
  host[hl] = 0;
  *port = (int)p;
  return PT_OK;
}

void pt__addr_join(const char *host, int port, char *out, size_t cap) {
  if (strchr(host, ':')) snprintf(out, cap, "[%s]:%d", host, port);
  else snprintf(out, cap, "%s:%d", host, port);
}

static int connect_unix(const char *path, int *out, pt_error *err) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr.sun_path)
    return pt__errorf(err, PT_EINVAL, "socket path '%s' is too long", path);
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return pt__errorf(err, PT_EIO, "socket: %s", strerror(errno));
  while (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    close(fd);
    return pt__errorf(err, PT_EIO, "cannot connect to '%s': %s", path, strerror(e));
  }
  *out = fd;
  return PT_OK;
}

/* connect(2) that gives up after timeout_ms (> 0; <= 0 waits as long as
 * the kernel does: its SYN retries take two minutes for a host that has
 * gone quiet). 0, or -1 with errno set (ETIMEDOUT when time ran out). */
static int connect_within(int fd, const struct sockaddr *sa, socklen_t len, int64_t timeout_ms) {
  if (timeout_ms <= 0) {
    int r;
    while ((r = connect(fd, sa, len)) != 0 && errno == EINTR) {
    }
    return r;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return -1;
  int r = connect(fd, sa, len);
  if (r != 0 && (errno == EINPROGRESS || errno == EINTR)) {
    int64_t end = pt__mono_ms() + timeout_ms;
    for (;;) {
      int64_t left = end - pt__mono_ms();
      if (left <= 0) {
        errno = ETIMEDOUT;
        return -1;
      }
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      int n = poll(&p, 1, (int)(left > 1000000 ? 1000000 : left));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return -1;
      if (n == 0) continue;
      int e = 0;
      socklen_t el = sizeof e;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0) return -1;
      if (e != 0) {
        errno = e;
        return -1;
      }
      r = 0;
      break;
    }
  }
  if (r == 0 && fcntl(fd, F_SETFL, flags) != 0) return -1;
  return r;
}

static int connect_tcp(const char *addr, int64_t timeout_ms, int *out, pt_error *err) {
  char host[256];
  int port;
  PT_RETURN_NOT_OK(pt__addr_split(addr, host, sizeof host, &port, err));
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
  int g = getaddrinfo(host, service, &hints, &res);
  if (g != 0)
    return pt__errorf(err, PT_EIO, "cannot resolve '%s': %s", host, gai_strerror(g));
  int e = 0;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      e = errno;
      continue;
    }
    if (connect_within(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms) == 0) {
      int one = 1;
      (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      freeaddrinfo(res);
      *out = fd;
      return PT_OK;
    }
    e = errno;
    close(fd);
  }
  freeaddrinfo(res);
  if (e == ETIMEDOUT && timeout_ms > 0)
    return pt__errorf(err, PT_EIO, "cannot connect to %s: no answer within %lld ms (the host "
                      "is down or cut off from this one)", addr, (long long)timeout_ms);
  return pt__errorf(err, PT_EIO, "cannot connect to %s: %s", addr, strerror(e));
}

int pt__net_connect_within(const char *where, int64_t timeout_ms, int *fd, pt_error *err) {
  *fd = -1;
  if (strncmp(where, "tcp:", 4) == 0) return connect_tcp(where + 4, timeout_ms, fd, err);
  if (strncmp(where, "unix:", 5) == 0) return connect_unix(where + 5, fd, err);
  return connect_unix(where, fd, err);
}

int pt__net_connect(const char *where, int *fd, pt_error *err) {
  return pt__net_connect_within(where, 0, fd, err);
}

int pt__tcp_listen(const char *host, int port, int *out, int *bound_port, pt_error *err) {
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE},
                  *res = NULL;
  int g = getaddrinfo(host && *host ? host : NULL, service, &hints, &res);
  if (g != 0)
    return pt__errorf(err, PT_EINVAL, "cannot resolve '%s': %s", host, gai_strerror(g));
  /* With no host, the IPv6 wildcard first: it takes IPv4 as well. */
  int e = 0, fd = -1;
  for (int pass = 0; pass < 2 && fd < 0; pass++)
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
      if ((pass == 0) != (ai->ai_family == AF_INET6)) continue;
      fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) {
        e = errno;
        continue;
      }
      int one = 1, zero = 0;
      (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (ai->ai_family == AF_INET6 && !(host && *host))
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
      if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) break;
      e = errno;
      close(fd);
      fd = -1;
    }
  freeaddrinfo(res);
  if (fd < 0)
    return pt__errorf(err, PT_EIO, "cannot listen on %s port %d: %s", host && *host ? host : "*",
                      port, strerror(e));
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &sl);
  *bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  *out = fd;
  return PT_OK;
}

int pt__sockaddr_host(const void *sa, char *out, size_t cap, int *port) {
  const struct sockaddr *a = sa;
  socklen_t sl;
  if (a->sa_family == AF_INET6) sl = sizeof(struct sockaddr_in6);
  else if (a->sa_family == AF_INET) sl = sizeof(struct sockaddr_in);
  else return PT_EINVAL;
  /* getnameinfo, not inet_ntop: it keeps a link-local address's scope
   * ("fe80::1%eth0"), without which the address names no interface. */
  char serv[16];
  if (getnameinfo(a, sl, out, (socklen_t)cap, serv, sizeof serv,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return PT_EINVAL;
  if (port) *port = atoi(serv);
  return PT_OK;
}

void pt__peer_name(int fd, char *out, size_t cap) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char host[PT__HOST_MAX] = "?";
  int port = 0;
  memset(&ss, 0, sizeof ss);
  if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 &&
      pt__sockaddr_host(&ss, host, sizeof host, &port) != PT_OK) {
    snprintf(out, cap, "a local socket");
    return;
  }
  pt__addr_join(host, port, out, cap);
}
