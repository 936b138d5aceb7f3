// The daemon's event hooks for metrics (sanlock-ts extension, `--metrics`). The daemon calls
// `metrics.<hook>(...)` at a handful of places; until a metrics server installs a real sink
// every hook is an empty function and `disk()` hands back the very disk it was given, so a
// daemon without --metrics pays one property load and one call per renewal/acquire/kill.
//
// Everything that is state rather than an event (lockspace and host states, held leases, last
// renewal age) is read at scrape time from the daemon's own structures (registry.ts), so it
// needs no hook at all.
import type { Disk } from '../../storage/disk.js';

export type DiskUse = 'renewal' | 'resource';

export interface MetricsSink {
  /** One renewal attempt of a lockspace: result 0 = renewed, else the negative code; I/O times of its read and write. */
  renewal(lockspace: string, result: number, readMs: number, writeMs: number): void;
  /** One resource of an acquire request: 0 = acquired, else the negative code returned. */
  acquire(lockspace: string, result: number): void;
  /** The daemon signalled a client: 15 SIGTERM, 9 SIGKILL, 100 = ran its killpath. */
  kill(sig: number): void;
  /** The disk the daemon will do a lockspace's I/O through (counts -202 timeouts when enabled). */
  disk(disk: Disk, lockspace: string, use: DiskUse): Disk;
}

export const NOOP_SINK: Readonly<MetricsSink> = Object.freeze({
  renewal: () => {},
  acquire: () => {},
  kill: () => {},
  disk: (d: Disk) => d,
});

/** The hooks the daemon calls. One per process: a process runs one daemon. */
export const metrics: MetricsSink = { ...NOOP_SINK };

/**
 * Routes the hooks to `sink`. A hook that throws is swallowed here: a metrics bug must never
 * stop a renewal, fail an acquire or skip a kill.
 */
export function installMetricsSink(sink: MetricsSink): void {
  metrics.renewal = (ls, result, readMs, writeMs) => {
    try {
      sink.renewal(ls, result, readMs, writeMs);
    } catch {
      // see above
    }
  };
  metrics.acquire = (ls, result) => {
    try {
      sink.acquire(ls, result);
    } catch {
      // see above
    }
  };
  metrics.kill = (sig) => {
    try {
      sink.kill(sig);
    } catch {
      // see above
    }
  };
  metrics.disk = (disk, ls, use) => {
    try {
      return sink.disk(disk, ls, use);
    } catch {
      return disk;
    }
  };
}

export function resetMetricsSink(): void {
  Object.assign(metrics, NOOP_SINK);
}
