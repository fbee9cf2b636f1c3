const dist = process.argv[2];
const { parseHeadAt } = require(`${dist}/src/spans/sys-http-parse.js`);
// What the bench's Go server sees (wrk/loadgen request; net/http's answer), in a record-sized buffer.
const req = Buffer.from('GET /items/1 HTTP/1.1\r\nHost: 127.0.0.1:23456\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n', 'latin1');
const res = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 07 Dec 2026 15:06:30 GMT\r\nContent-Length: 3\r\n\r\n{}\n', 'latin1');
const bufs = Array.from({ length: 64 }, () => [Buffer.concat([Buffer.alloc(96), req]), Buffer.concat([Buffer.alloc(96), res])]);
function run(n) {
  let k = 0;
  for (let i = 0; i < n; i++) {
    const [q, r] = bufs[i & 63];
    const a = parseHeadAt(q, 96, 96 + req.length - 4, true);
    const b = parseHeadAt(r, 96, 96 + res.indexOf('\r\n\r\n'), true);
    k += a.headers.size + b.headers.size;
  }
  return k;
}
run(300000);
const out = [];
for (let r = 0; r < 5; r++) { const t0 = process.cpuUsage(); run(500000); const c = process.cpuUsage(t0); out.push(((c.user + c.system) * 1000) / 500000); }
out.sort((a, b) => a - b);
console.log(JSON.stringify({ dist, nsPerExchange: Math.round(out[2]), min: Math.round(out[0]) }));
