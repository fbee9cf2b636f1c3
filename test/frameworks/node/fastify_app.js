// Fastify service for the integration tests: stock Fastify + Node's http client, no tracing code.
// Serves the shared test-service protocol (test/frameworks/README.md). `node fastify_app.js PORT`
'use strict';
const fastify = require('fastify')();
const http = require('node:http');

const NAME = process.env.OTEL_SERVICE_NAME || 'fastify';
const keepAlive = new http.Agent({ keepAlive: true });
fastify.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

function send(method, url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: keepAlive, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

fastify.get('/hello', async (_req, reply) => reply.type('text/plain').send(`hello from ${NAME}\n`));
fastify.get('/items/:item', async (req) => ({ item: Number(req.params.item), service: NAME }));
fastify.route({ method: ['GET', 'POST', 'PUT'], url: '/headers', handler: async (req) => ({ traceparent: req.headers.traceparent || '', tracestate: req.headers.tracestate || '' }) });
fastify.route({
  method: ['GET', 'POST', 'PUT'],
  url: '/call',
  handler: async (req, reply) => {
    const r = await send(req.method, req.query.url, req.method === 'GET' ? undefined : req.body);
    return reply.code(r.status).type('text/plain').send(`${NAME} -> ${r.text}`);
  },
});
fastify.post('/test', async (req) => {
  for (const a of JSON.parse(req.body)) {
    try { await send('POST', a.url, JSON.stringify(a.arguments)); } catch { /* the harness judges */ }
  }
  return 'ok';
});
fastify.listen({ port: Number(process.argv[2]), host: '127.0.0.1' });
