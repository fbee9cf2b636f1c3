"""Test service: Python http.server (ThreadingHTTPServer), nobody instrumented it.

Routes:
  GET  /ok, /items/<id>          200 text
  GET  /fail                     500
  GET  /missing                  404
  POST /echo                     200, echoes the body (Content-Length)
  GET  /chunked                  200, chunked body
  GET  /call?url=<url>           calls <url> with urllib (a new connection per call) and returns its
                                 status and body; &tp=<traceparent> sends that header;
                                 &keepalive=1 uses one shared keep-alive connection per target
  GET  /sleep?ms=N               sleeps N ms
  GET  /bytes?n=N                200, N bytes of body written with one sendall (one blocking send)
Usage: server.py PORT
"""
import http.client
import sys
import time
import urllib.parse
import urllib.request
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEEPALIVE = {}
KEEPALIVE_LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_text(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path == "/fail":
            self.send_text(500, "boom")
        elif u.path == "/missing":
            self.send_text(404, "no")
        elif u.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif u.path == "/call":
            target = q["url"][0]
            if "keepalive" in q:  # one shared keep-alive connection per target
                u2 = urllib.parse.urlparse(target)
                with KEEPALIVE_LOCK:
                    conn = KEEPALIVE.get(u2.netloc)
                    if conn is None:
                        conn = KEEPALIVE[u2.netloc] = http.client.HTTPConnection(u2.hostname, u2.port, timeout=10)
                    conn.request("GET", u2.path or "/")
                    r = conn.getresponse()
                    body = r.read().decode()
                self.send_text(200, f"{r.status} {body}")
                return
            req = urllib.request.Request(target)
            if "tp" in q:  # the application propagates its own traceparent
                req.add_header("traceparent", q["tp"][0])
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    body = r.read().decode()
                    status = r.status
            except urllib.error.HTTPError as e:
                body, status = e.read().decode(), e.code
            self.send_text(200, f"{status} {body}")
        elif u.path == "/bytes":
            data = b"b" * int(q["n"][0])
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif u.path == "/sleep":
            time.sleep(int(q.get("ms", ["10"])[0]) / 1000)
            self.send_text(200, "slept")
        else:
            self.send_text(200, "ok " + u.path)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(port, handler=Handler):
    """Serves `handler` on 127.0.0.1:port, a thread per connection; says "listening PORT" when bound."""
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", port), handler)
    print(f"listening {port}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
