// How main.ts turns `--metrics` / the `metrics` config key into a running server, with errors
// that name where the setting came from. prom-client and the server are imported only when the
// option is set.
import { configPathFromArgs, type DaemonConfig } from '../config.js';
import type { DaemonLog } from '../log.js';
import { formatMetricsAddress, type MetricsAddress, parseMetricsAddress } from './address.js';
import type { MetricsServer } from './http.js';

export interface MetricsOption {
  address: MetricsAddress;
  /** where the setting came from, for messages: `--metrics 9100` or `metrics = 9100 (in /etc/...)` */
  origin: string;
}

/** The metrics setting of a loaded config, or undefined when metrics are off. Throws on a bad address. */
export function metricsOption(cfg: DaemonConfig, args: string[]): MetricsOption | undefined {
  if (cfg.metrics === undefined) return undefined;
  const fromArgs = args.some((a) => a === '--metrics' || a.startsWith('--metrics='));
  const origin = fromArgs ? `--metrics ${cfg.metrics}` : `metrics = ${cfg.metrics} (in ${configPathFromArgs(args)})`;
  const a = parseMetricsAddress(cfg.metrics);
  // loadDaemonConfig has already validated the value; this is a second line of defence
  if ('error' in a) throw new Error(`${origin}: expected ${a.error}`);
  return { address: a, origin };
}

/** Binds and releases the address; the message to print when it cannot be bound. */
export async function probeMetrics(opt: MetricsOption): Promise<string | undefined> {
  const { probeMetricsListen } = await import('./http.js');
  const err = await probeMetricsListen(opt.address);
  return err ? `${opt.origin}: ${err.message}` : undefined;
}

/** Starts the server, or returns the message to print (already logged) when it cannot listen. */
export async function startMetrics(opt: MetricsOption, log: DaemonLog): Promise<MetricsServer | string> {
  const { startMetricsServer, MetricsListenError } = await import('./http.js');
  try {
    const s = await startMetricsServer(opt.address);
    const where = formatMetricsAddress(s.address);
    if (!opt.address.loopback) log.warn(`metrics and dashboard listening on ${where}, reachable beyond this host (${opt.origin})`);
    else log.warn(`metrics and dashboard listening on ${where}`);
    return s;
  } catch (err) {
    if (!(err instanceof MetricsListenError)) throw err;
    const msg = `${opt.origin}: ${err.message}`;
    log.error(msg);
    return msg;
  }
}
