// The daemon's Prometheus metrics (sanlock-ts extension, `--metrics`) and the state the live
// dashboard shows. Events (renewals, acquire results, I/O timeouts, kills) arrive through the
// sink hooks (sink.ts); states are read from the daemon's own structures when scraped, so
// they can never drift from what `sanlock client status` reports.
import assert from 'node:assert';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { codeName, errorCode, SanlkCode } from '../../codes.js';
import { hostStateName } from '../../lease/host-state.js';
import { type ChainDisk, type ChainOutcome, type ChainRequest, type Disk, isChainDisk } from '../../storage/disk.js';
import { monotime } from '../clock.js';
import type { Lockspace, LockspaceManager } from '../lockspace.js';
import type { ResourceManager } from '../resources.js';
import { VERSION_STR } from '../server.js';
import type { DiskUse, MetricsSink } from './sink.js';

/** What the metrics read from a running daemon; attached once the managers exist. */
export interface DaemonView {
  hostName: string;
  lockspaces: LockspaceManager;
  resources: ResourceManager;
}

export const LOCKSPACE_STATES = ['adding', 'joined', 'failed', 'removing'] as const;
export type LockspaceStateName = (typeof LOCKSPACE_STATES)[number];
export const HOST_STATES = ['UNKNOWN', 'FREE', 'LIVE', 'FAIL', 'DEAD'] as const;

export function lockspaceState(ls: Lockspace): LockspaceStateName {
  if (ls.list === 'rem' || ls.removeRequested) return 'removing';
  if (ls.list === 'add') return 'adding';
  if (ls.renewFail || ls.spaceDead) return 'failed';
  return 'joined';
}

export function signalName(sig: number): string {
  if (sig === 9) return 'SIGKILL';
  if (sig === 15) return 'SIGTERM';
  if (sig === 100) return 'killpath';
  return String(sig);
}

export interface RenewalPoint {
  /** wall clock, ms */
  t: number;
  readMs: number;
  writeMs: number;
  /** 0 or the failed renewal's code */
  code: number;
}

export interface HostSegment {
  state: string;
  /** wall clock ms: first and last sample that saw this state */
  from: number;
  to: number;
}

export interface MetricsOptions {
  /** renewals kept per lockspace for the dashboard plot */
  renewalHistory?: number;
  /** how often host states are sampled for the liveness timeline */
  sampleMs?: number;
  /** how far back the liveness timeline reaches */
  timelineMs?: number;
}

/** JSON served at /api/state and drawn by the dashboard. */
export interface DashboardState {
  now: number;
  daemon: { hostName: string; version: string; pid: number; uptimeSeconds: number };
  lockspaces: {
    name: string;
    hostId: number;
    path: string;
    offset: number;
    ioTimeout: number;
    state: LockspaceStateName;
    generation: number;
    killingPids: boolean;
    lastRenewalAgeSeconds: number | null;
    renewalLastResult: number;
    hosts: { hostId: number; generation: number; timestamp: number; state: string; name: string; ours: boolean; timeline: HostSegment[] }[];
    renewals: RenewalPoint[];
  }[];
  leases: {
    lockspace: string;
    name: string;
    mode: 'exclusive' | 'shared';
    list: string;
    lver: number;
    disks: string[];
    ownerHostId: number;
    ownerGeneration: number;
    ownerHostName: string;
    pids: number[];
    ownerNames: string[];
  }[];
  counters: { kills: Record<string, number>; ioTimeouts: number; acquire: Record<string, number> };
}

const RENEWAL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Last I/O times of a lockspace's renewal disk, in fractional ms (the daemon's own are whole ms). */
interface IoTimes {
  readMs: number;
  writeMs: number;
}

