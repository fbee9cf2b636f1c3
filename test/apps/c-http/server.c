/* Test service: a minimal thread-per-connection HTTP/1.1 server in C (read/writev/accept4),
 * keep-alive, Content-Length bodies. GET /fail -> 500, /missing -> 404, POST /echo echoes,
 * anything else 200. Heads must fit in 64 KiB; larger POST bodies are streamed back. Usage: server PORT */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static void *serve(void *arg)
{
	int fd = (int)(long)arg;
	static __thread char buf[65536];
	size_t have = 0;
	for (;;) {
		char *end = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
		if (!end) {
			if (have == sizeof(buf))
				break;
			ssize_t n = read(fd, buf + have, sizeof(buf) - have);
			if (n <= 0)
				break;
			have += n;
			continue;
		}
		size_t head = end - buf + 4;
		char method[16] = "", path[1024] = "";
		sscanf(buf, "%15s %1023s", method, path);
		long clen = 0;
		char *cl = strcasestr(buf, "\r\ncontent-length:");
		if (cl && cl < end)
			clen = strtol(cl + 17, NULL, 10);
		if (!strcmp(method, "POST") && head + clen > sizeof(buf)) {
			/* Large body: stream it back as it arrives. */
			char hdr[256];
			int hl = snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nContent-Length: %ld\r\n\r\n", clen);
			if (write(fd, hdr, hl) != hl)
				break;
			long left = clen;
			size_t part = have - head;
			if (part && write(fd, buf + head, part) != (ssize_t)part)
				break;
			left -= part;
			while (left > 0) {
				ssize_t n = read(fd, buf, left < (long)sizeof(buf) ? left : (long)sizeof(buf));
				if (n <= 0 || write(fd, buf, n) != n)
					goto out;
				left -= n;
			}
			have = 0;
			continue;
		}
		while (have < head + clen) {
			ssize_t n = read(fd, buf + have, sizeof(buf) - have);
			if (n <= 0)
				goto out;
			have += n;
		}
		int status = 200;
		const char *body = "ok";
		size_t blen = 2;
		if (!strcmp(path, "/fail")) {
			status = 500;
			body = "boom";
			blen = 4;
		} else if (!strcmp(path, "/missing")) {
			status = 404;
			body = "no";
			blen = 2;
		} else if (!strcmp(method, "POST")) {
			body = buf + head;
			blen = clen;
		}
		char hdr[256];
		int hl = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nContent-Type: text/plain\r\n\r\n",
				  status, blen);
		/* Head and body in one writev (no Nagle delay between two writes). */
		struct iovec iov[2] = { { hdr, hl }, { (void *)body, blen } };
		if (writev(fd, iov, blen ? 2 : 1) != (ssize_t)(hl + blen))
			break;
		size_t used = head + clen;
		memmove(buf, buf + used, have - used);
		have -= used;
	}
out:
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	int port = atoi(argv[1]);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 64)) {
		perror("listen");
		return 1;
	}
	printf("listening %d\n", port);
	fflush(stdout);
	for (;;) {
		int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		pthread_t t;
		pthread_create(&t, NULL, serve, (void *)(long)c);
		pthread_detach(t);
	}
}
