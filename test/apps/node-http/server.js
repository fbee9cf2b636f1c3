// Test service: Node `http` server, nobody instrumented it.
//   GET /ok, /items/<id> -> 200; /fail -> 500; /missing -> 404; POST /echo -> echoes the body;
//   /chunked -> chunked body; /sleep?ms=N -> answers after N ms;
//   /call?url=U -> calls U with http.get and returns its status.
// Usage: node server.js PORT [HOST]   (HOST default 127.0.0.1; e.g. ::1 for IPv6)
'use strict';
const http = require('node:http');

const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  if (req.method === 'POST') {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    return;
  }
  if (u.pathname === '/fail') {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end('boom');
  } else if (u.pathname === '/missing') {
    res.writeHead(404);
    res.end('no');
  } else if (u.pathname === '/chunked') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('hello ');
    setTimeout(() => res.end('world'), 5);
  } else if (u.pathname === '/sleep') {
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('slept');
    }, Number(u.searchParams.get('ms') ?? 10));
  } else if (u.pathname === '/call') {
    http
      .get(u.searchParams.get('url'), (r) => {
        let body = '';
        r.on('data', (d) => (body += d));
        r.on('end', () => {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(`${r.statusCode} ${body}`);
        });
      })
      .on('error', (e) => {
        res.writeHead(502);
        res.end(String(e));
      });
  } else {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`ok ${u.pathname}`);
  }
});
server.keepAliveTimeout = 30_000;
server.listen(port, process.argv[3] ?? '127.0.0.1', () => console.log(`listening ${port}`));
process.on('SIGTERM', () => process.exit(0));
