const dist = process.argv[2];
const { HistogramStore } = require(`${dist}/receiver/metrics/histogram-store.js`);
const { HTTP_DURATION_BUCKETS } = require(`${dist}/receiver/metrics/http-duration.js`);
const { RedMetricsSink } = require(`${dist}/receiver/metrics/red-sink.js`);
const { PrometheusRegistry } = require(`${dist}/receiver/prometheus/registry.js`);
const { SelfMetrics } = require(`${dist}/src/metrics/counters.js`);
const f = (x) => Buffer.from(x, 'latin1').toString('latin1');
const resource = { attributes: { 'service.name': 'chain', 'process.pid': 1 } };
const N = 300000;
const make = () => Array.from({ length: N }, (_, i) => i % 2
  ? { kind: 'CLIENT', status: { code: 'UNSET' }, resource, startTimeUnixNano: 0n, endTimeUnixNano: BigInt(100000 + i), attributes: { 'http.request.method': f('GET'), 'network.protocol.version': f('1.1'), 'server.address': f('127.0.0.1'), 'server.port': 23602, 'url.full': f('http://127.0.0.1:23602/items/1'), 'http.response.status_code': 200 } }
  : { kind: 'SERVER', status: { code: 'UNSET' }, resource, startTimeUnixNano: 0n, endTimeUnixNano: BigInt(100000 + i), attributes: { 'http.request.method': f('GET'), 'network.protocol.version': f('1.1'), 'url.path': f('/items/1'), 'url.scheme': 'http', 'http.route': f('/'), 'http.response.status_code': 200 } });
const sink = new RedMetricsSink(new HistogramStore(HTTP_DURATION_BUCKETS, 2000, () => 0), new SelfMetrics(), new PrometheusRegistry());
const run = (sp) => { for (let i = 0; i < sp.length; i++) sink.add(sp[i]); };
run(make());
const out = [];
for (let r = 0; r < 5; r++) { const sp = make(); const t0 = process.cpuUsage(); run(sp); const c = process.cpuUsage(t0); out.push(((c.user + c.system) * 1000) / N); }
out.sort((a, b) => a - b);
console.log(JSON.stringify({ dist, nsPerSpan: Math.round(out[2]), min: Math.round(out[0]) }));
