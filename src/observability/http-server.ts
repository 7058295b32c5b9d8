/**
 * The daemon's HTTP endpoint for operations (node:http, no framework):
 *
 * - `GET /metrics`: the registry in Prometheus text format;
 * - `GET /healthz`: liveness, 200 when live else 503, JSON body;
 * - `GET /readyz`: readiness, 200 when ready else 503, JSON body with the reasons;
 * - anything else: 404 (405 for a known path with a method other than GET or HEAD).
 *
 * It binds to the host it is given and no other: the address is configuration, so a deployment
 * decides whether the endpoint is reachable beyond the machine.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** What the daemon reports about its health. */
export interface HealthReport {
  /** The process works (its event loop turns, its pipeline has not died): false restarts it. */
  readonly live: boolean;
  /** It can do its job now (broker connected, a model served...): false takes it out of service. */
  readonly ready: boolean;
  /** Why it is not ready (or not live), one short sentence each, e.g. 'broker disconnected'. */
  readonly reasons?: readonly string[];
  /** Anything else worth showing (state, served version...). No secrets, no patient identifiers. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Options of {@link startHttpServer}. */
export interface HttpServerOptions {
  /** Address to bind, e.g. '127.0.0.1' (this machine only) or '0.0.0.0' (every interface). */
  readonly host: string;
  /** TCP port; 0 picks a free one (read it from the result). */
  readonly port: number;
  /** The registry whose metrics `/metrics` serves. */
  readonly registry: Registry;
  /** Called on each `/healthz` and `/readyz` request; must be cheap. */
  readonly health: () => HealthReport | Promise<HealthReport>;
}

/** A started server. */
export interface HttpServerHandle {
  /** Base URL, e.g. 'http://127.0.0.1:9464'. */
  readonly url: string;
  /** The port bound (the one chosen when 0 was asked). */
  readonly port: number;
  /** The host bound. */
  readonly host: string;
  /** Stops listening and drops open connections; idempotent (every call returns the same promise). */
  close(): Promise<void>;
}

/** Why the server could not start; `code` is the system error's code (EADDRINUSE, EACCES...). */
export class HttpServerStartError extends Error {
  readonly code: string;
  readonly retriable = false;
  constructor(message: string, code: string, cause: unknown) {
    super(message, { cause });
    this.name = 'HttpServerStartError';
    this.code = code;
  }
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** Starts the server; resolves once it listens, rejects with {@link HttpServerStartError}. */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const { host, port, registry, health } = options;
  const server = createServer((request, response) => {
    void handle(request, response, registry, health);
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      reject(startError(error, host, port));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host, port });
  });

  const bound = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    port: bound,
    host,
    close() {
      closing ??= closeServer(server);
      return closing;
    },
  };
}

function startError(error: NodeJS.ErrnoException, host: string, port: number): HttpServerStartError {
  const code = error.code ?? 'UNKNOWN';
  switch (code) {
    case 'EADDRINUSE':
      return new HttpServerStartError(
        `port ${port} on ${host} is already in use: set ACFT_HTTP_PORT to a free port`,
        code,
        error,
      );
    case 'EACCES':
      return new HttpServerStartError(
        `port ${port} on ${host} needs privileges this process lacks: set ACFT_HTTP_PORT to a port above 1023`,
        code,
        error,
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new HttpServerStartError(
        `address ${host} is not an address of this machine: set ACFT_HTTP_HOST to one (127.0.0.1 or 0.0.0.0)`,
        code,
        error,
      );
    default:
      return new HttpServerStartError(
        `the HTTP server could not listen on ${host}:${port} (${code})`,
        code,
        error,
      );
  }
}

async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve, reject) => {
    server.close((error) => (error === undefined ? resolve() : reject(error)));
  });
  // Scrapers keep connections alive; without this close() would wait for them to time out.
  server.closeAllConnections();
  await closed;
}

async function handle(
  request: IncomingMessage,
  response: ServerResponse,
  registry: Registry,
  health: HttpServerOptions['health'],
): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  const known = path === '/metrics' || path === '/healthz' || path === '/readyz';
  try {
    if (!known) return send(response, 404, JSON_TYPE, JSON.stringify({ error: 'not found' }));
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      return send(response, 405, JSON_TYPE, JSON.stringify({ error: 'method not allowed' }));
    }
    if (path === '/metrics') return send(response, 200, registry.contentType, await registry.metrics());
    const report = await health();
    const ok = path === '/healthz' ? report.live : report.ready;
    const body = {
      status: path === '/healthz' ? (ok ? 'live' : 'not live') : ok ? 'ready' : 'not ready',
      live: report.live,
      ready: report.ready,
      reasons: report.reasons ?? [],
      details: report.details ?? {},
    };
    return send(response, ok ? 200 : 503, JSON_TYPE, JSON.stringify(body));
  } catch {
    // The error itself is not echoed: it could carry internals a scraper has no business seeing.
    const error = path === '/metrics' ? 'metrics collection failed' : 'health check failed';
    const body = { status: 'error', error, reasons: [error] };
    send(response, path === '/metrics' ? 500 : 503, JSON_TYPE, JSON.stringify(body));
  }
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  response.statusCode = status;
  response.setHeader('content-type', contentType);
  response.setHeader('cache-control', 'no-store');
  response.setHeader('content-length', Buffer.byteLength(body));
  response.end(response.req.method === 'HEAD' ? undefined : body);
}
