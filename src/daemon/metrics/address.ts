// The listen address of `--metrics` / the `metrics` config key. A bare port listens on loopback
// only; any other interface has to be written out as an IP address, so that an exposed
// dashboard (lockspace names, disk paths, client pids) is always a deliberate choice. Host
// names other than localhost are refused: what they resolve to could change under us.
import { isIP } from 'node:net';

export interface MetricsAddress {
  host: string;
  port: number;
  loopback: boolean;
}

const EXPECTED =
  'PORT or HOST:PORT, HOST an IP address or localhost, PORT 1-65535 (a bare PORT listens on 127.0.0.1 only; ' +
  'to listen on other interfaces name one explicitly, e.g. 0.0.0.0:PORT)';

function portOf(s: string): number | undefined {
  if (!/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

function isLoopback(host: string): boolean {
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '0:0:0:0:0:0:0:1';
}

/** The address, or a sentence saying what a valid value looks like. */
export function parseMetricsAddress(value: string): MetricsAddress | { error: string } {
  const bare = portOf(value);
  if (bare !== undefined) return { host: '127.0.0.1', port: bare, loopback: true };
  const colon = value.lastIndexOf(':');
  if (colon < 0) return { error: EXPECTED };
  let host = value.slice(0, colon);
  const port = portOf(value.slice(colon + 1));
  if (port === undefined) return { error: EXPECTED };
  if (host === '' || host === '*') {
    return { error: `an explicit host: '${value}' would listen on every interface; write 0.0.0.0:${port} (or [::]:${port}) to mean that, or just ${port} for loopback only` };
  }
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) return { error: EXPECTED };
  } else if (host === 'localhost') {
    host = '127.0.0.1';
  } else if (isIP(host) !== 4) {
    return { error: EXPECTED };
  }
  return { host, port, loopback: isLoopback(host) };
}

/** CONFIG_KEYS-style check: undefined when valid, else the expected form. */
export function metricsAddressProblem(value: string): string | undefined {
  const a = parseMetricsAddress(value);
  return 'error' in a ? a.error : undefined;
}

/** host:port as a URL authority. */
export function formatMetricsAddress(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
