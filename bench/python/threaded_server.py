"""The bench's Python threaded server: the test service (test/apps/python-http/server.py, its
Handler unchanged: the standard library's BaseHTTPRequestHandler on ThreadingHTTPServer) with one
standard-library option set, StreamRequestHandler.disable_nagle_algorithm (TCP_NODELAY on each
accepted connection).

Why: http.server writes a response as two sends, the status line and headers (one flush at
end_headers) and then the body. With Nagle's algorithm on, the body waits in the kernel until the
client ACKs the headers, and a client that is waiting for the rest of the response delays that
ACK (40 ms on Linux). Measured under wrk -c32 (bench/results/2026-12-07-python-pacing.md): ~43 ms
between each response and the next request on every connection, ss showing the 11-byte body as
notsent with one segment unacked, ~450-570 req/s with the server's CPU ~5% busy. The server's
per-request figures were then the cost of idle pacing, not of load. The option changes no byte the
service writes and no syscall it makes (the same two sends per response); only when the kernel
puts the second on the wire.

Usage: threaded_server.py PORT
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "apps", "python-http"))
import server  # noqa: E402  (the test service's module; its __main__ block does not run)


class Handler(server.Handler):
    disable_nagle_algorithm = True


if __name__ == "__main__":
    server.serve(int(sys.argv[1]), Handler)
