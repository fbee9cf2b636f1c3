import http from 'node:http';
const s = http.createServer((req, res) => { req.on('data', () => {}); req.on('end', () => { res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 }); res.end(); }); });
s.keepAliveTimeout = 60000;
s.listen(Number(process.argv[2]), '127.0.0.1');