/** Counts -202 results of one lockspace's disk and, for the renewal disk, times each I/O finely. */
class MeteredDisk implements ChainDisk {
  constructor(
    private readonly inner: Disk,
    private readonly onTimeout: () => void,
    private readonly times: IoTimes | undefined,
  ) {}
  get path(): string {
    return this.inner.path;
  }
  async read(offset: number, len: number, timeoutMs: number): Promise<Buffer> {
    const t = performance.now();
    try {
      return await this.inner.read(offset, len, timeoutMs);
    } catch (err) {
      throw this.seen(err);
    } finally {
      if (this.times) this.times.readMs = performance.now() - t;
    }
  }
  async write(offset: number, buf: Buffer, timeoutMs: number): Promise<void> {
    const t = performance.now();
    try {
      await this.inner.write(offset, buf, timeoutMs);
    } catch (err) {
      throw this.seen(err);
    } finally {
      if (this.times) this.times.writeMs = performance.now() - t;
    }
  }
  /**
   * Keeps a chaining disk chaining under --metrics (an EX release is then one I/O request, not
   * three); undefined, as ChainDisk allows, when the disk underneath cannot chain.
   */
  async writeReadCompareWrite(req: ChainRequest, timeoutMs: number): Promise<ChainOutcome | undefined> {
    if (!isChainDisk(this.inner)) return undefined;
    try {
      const out = await this.inner.writeReadCompareWrite(req, timeoutMs);
      if (out?.write1Error) this.seen(out.write1Error);
      return out;
    } catch (err) {
      throw this.seen(err);
    }
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  private seen(err: unknown): unknown {
    if (errorCode(err) === SanlkCode.SANLK_AIO_TIMEOUT) this.onTimeout();
    return err;
  }
}

export class DaemonMetrics implements MetricsSink {
  readonly registry = new Registry();
  private view: DaemonView | undefined;
  private readonly renewalHistory: number;
  private readonly sampleMs: number;
  private readonly timelineMs: number;
  private readonly renewals = new Map<string, RenewalPoint[]>();
  private readonly ioTimes = new Map<string, IoTimes>();
  /** lockspace → host_id → state segments, oldest first */
  private readonly timelines = new Map<string, Map<number, HostSegment[]>>();
  private sampler: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  /** the counters' totals for the dashboard (prom-client only reads them back asynchronously) */
  private readonly tallies: DashboardState['counters'] = { kills: { SIGTERM: 0, SIGKILL: 0, killpath: 0 }, ioTimeouts: 0, acquire: {} };

  private readonly renewRead: Histogram<'lockspace'>;
  private readonly renewWrite: Histogram<'lockspace'>;
  private readonly renewTotal: Counter<'lockspace' | 'code'>;
  private readonly acquireTotal: Counter<'lockspace' | 'code' | 'result'>;
  private readonly ioTimeouts: Counter<'lockspace' | 'use'>;
  private readonly kills: Counter<'signal'>;

