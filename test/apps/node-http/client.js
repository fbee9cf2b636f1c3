// Test client: makes HTTP requests with Node's `http` when it receives SIGUSR2 (so the agent can
// be attached first), one per URL given, sequentially on fresh connections, then prints
// "done <status>..." and keeps running until SIGTERM.
// Usage: node client.js URL...
'use strict';
const http = require('node:http');

const urls = process.argv.slice(2);
function get(url) {
  return new Promise((resolve) => {
    http
      .get(url, { agent: false }, (r) => {
        r.resume();
        r.on('end', () => resolve(r.statusCode));
      })
      .on('error', (e) => resolve(`error:${e.code}`));
  });
}
process.on('SIGUSR2', async () => {
  const out = [];
  for (const u of urls) out.push(await get(u));
  console.log(`done ${out.join(' ')}`);
});
process.on('SIGTERM', () => process.exit(0));
console.log('ready');
setInterval(() => {}, 1 << 30);
