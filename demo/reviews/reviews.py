#!/usr/bin/env python3
"""demo-reviews: a plain Python (standard library only) HTTP service with no tracing code.

GET /reviews/<item> -> a small JSON document. The Go demo frontend calls it for every
/shop/<item> request, so traces cross languages: spanbridge traces this process from syscall
tracepoints, the Go services from uprobes.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARS = {"apple": 4, "banana": 5, "cherry": 3, "durian": 2}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, with Content-Length on every response

    def do_GET(self):
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) == 2 and parts[0] == "reviews":
            item = parts[1]
            if item in STARS:
                self.reply(200, {"item": item, "stars": STARS[item], "count": 3 * STARS[item] + 1})
            else:
                self.reply(404, {"item": item, "error": "no reviews"})
        elif self.path == "/healthz":
            self.reply(200, {"ok": True})
        else:
            self.reply(404, {"error": "not found"})

    def reply(self, status, doc):
        body = (json.dumps(doc) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):  # quiet: one line per request is noise under load
        pass


def main():
    host, _, port = os.environ.get("REVIEWS_ADDR", "127.0.0.1:8082").rpartition(":")
    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    print(f"demo-reviews on {host}:{port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