  constructor(opts: MetricsOptions = {}) {
    this.renewalHistory = opts.renewalHistory ?? 600;
    this.sampleMs = opts.sampleMs ?? 1000;
    this.timelineMs = opts.timelineMs ?? 30 * 60 * 1000;
    assert(this.renewalHistory > 0 && this.sampleMs > 0 && this.timelineMs > 0);
    const registers = [this.registry];
    const self = this;

    this.renewRead = new Histogram({
      name: 'sanlock_renewal_read_seconds',
      help: 'I/O time of the read of each successful delta lease renewal',
      labelNames: ['lockspace'],
      buckets: RENEWAL_BUCKETS,
      registers,
    });
    this.renewWrite = new Histogram({
      name: 'sanlock_renewal_write_seconds',
      help: 'I/O time of the write of each successful delta lease renewal',
      labelNames: ['lockspace'],
      buckets: RENEWAL_BUCKETS,
      registers,
    });
    this.renewTotal = new Counter({
      name: 'sanlock_renewals_total',
      help: 'Delta lease renewal attempts by result code (0 = renewed)',
      labelNames: ['lockspace', 'code'],
      registers,
    });
    this.acquireTotal = new Counter({
      name: 'sanlock_acquire_results_total',
      help: 'Resources asked for in acquire requests, by result code (0 = acquired)',
      labelNames: ['lockspace', 'code', 'result'],
      registers,
    });
    this.ioTimeouts = new Counter({
      name: 'sanlock_io_timeouts_total',
      help: 'Disk I/Os that failed with SANLK_AIO_TIMEOUT (-202), by lockspace and use (renewal or resource)',
      labelNames: ['lockspace', 'use'],
      registers,
    });
    this.kills = new Counter({
      name: 'sanlock_kills_total',
      help: 'Signals sent to lease holders (SIGTERM, SIGKILL) and killpath programs run',
      labelNames: ['signal'],
      registers,
    });
    for (const s of ['SIGTERM', 'SIGKILL', 'killpath']) this.kills.inc({ signal: s }, 0);

    new Gauge({
      name: 'sanlock_renewal_last_success_age_seconds',
      help: 'Seconds since the last successful renewal of our delta lease (monotonic clock)',
      labelNames: ['lockspace'],
      registers,
      collect() {
        this.reset();
        const now = monotime();
        for (const ls of self.joined()) if (ls.lastSuccess > 0) this.set({ lockspace: ls.name }, now - ls.lastSuccess);
      },
    });
    new Gauge({
      name: 'sanlock_renewal_last_result',
      help: 'Result of the last renewal attempt (1 = success as sanlock status shows it, else the negative code)',
      labelNames: ['lockspace'],
      registers,
      collect() {
        this.reset();
        for (const ls of self.joined()) this.set({ lockspace: ls.name }, ls.renewalLastResult);
      },
    });
    new Gauge({
      name: 'sanlock_lockspace_state',
      help: 'State of each lockspace of this daemon (1 for the current state)',
      labelNames: ['lockspace', 'host_id', 'state'],
      registers,
      collect() {
        this.reset();
        for (const ls of self.all()) {
          const cur = lockspaceState(ls);
          for (const s of LOCKSPACE_STATES) this.set({ lockspace: ls.name, host_id: String(ls.hostId), state: s }, s === cur ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'sanlock_lockspace_killing_pids',
      help: '1 while the daemon is killing the lease holders of a lockspace (renewal failure or removal)',
      labelNames: ['lockspace'],
      registers,
      collect() {
        this.reset();
        for (const ls of self.all()) this.set({ lockspace: ls.name }, ls.killingPids ? 1 : 0);
      },
    });
    new Gauge({
      name: 'sanlock_host_state',
      help: 'State of every host with a delta lease record in a lockspace, as this daemon sees it (1 for the current state)',
      labelNames: ['lockspace', 'host_id', 'state'],
      registers,
      collect() {
        this.reset();
        const now = monotime();
        for (const ls of self.joined()) {
          if (!ls.hosts || !ls.hostsReady) continue;
          for (const h of ls.hosts.hosts(now)) this.set({ lockspace: ls.name, host_id: String(h.hostId), state: hostStateName(h.flags) }, 1);
        }
      },
    });
    new Gauge({
      name: 'sanlock_hosts',
      help: 'Number of hosts in each state per lockspace',
      labelNames: ['lockspace', 'state'],
      registers,
      collect() {
        this.reset();
        const now = monotime();
        for (const ls of self.joined()) {
          if (!ls.hosts || !ls.hostsReady) continue;
          const n = new Map<string, number>(HOST_STATES.map((s) => [s, 0]));
          for (const h of ls.hosts.hosts(now)) {
            const s = hostStateName(h.flags);
            n.set(s, (n.get(s) ?? 0) + 1);
          }
          for (const [state, v] of n) this.set({ lockspace: ls.name, state }, v);
        }
      },
    });
    new Gauge({
      name: 'sanlock_leases_held',
      help: 'Resource leases this daemon holds, by lockspace and mode',
      labelNames: ['lockspace', 'mode'],
      registers,
      collect() {
        this.reset();
        for (const ls of self.joined()) {
          this.set({ lockspace: ls.name, mode: 'exclusive' }, 0);
          this.set({ lockspace: ls.name, mode: 'shared' }, 0);
        }
        const res = self.view?.resources.resources;
        if (!res) return;
        for (const r of res.values()) if (r.list === 'held') this.inc({ lockspace: r.ls.name, mode: r.shared ? 'shared' : 'exclusive' });
      },
    });
    new Gauge({
      name: 'sanlock_ts_info',
      help: 'sanlock-ts daemon: protocol version and host name',
      labelNames: ['version', 'host_name'],
      registers,
      collect() {
        this.reset();
        if (self.view) this.set({ version: VERSION_STR, host_name: self.view.hostName }, 1);
      },
    });
    // prom-client's default process metrics would add an event-loop delay monitor that wakes
    // the daemon every 10 ms; these three are read only when scraped.
    new Counter({
      name: 'process_cpu_seconds_total',
      help: 'User and system CPU time of the daemon process',
      registers,
      collect() {
        this.reset();
        const u = process.cpuUsage();
        this.inc((u.user + u.system) / 1e6);
      },
    });
    new Gauge({
      name: 'process_resident_memory_bytes',
      help: 'Resident memory of the daemon process',
      registers,
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
    new Gauge({
      name: 'process_start_time_seconds',
      help: 'Start time of the metrics server, seconds since the epoch',
      registers,
      collect() {
        this.set(Math.floor(self.startedAt / 1000));
      },
    });
  }

  attach(view: DaemonView): void {
    this.view = view;
  }

  /** Starts sampling host states for the liveness timeline. */
  start(): void {
    if (this.sampler) return;
    this.sampler = setInterval(() => {
      try {
        this.sample();
      } catch {
        // the timeline misses a sample; the daemon must not die of its dashboard
      }
    }, this.sampleMs);
    this.sampler.unref();
  }

  stop(): void {
    if (this.sampler) clearInterval(this.sampler);
    this.sampler = undefined;
  }

  private all(): Lockspace[] {
    return this.view?.lockspaces.spaces ?? [];
  }

  private joined(): Lockspace[] {
    return this.all().filter((s) => s.list === 'spaces');
  }

  // ------------------------------------------------------------ sink hooks

  renewal(lockspace: string, result: number, wholeReadMs: number, wholeWriteMs: number): void {
    this.renewTotal.inc({ lockspace, code: String(result) });
    const fine = this.ioTimes.get(lockspace);
    const readMs = fine ? Math.round(fine.readMs * 1000) / 1000 : wholeReadMs;
    const writeMs = fine ? Math.round(fine.writeMs * 1000) / 1000 : wholeWriteMs;
    if (result === 0) {
      this.renewRead.observe({ lockspace }, readMs / 1000);
      this.renewWrite.observe({ lockspace }, writeMs / 1000);
    }
    let h = this.renewals.get(lockspace);
    if (!h) {
      h = [];
      this.renewals.set(lockspace, h);
    }
    h.push({ t: Date.now(), readMs, writeMs, code: result });
    if (h.length > this.renewalHistory) h.splice(0, h.length - this.renewalHistory);
  }

  acquire(lockspace: string, result: number): void {
    const name = result === 0 ? 'ok' : codeName(result);
    this.acquireTotal.inc({ lockspace, code: String(result), result: name });
    this.tallies.acquire[name] = (this.tallies.acquire[name] ?? 0) + 1;
  }

  kill(sig: number): void {
    const signal = signalName(sig);
    this.kills.inc({ signal });
    this.tallies.kills[signal] = (this.tallies.kills[signal] ?? 0) + 1;
  }

  disk(disk: Disk, lockspace: string, use: DiskUse): Disk {
    let times: IoTimes | undefined;
    if (use === 'renewal') {
      times = { readMs: 0, writeMs: 0 };
      this.ioTimes.set(lockspace, times);
    }
    const onTimeout = (): void => {
      this.ioTimeouts.inc({ lockspace, use });
      this.tallies.ioTimeouts++;
    };
    return new MeteredDisk(disk, onTimeout, times);
  }

  // ------------------------------------------------------------ dashboard state

  /** One sample of every joined lockspace's host states, merged into the timelines. */
  sample(now = Date.now()): void {
    const mono = monotime();
    const live = new Set<string>();
    for (const ls of this.joined()) {
      if (!ls.hosts || !ls.hostsReady) continue;
      live.add(ls.name);
      let tl = this.timelines.get(ls.name);
      if (!tl) {
        tl = new Map();
        this.timelines.set(ls.name, tl);
      }
      const seen = new Set<number>();
      for (const h of ls.hosts.hosts(mono)) {
        seen.add(h.hostId);
        this.extend(tl, h.hostId, hostStateName(h.flags), now);
      }
      // a host that released its delta lease drops out of the host list: it is FREE now
      for (const id of tl.keys()) if (!seen.has(id)) this.extend(tl, id, 'FREE', now);
    }
    for (const name of this.timelines.keys()) if (!live.has(name)) this.timelines.delete(name);
    for (const name of this.renewals.keys()) if (!this.all().some((s) => s.name === name)) this.renewals.delete(name);
    for (const name of this.ioTimes.keys()) if (!this.all().some((s) => s.name === name)) this.ioTimes.delete(name);
  }

  private extend(tl: Map<number, HostSegment[]>, hostId: number, state: string, now: number): void {
    let segs = tl.get(hostId);
    if (!segs) {
      segs = [];
      tl.set(hostId, segs);
    }
    const last = segs[segs.length - 1];
    // a gap of several samples (the daemon was busy or the timer late) still joins up: the
    // state was not seen to change
    if (last && last.state === state) last.to = now;
    else segs.push({ state, from: last ? last.to : now, to: now });
    const cut = now - this.timelineMs;
    while (segs.length > 1 && segs[0]!.to < cut) segs.shift();
  }

  state(): DashboardState {
    const now = Date.now();
    // the timeline ends at what the page shows as the current state, not up to a sample ago
    this.sample(now);
    const mono = monotime();
    const v = this.view;
    const lockspaces: DashboardState['lockspaces'] = [];
    for (const ls of this.all()) {
      const tl = this.timelines.get(ls.name);
      const hosts: DashboardState['lockspaces'][number]['hosts'] = [];
      if (ls.hosts && ls.hostsReady) {
        const ids = new Set<number>(ls.hosts.hosts(mono).map((h) => h.hostId));
        for (const id of tl?.keys() ?? []) ids.add(id);
        for (const id of [...ids].sort((a, b) => a - b)) {
          const row = ls.hosts.hosts(mono, id)[0]!;
          const slot = ls.hosts.slot(id);
          hosts.push({
            hostId: id,
            generation: row.generation,
            timestamp: row.timestamp,
            state: hostStateName(row.flags),
            name: slot?.name ?? '',
            ours: id === ls.hostId,
            timeline: (tl?.get(id) ?? []).map((s) => ({ ...s })),
          });
        }
      }
      lockspaces.push({
        name: ls.name,
        hostId: ls.hostId,
        path: ls.path,
        offset: ls.offset,
        ioTimeout: ls.ioTimeout,
        state: lockspaceState(ls),
        generation: ls.generation,
        killingPids: ls.killingPids,
        lastRenewalAgeSeconds: ls.lastSuccess > 0 ? mono - ls.lastSuccess : null,
        renewalLastResult: ls.renewalLastResult,
        hosts,
        renewals: [...(this.renewals.get(ls.name) ?? [])],
      });
    }
    const leases: DashboardState['leases'] = [];
    for (const r of v?.resources.resources.values() ?? []) {
      const clients = r.tokens.map((t) => t.client).filter((c) => c !== undefined);
      leases.push({
        lockspace: r.ls.name,
        name: r.name,
        mode: r.shared ? 'shared' : 'exclusive',
        list: r.list,
        lver: r.lver,
        disks: r.disks.map((d) => `${d.path}:${d.offset}`),
        ownerHostId: r.ls.hostId,
        ownerGeneration: r.ls.generation,
        ownerHostName: v?.hostName ?? '',
        pids: r.list === 'orphan' ? [r.orphanPid] : clients.map((c) => c.pid),
        ownerNames: clients.map((c) => c.ownerName).filter((n) => n.length > 0),
      });
    }
    leases.sort((a, b) => (a.lockspace === b.lockspace ? a.name.localeCompare(b.name) : a.lockspace.localeCompare(b.lockspace)));
    return {
      now,
      daemon: { hostName: v?.hostName ?? '', version: VERSION_STR, pid: process.pid, uptimeSeconds: Math.round((now - this.startedAt) / 1000) },
      lockspaces,
      leases,
      counters: { kills: { ...this.tallies.kills }, ioTimeouts: this.tallies.ioTimeouts, acquire: { ...this.tallies.acquire } },
    };
  }
}
