// node encbench.js DIST [alt|same]
const dist = process.argv[2];
const { TraceBatch } = require(`${dist}/receiver/otlp/trace-encoder.js`);
const resource = { attributes: { 'service.name': 'chain', 'process.pid': 1234, 'telemetry.sdk.name': 'spanbridge' } };
const hex = (n) => { let s = ''; for (let i = 0; i < n; i++) s += '0123456789abcdef'[(Math.random() * 16) | 0]; return s; };
const ids = Array.from({ length: 4096 }, () => [hex(32), hex(16), hex(16)]);
const f = (x) => Buffer.from(x, 'latin1').toString('latin1'); // a fresh string, as parsed from a record
function server(i) {
  const [t, s, p] = ids[i & 4095];
  return { traceId: t, spanId: s, parentSpanId: '', traceFlags: 1, traceState: '', name: 'GET /', kind: 'SERVER', startTimeUnixNano: 1700000000000000000n + BigInt(i), endTimeUnixNano: 1700000000000100000n + BigInt(i), status: { code: 'UNSET' }, resource,
    attributes: { 'http.request.method': f('GET'), 'network.protocol.version': f('1.1'), 'user_agent.original': f('loadgen/1.0'), 'url.path': f('/items/1'), 'url.scheme': 'http', 'http.route': f('/'), 'server.address': f('127.0.0.1'), 'server.port': 23601, 'client.address': f('127.0.0.1'), 'network.peer.address': f('127.0.0.1'), 'network.peer.port': 40000 + (i % 16), 'http.response.status_code': 200, 'thread.id': 24642, 'spanbridge.route.source': 'framework' } };
}
function client(i) {
  const [t, s, p] = ids[i & 4095];
  return { traceId: t, spanId: p, parentSpanId: s, traceFlags: 1, traceState: '', name: 'GET', kind: 'CLIENT', startTimeUnixNano: 1700000000000000000n + BigInt(i), endTimeUnixNano: 1700000000000100000n + BigInt(i), status: { code: 'UNSET' }, resource,
    attributes: { 'http.request.method': f('GET'), 'network.protocol.version': f('1.1'), 'user_agent.original': f('Go-http-client/1.1'), 'server.address': f('127.0.0.1'), 'server.port': 23602, 'url.full': f('http://127.0.0.1:23602/items/1'), 'network.peer.address': f('127.0.0.1'), 'network.peer.port': 23602, 'http.response.status_code': 200, 'thread.id': 24642, 'spanbridge.parent.source': 'thread' } };
}
const alt = process.argv[3] !== 'same';
const N = 65536;
const spans = Array.from({ length: N }, (_, i) => (alt && i % 2 ? client(i) : server(i)));
const mk = (i) => (alt && i % 2 ? client(i) : server(i));
function run(n) {
  let b = new TraceBatch(); let bytes = 0;
  for (let i = 0; i < n; i++) {
    b.push(spans[i % N]);
    if (b.length === 512) { bytes += b.finish().length; b = new TraceBatch(); }
  }
  return bytes;
}
run(200000);
const res = [];
for (let r = 0; r < 5; r++) { const t0 = process.cpuUsage(); run(300000); const c = process.cpuUsage(t0); res.push(((c.user + c.system) * 1000) / 300000); }
res.sort((a, b) => a - b);
console.log(JSON.stringify({ dist, alt, nsPerSpanMedian: Math.round(res[2]), min: Math.round(res[0]) }));
