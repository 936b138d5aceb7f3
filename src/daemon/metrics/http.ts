// The opt-in HTTP server of `--metrics [HOST:]PORT` (sanlock-ts extension):
//   GET /metrics     Prometheus text format
//   GET /api/state   the dashboard's JSON (registry.ts DashboardState)
//   GET /            the live dashboard (dashboard.ts)
// It only reads daemon state; nothing here can change a lease. Loaded with a dynamic import by
// main.ts, so a daemon without --metrics never even loads prom-client.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DASHBOARD_CSP, DASHBOARD_HTML } from './dashboard.js';
import { formatMetricsAddress, type MetricsAddress } from './address.js';
import { DaemonMetrics, type DaemonView, type MetricsOptions } from './registry.js';
import { installMetricsSink, resetMetricsSink } from './sink.js';

/** A listen failure, with the errno name (EADDRINUSE, EACCES, EADDRNOTAVAIL...). */
export class MetricsListenError extends Error {
  constructor(
    message: string,
    readonly errno: string | undefined,
  ) {
    super(message);
  }
}

const ERRNO_TEXT: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)',
  EADDRNOTAVAIL: 'no interface has that address',
  EAFNOSUPPORT: 'address family not supported',
};

function listenErrorOf(addr: MetricsAddress, err: unknown): MetricsListenError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = (code && ERRNO_TEXT[code]) ?? (err as Error).message;
  return new MetricsListenError(`cannot listen on ${formatMetricsAddress(addr)}: ${why}${code ? ` (${code})` : ''}`, code);
}

function listen(server: Server, addr: MetricsAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(listenErrorOf(addr, err));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    // exclusive: never share the port with a cluster sibling or another daemon
    server.listen({ host: addr.host, port: addr.port, exclusive: true });
  });
}

/**
 * Binds and closes at once: lets the parent of a daemonizing start report a taken port on the
 * terminal before it detaches (the detached child binds again for real).
 */
export async function probeMetricsListen(addr: MetricsAddress): Promise<MetricsListenError | undefined> {
  const s = createServer();
  try {
    await listen(s, addr);
  } catch (err) {
    return err as MetricsListenError;
  }
  await new Promise((r) => s.close(r));
  return undefined;
}

export interface MetricsServer {
  readonly metrics: DaemonMetrics;
  /** the bound address (the port is the real one) */
  readonly address: { host: string; port: number };
  readonly url: string;
  /** gives the server the daemon's managers; until then it serves no lockspace state */
  attach(view: DaemonView): void;
  close(): Promise<void>;
}

export interface StartOptions extends MetricsOptions {
  /** install the metrics as the daemon's hooks (default true; tests of the server alone pass false) */
  installSink?: boolean;
}

/** Starts listening; rejects with MetricsListenError when the address cannot be bound. */
export async function startMetricsServer(addr: MetricsAddress, opts: StartOptions = {}): Promise<MetricsServer> {
  const metrics = new DaemonMetrics(opts);
  const server = createServer((req, res) => {
    handle(metrics, req, res).catch((err) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`internal error: ${(err as Error).message}\n`);
    });
  });
  // a dashboard left open polls forever: idle keep-alive sockets must not pile up
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.maxConnections = 64;
  await listen(server, addr);
  const a = server.address() as AddressInfo;
  const bound = { host: a.address, port: a.port };
  const install = opts.installSink !== false;
  if (install) installMetricsSink(metrics);
  metrics.start();
  let closing: Promise<void> | undefined;
  return {
    metrics,
    address: bound,
    url: `http://${formatMetricsAddress(bound)}/`,
    attach: (view) => metrics.attach(view),
    close() {
      closing ??= new Promise<void>((resolve) => {
        metrics.stop();
        if (install) resetMetricsSink();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function handle(metrics: DaemonMetrics, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  const path = (req.url ?? '/').split('?')[0];
  if (method !== 'GET' && method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    res.end('method not allowed\n');
    return;
  }
  const send = (status: number, type: string, body: string, extra: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...extra });
    res.end(method === 'HEAD' ? undefined : body);
  };
  switch (path) {
    case '/metrics':
      send(200, metrics.registry.contentType, await metrics.registry.metrics());
      return;
    case '/api/state':
      send(200, 'application/json; charset=utf-8', JSON.stringify(metrics.state()));
      return;
    case '/':
    case '/index.html':
      send(200, 'text/html; charset=utf-8', DASHBOARD_HTML, { 'content-security-policy': DASHBOARD_CSP, 'referrer-policy': 'no-referrer' });
      return;
    default:
      send(404, 'text/plain; charset=utf-8', 'not found: try /, /metrics or /api/state\n');
  }
}
