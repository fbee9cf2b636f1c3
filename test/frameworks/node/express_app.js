// Express service for the integration tests: stock Express + axios (or fetch with CLIENT=fetch),
// no tracing code. Serves the shared test-service protocol (test/frameworks/README.md).
// `node express_app.js PORT`
'use strict';
const express = require('express');
const axios = require('axios');
const http = require('node:http');

const NAME = process.env.OTEL_SERVICE_NAME || 'express';
const USE_FETCH = process.env.CLIENT === 'fetch';
const keepAlive = new http.Agent({ keepAlive: true });
const app = express();
app.use(express.text({ type: '*/*' }));

async function send(method, url, body) {
  if (USE_FETCH) {
    const r = await fetch(url, { method, body: method === 'GET' ? undefined : body });
    return { status: r.status, text: await r.text() };
  }
  const r = await axios.request({ method, url, data: body, httpAgent: keepAlive, validateStatus: () => true, responseType: 'text', transformResponse: (x) => x });
  return { status: r.status, text: r.data };
}

app.get('/hello', (_req, res) => res.type('text/plain').send(`hello from ${NAME}\n`));
app.get('/items/:item', (req, res) => res.json({ item: Number(req.params.item), service: NAME }));
app.all('/headers', (req, res) => res.json({ traceparent: req.headers.traceparent || '', tracestate: req.headers.tracestate || '' }));
app.all('/call', async (req, res) => {
  const delay = Number(req.query.delay_ms || 0);
  if (delay) await new Promise((r) => setTimeout(r, Math.random() * delay));
  const r = await send(req.method, req.query.url, req.method === 'GET' ? undefined : req.body);
  res.status(r.status).type('text/plain').send(`${NAME} -> ${r.text}`);
});
app.get('/call-after', (req, res) => {
  res.type('text/plain').send(`${NAME} answered first\n`);
  send('GET', req.query.url).catch(() => { /* nobody waits for it */ });
});
app.post('/test', express.json(), async (req, res) => {
  for (const a of JSON.parse(req.body)) {
    try { await send('POST', a.url, JSON.stringify(a.arguments)); } catch { /* the harness judges */ }
  }
  res.send('ok');
});
app.listen(Number(process.argv[2]), '127.0.0.1');
