/*
 * xfrm_ack.so — LD_PRELOAD for libreswan's pluto on a kernel without ESP (see ../../README.md).
 *
 * pluto installs IPsec SAs with XFRM_MSG_NEWSA / XFRM_MSG_UPDSA on a NETLINK_XFRM socket; this
 * kernel answers them with EPROTONOSUPPORT and pluto aborts the Quick Mode. For those two
 * messages only, this library appends the request to the file named by XFRM_ACK_LOG (one hex
 * line each: the SPI and keys pluto wanted to install, compared with ours by the tests) and
 * answers with a netlink ACK instead of passing it to the kernel. Everything else — policies,
 * SPI allocation, every other socket — goes to the kernel untouched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 4096

static unsigned char *pending[MAX_FD];
static size_t pending_len[MAX_FD];

static int is_xfrm(int fd)
{
	int domain = 0, proto = 0;
	socklen_t len = sizeof(domain);
	if (fd < 0 || fd >= MAX_FD)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_NETLINK)
		return 0;
	len = sizeof(proto);
	return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 && proto == NETLINK_XFRM;
}

static void log_request(const unsigned char *buf, size_t len)
{
	const char *path = getenv("XFRM_ACK_LOG");
	FILE *f;
	if (!path || !(f = fopen(path, "a")))
		return;
	for (size_t i = 0; i < len; i++)
		fprintf(f, "%02x", buf[i]);
	fputc('\n', f);
	fclose(f);
}

/* An SA install: log it, queue the ACK, report it sent. Otherwise -1: send it for real. */
static ssize_t intercept(int fd, const void *buf, size_t len)
{
	const struct nlmsghdr *h = buf;
	struct nlmsgerr *err;
	struct nlmsghdr *ack;
	size_t size = NLMSG_SPACE(sizeof(struct nlmsgerr));

	if (len < sizeof(*h) || (h->nlmsg_type != XFRM_MSG_NEWSA && h->nlmsg_type != XFRM_MSG_UPDSA) || !is_xfrm(fd))
		return -1;
	log_request(buf, len);
	ack = calloc(1, size);
	if (!ack)
		return -1;
	ack->nlmsg_len = size;
	ack->nlmsg_type = NLMSG_ERROR;
	ack->nlmsg_seq = h->nlmsg_seq;
	ack->nlmsg_pid = 0;
	err = NLMSG_DATA(ack);
	err->error = 0;
	err->msg = *h;
	free(pending[fd]);
	pending[fd] = (unsigned char *)ack;
	pending_len[fd] = size;
	return (ssize_t)len;
}

static ssize_t take_ack(int fd, void *buf, size_t len, struct sockaddr *from, socklen_t *fromlen)
{
	size_t n;
	if (fd < 0 || fd >= MAX_FD || !pending[fd])
		return -1;
	n = pending_len[fd] < len ? pending_len[fd] : len;
	memcpy(buf, pending[fd], n);
	free(pending[fd]);
	pending[fd] = NULL;
	if (from && fromlen && *fromlen >= sizeof(struct sockaddr_nl)) {
		struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
		memcpy(from, &nl, sizeof(nl));
		*fromlen = sizeof(nl);
	}
	return (ssize_t)n;
}

ssize_t write(int fd, const void *buf, size_t len)
{
	static ssize_t (*real)(int, const void *, size_t);
	ssize_t r = intercept(fd, buf, len);
	if (r >= 0)
		return r;
	if (!real)
		real = dlsym(RTLD_NEXT, "write");
	return real(fd, buf, len);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	static ssize_t (*real)(int, const void *, size_t, int);
	ssize_t r = intercept(fd, buf, len);
	if (r >= 0)
		return r;
	if (!real)
		real = dlsym(RTLD_NEXT, "send");
	return real(fd, buf, len, flags);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen)
{
	static ssize_t (*real)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t r = intercept(fd, buf, len);
	if (r >= 0)
		return r;
	if (!real)
		real = dlsym(RTLD_NEXT, "sendto");
	return real(fd, buf, len, flags, to, tolen);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	static ssize_t (*real)(int, const struct msghdr *, int);
	if (msg && msg->msg_iovlen == 1) {
		ssize_t r = intercept(fd, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len);
		if (r >= 0)
			return r;
	}
	if (!real)
		real = dlsym(RTLD_NEXT, "sendmsg");
	return real(fd, msg, flags);
}

ssize_t read(int fd, void *buf, size_t len)
{
	static ssize_t (*real)(int, void *, size_t);
	ssize_t r = take_ack(fd, buf, len, NULL, NULL);
	if (r >= 0)
		return r;
	if (!real)
		real = dlsym(RTLD_NEXT, "read");
	return real(fd, buf, len);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	static ssize_t (*real)(int, void *, size_t, int);
	ssize_t r = take_ack(fd, buf, len, NULL, NULL);
	if (r >= 0)
		return r;
	if (!real)
		real = dlsym(RTLD_NEXT, "recv");
	return real(fd, buf, len, flags);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen)
{
	static ssize_t (*real)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t r = take_ack(fd, buf, len, from, fromlen);
	if (r >= 0)
		return r;
	if (!real)
		real = dlsym(RTLD_NEXT, "recvfrom");
	return real(fd, buf, len, flags, from, fromlen);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	static ssize_t (*real)(int, struct msghdr *, int);
	if (msg && msg->msg_iovlen >= 1) {
		socklen_t fromlen = msg->msg_namelen;
		ssize_t r = take_ack(fd, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len, msg->msg_name, &fromlen);
		if (r >= 0) {
			msg->msg_namelen = msg->msg_name ? fromlen : 0;
			msg->msg_flags = 0;
			msg->msg_controllen = 0;
			return r;
		}
	}
	if (!real)
		real = dlsym(RTLD_NEXT, "recvmsg");
	return real(fd, msg, flags);
}
