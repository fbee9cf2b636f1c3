// node tbench.mjs DIST PORT N  -> CPU us per send of a 230 KB body
import { createRequire } from 'node:module';
const [dist, port, n] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const { HttpTransport } = require(`${dist}/receiver/otlp/transport.js`);
const t = new HttpTransport({ url: `http://127.0.0.1:${port}/v1/traces`, compression: process.env.GZIP ? 'gzip' : 'none' });
const body = new Uint8Array(230 * 1024).map((_, i) => i * 7);
for (let i = 0; i < 50; i++) { const r = await t.send(body, 10000); if (r.kind !== 'success') throw new Error(JSON.stringify(r)); }
const c0 = process.cpuUsage(); const w0 = performance.now();
for (let i = 0; i < Number(n); i++) await t.send(body, 10000);
const c = process.cpuUsage(c0);
console.log(JSON.stringify({ dist, usPerSend: +((c.user + c.system) / Number(n)).toFixed(1), user: +(c.user / Number(n)).toFixed(1), sys: +(c.system / Number(n)).toFixed(1), wallMs: +((performance.now() - w0) / Number(n)).toFixed(3) }));
await t.close();
