import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Registry } from 'prom-client';
import { createMetrics, METRIC_NAMES } from '../../../src/observability/metrics.js';
import {
  HttpServerStartError,
  startHttpServer,
  type HealthReport,
  type HttpServerHandle,
} from '../../../src/observability/http-server.js';

const HOST = '127.0.0.1';

async function get(url: string, method = 'GET') {
  const response = await fetch(url, { method });
  return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
}

void describe('startHttpServer', () => {
  const metrics = createMetrics(new Registry());
  let report: HealthReport = { live: true, ready: true, details: { state: 'running', modelVersion: 'v1' } };
  const servers: HttpServerHandle[] = [];
  const start = async () => {
    const server = await startHttpServer({
      host: HOST,
      port: 0,
      registry: metrics.registry,
      health: () => report,
    });
    servers.push(server);
    return server;
  };
  after(async () => {
    await Promise.all(servers.map((server) => server.close()));
  });

  void it('binds to the host given, on a free port when asked for port 0', async () => {
    const server = await start();
    assert.ok(server.port > 0);
    assert.equal(server.url, `http://${HOST}:${server.port}`);
    assert.equal(server.host, HOST);
    assert.equal((await get(`${server.url}/healthz`)).status, 200);
    // Linux routes all of 127.0.0.0/8 to loopback: a server bound to every interface would answer here.
    await assert.rejects(fetch(`http://127.0.0.2:${server.port}/healthz`));
  });

  void it('serves /metrics in Prometheus text with every named metric', async () => {
    const server = await start();
    metrics.candidatesIngested.inc(5);
    metrics.deadLettered.inc({ reason: 'schema' });
    metrics.consumerLag.set({ topic: 'candidates', partition: '3' }, 7);
    const { status, type, body } = await get(`${server.url}/metrics`);
    assert.equal(status, 200);
    assert.equal(type, metrics.registry.contentType);
    for (const name of METRIC_NAMES) assert.match(body, new RegExp(`^# TYPE ${name} `, 'm'), name);
    assert.match(body, /^acft_candidates_ingested_total 5$/m);
    assert.match(body, /^acft_dead_letter_total\{reason="schema"\} 1$/m);
    assert.match(body, /^acft_consumer_lag\{topic="candidates",partition="3"\} 7$/m);
    assert.match(body, /^acft_process_resident_memory_bytes /m);
  });

  void it('answers /healthz and /readyz with 200 and a JSON body when live and ready', async () => {
    const server = await start();
    report = { live: true, ready: true, details: { state: 'running' } };
    const health = await get(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    assert.match(health.type ?? '', /^application\/json/);
    assert.equal((JSON.parse(health.body) as { status: string }).status, 'live');
    const ready = await get(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.body), {
      status: 'ready',
      live: true,
      ready: true,
      reasons: [],
      details: { state: 'running' },
    });
  });

  void it('answers /readyz with 503 and the reasons when not ready, while /healthz stays 200', async () => {
    const server = await start();
    report = {
      live: true,
      ready: false,
      reasons: ['broker disconnected', 'no model served'],
      details: { broker: 'disconnected' },
    };
    const ready = await get(`${server.url}/readyz`);
    assert.equal(ready.status, 503);
    const body = JSON.parse(ready.body) as { status: string; reasons: string[] };
    assert.equal(body.status, 'not ready');
    assert.deepEqual(body.reasons, ['broker disconnected', 'no model served']);
    assert.equal((await get(`${server.url}/healthz`)).status, 200);
  });

  void it('answers /healthz with 503 when not live, and 503 when the health check throws', async () => {
    const server = await start();
    report = { live: false, ready: false, reasons: ['pipeline stopped'] };
    assert.equal((await get(`${server.url}/healthz`)).status, 503);
    const failing = await startHttpServer({
      host: HOST,
      port: 0,
      registry: metrics.registry,
      health: () => Promise.reject(new Error('secret internals')),
    });
    servers.push(failing);
    const response = await get(`${failing.url}/readyz`);
    assert.equal(response.status, 503);
    assert.doesNotMatch(response.body, /secret internals/);
  });

  void it('answers 404 for other paths, 405 for other methods, and ignores query strings', async () => {
    const server = await start();
    report = { live: true, ready: true };
    assert.equal((await get(`${server.url}/`)).status, 404);
    assert.equal((await get(`${server.url}/metrics/extra`)).status, 404);
    assert.equal((await get(`${server.url}/metrics`, 'POST')).status, 405);
    assert.equal((await get(`${server.url}/readyz?verbose=1`)).status, 200);
    const head = await get(`${server.url}/healthz`, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  void it('fails with a clear message when the port is already in use', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen({ host: HOST, port: 0 }, resolve));
    const address = blocker.address();
    assert.ok(address !== null && typeof address === 'object');
    try {
      await assert.rejects(
        startHttpServer({ host: HOST, port: address.port, registry: metrics.registry, health: () => report }),
        (error: unknown) => {
          assert.ok(error instanceof HttpServerStartError);
          assert.equal(error.code, 'EADDRINUSE');
          assert.equal(
            error.message,
            `port ${address.port} on ${HOST} is already in use: set ACFT_HTTP_PORT to a free port`,
          );
          return true;
        },
      );
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  void it('closes idempotently, even with a keep-alive connection open', async () => {
    const server = await startHttpServer({
      host: HOST,
      port: 0,
      registry: metrics.registry,
      health: () => report,
    });
    const agentResponse = await fetch(`${server.url}/metrics`, { keepalive: true });
    await agentResponse.text();
    const first = server.close();
    assert.equal(server.close(), first);
    await first;
    await server.close();
    await assert.rejects(fetch(`${server.url}/healthz`));
  });
});
