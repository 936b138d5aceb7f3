// The metrics endpoint of `--metrics` (sanlock-ts extension): our daemon with metrics on a free
// loopback port joins a lockspace with io_timeout 1, leases are acquired, refused, timed out and
// killed, and specific samples of the scrape are checked; then the start-up errors (port in use,
// bad or non-loopback addresses) from argv and from the config file.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SanlkCode, SanlockError } from '../../src/codes.js';
import { type ChainOutcome, type ChainRequest, isChainDisk } from '../../src/storage/disk.js';
import { metricsAddressProblem, parseMetricsAddress } from '../../src/daemon/metrics/address.js';
import { startMetricsServer } from '../../src/daemon/metrics/http.js';
import { metrics } from '../../src/daemon/metrics/sink.js';
import { FaultyDisk } from '../../src/storage/faulty-disk.js';
import { MemDisk } from '../../src/storage/mem-disk.js';
import { scratchDir } from '../helpers/real-sanlock.js';
import { freePort, scrape, sampleValue } from './metrics-helpers.js';
import { type OurDaemon, PYTHON, pyAvailable, SANLOCK_BIN, startOurDaemon, waitFor } from './our-daemon.js';

const OUR_BIN = resolve('bin/sanlock-ts');
const MiB = 1024 * 1024;
const BASE_ARGS = ['daemon', '-D', '-w', '0', '-l', '0', '-h', '0', '-U', 'root', '-G', 'root'];

describe('metrics address parsing', () => {
  test('a bare port is loopback; other hosts must be IP addresses written out', () => {
    assert.deepEqual(parseMetricsAddress('9100'), { host: '127.0.0.1', port: 9100, loopback: true });
    assert.deepEqual(parseMetricsAddress('127.0.0.1:9100'), { host: '127.0.0.1', port: 9100, loopback: true });
    assert.deepEqual(parseMetricsAddress('localhost:9100'), { host: '127.0.0.1', port: 9100, loopback: true });
    assert.deepEqual(parseMetricsAddress('[::1]:9100'), { host: '::1', port: 9100, loopback: true });
    assert.deepEqual(parseMetricsAddress('0.0.0.0:9100'), { host: '0.0.0.0', port: 9100, loopback: false });
    assert.deepEqual(parseMetricsAddress('192.0.2.7:80'), { host: '192.0.2.7', port: 80, loopback: false });
    for (const bad of [':9100', '*:9100', 'example.com:9100', '0', '65536', '9100:', '127.0.0.1', '[::1]', '::1:9100', 'abc']) {
      assert.ok(metricsAddressProblem(bad) !== undefined, `${bad} should be refused`);
    }
    assert.match(metricsAddressProblem(':9100')!, /every interface; write 0\.0\.0\.0:9100/);
  });
});

describe('metrics hooks without a daemon', () => {
  test('disabled, the hooks are no-ops and disk() is the identity; enabled, they count; closed, no-ops again', async () => {
    const mem = new MemDisk('/dev/fake', 64 * 1024);
    assert.equal(metrics.disk(mem, 'X', 'resource'), mem);
    const srv = await startMetricsServer({ host: '127.0.0.1', port: 0, loopback: true });
    try {
      const faulty = new FaultyDisk(mem);
      faulty.setFaults([{ op: 'read', hang: { completeAfterMs: 200 } }]);
      const d = metrics.disk(faulty, 'X', 'resource');
      assert.notEqual(d, faulty);
      await assert.rejects(d.read(0, 512, 20), (e: SanlockError) => e.code === SanlkCode.SANLK_AIO_TIMEOUT);
      await d.write(0, Buffer.alloc(512), 1000);
      metrics.kill(100);
      metrics.kill(15);
      metrics.acquire('X', SanlkCode.SANLK_ACQUIRE_IDLIVE);
      metrics.renewal('X', SanlkCode.SANLK_AIO_TIMEOUT, 1000, 0);
      const { samples } = await scrape(srv.address.port);
      assert.equal(sampleValue(samples, 'sanlock_io_timeouts_total', { lockspace: 'X', use: 'resource' }), 1);
      assert.equal(sampleValue(samples, 'sanlock_kills_total', { signal: 'killpath' }), 1);
      assert.equal(sampleValue(samples, 'sanlock_kills_total', { signal: 'SIGTERM' }), 1);
      assert.equal(sampleValue(samples, 'sanlock_acquire_results_total', { lockspace: 'X', code: '-243', result: 'SANLK_ACQUIRE_IDLIVE' }), 1);
      assert.equal(sampleValue(samples, 'sanlock_renewals_total', { lockspace: 'X', code: '-202' }), 1);
      // a failed renewal is counted but its partial I/O times stay out of the latency histograms
      assert.equal(sampleValue(samples, 'sanlock_renewal_read_seconds_count', { lockspace: 'X' }), undefined);
    } finally {
      await srv.close();
    }
    assert.equal(metrics.disk(mem, 'X', 'resource'), mem);
  });
});

describe('metered disks keep chaining', () => {
  // An EX release is one chained request on a disk that can chain (the daemon's DirectDisk);
  // --metrics wraps resource disks and must not turn it back into three.
  class ChainMem extends MemDisk {
    chains = 0;
    fail: SanlockError | undefined;
    async writeReadCompareWrite(req: ChainRequest, ms: number): Promise<ChainOutcome | undefined> {
      this.chains++;
      if (this.fail) throw this.fail;
      await this.write(req.w1Offset, req.w1, ms);
      const read = await this.read(req.readOffset, req.readLength, ms);
      const match = read.subarray(0, req.expect.length).equals(req.expect);
      if (match) await this.write(req.w3Offset, req.w3, ms);
      return { read, wrote3: match };
    }
  }

  test('a chaining disk chains through the metered wrapper, its -202 is counted; a plain one declines', async () => {
    const srv = await startMetricsServer({ host: '127.0.0.1', port: 0, loopback: true });
    try {
      const inner = new ChainMem('/dev/fake', 64 * 1024);
      const d = metrics.disk(inner, 'C', 'resource');
      assert.notEqual(d, inner);
      assert.ok(isChainDisk(d), 'the metered disk must offer the chain');
      const sec = (b: number): Buffer => Buffer.alloc(512, b);
      const chain = (w1: Buffer, expect: Buffer, w3: Buffer): ChainRequest => ({ w1Offset: 1024, w1, readOffset: 0, readLength: 512, expect, w3Offset: 0, w3 });
      const out = await d.writeReadCompareWrite(chain(sec(1), Buffer.alloc(512), sec(3)), 1000);
      assert.deepEqual({ wrote3: out?.wrote3, chains: inner.chains }, { wrote3: true, chains: 1 });
      assert.deepEqual(await inner.read(0, 512, 1000), sec(3));
      assert.deepEqual(await inner.read(1024, 512, 1000), sec(1));
      inner.fail = new SanlockError(SanlkCode.SANLK_AIO_TIMEOUT, 'late');
      await assert.rejects(d.writeReadCompareWrite(chain(sec(1), sec(3), sec(4)), 10), (e: SanlockError) => e.code === SanlkCode.SANLK_AIO_TIMEOUT);
      const { samples } = await scrape(srv.address.port);
      assert.equal(sampleValue(samples, 'sanlock_io_timeouts_total', { lockspace: 'C', use: 'resource' }), 1);
      const plain = metrics.disk(new MemDisk('/dev/fake2', 64 * 1024), 'C', 'resource');
      assert.ok(isChainDisk(plain));
      assert.equal(await plain.writeReadCompareWrite(chain(sec(1), sec(1), sec(1)), 1000), undefined);
    } finally {
      await srv.close();
    }
  });
});

describe('metrics endpoint of our daemon', { skip: !pyAvailable() && 'needs /usr/sbin/sanlock and python3-sanlock' }, () => {
  let dir: string;
  let ids: string;
  let res: string;
  let res3: string;
  let faults: string;
  let port: number;
  let ours: OurDaemon;
  let holder: ChildProcess | undefined;

  before(async () => {
    dir = scratchDir('metrics');
    ids = join(dir, 'ids');
    res = join(dir, 'res');
    res3 = join(dir, 'res3');
    faults = join(dir, 'faults.json');
    execFileSync('truncate', ['-s', '1M', ids]);
    execFileSync('truncate', ['-s', '2M', res]);
    execFileSync('truncate', ['-s', '1M', res3]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LS:0:${ids}:0`, '-o', '1']);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LS:R1:${res}:0`]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LS:R2:${res}:${MiB}`]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LS:R3:${res3}:0`]);
    writeFileSync(faults, '{"disks": []}');
    port = await freePort();
    ours = await startOurDaemon(join(dir, 'run'), ['--metrics', String(port)], { SANLOCK_TS_FAULT_FILE: faults });
    const add = ours.cli(['client', 'add_lockspace', '-s', `LS:1:${ids}:0`, '-o', '1']);
    assert.match(add.stdout, /done 0/);
  });

  after(async () => {
    if (holder && holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
    await ours?.stop();
  });

  test('scrape: lockspace and host states, renewals, held leases by mode, acquire results by code', async () => {
    holder = spawn(
      PYTHON,
      [
        '-c',
        `import sanlock, time\nfd = sanlock.register()\nsanlock.acquire(b"LS", b"R1", [(${JSON.stringify(res)}, 0)], slkfd=fd)\n` +
          `sanlock.acquire(b"LS", b"R2", [(${JSON.stringify(res)}, ${MiB})], slkfd=fd, shared=True)\nprint("READY", flush=True)\ntime.sleep(120)`,
      ],
      { env: ours.env, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    holder.stdout!.on('data', (d) => (out += d));
    await waitFor(() => out.includes('READY'), 20_000, 'holder acquired R1 and R2');
    const busy = ours.py(`fd = sanlock.register()\ntry:\n    sanlock.acquire(b"LS", b"R1", [(${JSON.stringify(res)}, 0)], slkfd=fd)\n    print("ACQUIRED")\nexcept sanlock.SanlockException as e:\n    print("ERR", e.errno)`);
    assert.match(busy.stdout, /ERR 17\b/); // python-sanlock gives errno values positive

    // two successful renewals after the join (io_timeout 1: one every 2 s)
    await waitFor(async () => (sampleValue((await scrape(port)).samples, 'sanlock_renewals_total', { lockspace: 'LS', code: '0' }) ?? 0) >= 2, 15_000, 'two renewals');
    const { samples: s, contentType } = await scrape(port);
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    const v = (name: string, labels: Record<string, string> = {}) => sampleValue(s, name, labels);
    assert.equal(v('sanlock_lockspace_state', { lockspace: 'LS', host_id: '1', state: 'joined' }), 1);
    assert.equal(v('sanlock_lockspace_state', { lockspace: 'LS', host_id: '1', state: 'failed' }), 0);
    assert.equal(v('sanlock_lockspace_killing_pids', { lockspace: 'LS' }), 0);
    assert.equal(v('sanlock_host_state', { lockspace: 'LS', host_id: '1', state: 'LIVE' }), 1);
    assert.equal(v('sanlock_hosts', { lockspace: 'LS', state: 'LIVE' }), 1);
    assert.equal(v('sanlock_leases_held', { lockspace: 'LS', mode: 'exclusive' }), 1);
    assert.equal(v('sanlock_leases_held', { lockspace: 'LS', mode: 'shared' }), 1);
    assert.equal(v('sanlock_acquire_results_total', { lockspace: 'LS', code: '0', result: 'ok' }), 2);
    assert.equal(v('sanlock_acquire_results_total', { lockspace: 'LS', code: '-17', result: 'EEXIST' }), 1);
    const renewed = v('sanlock_renewals_total', { lockspace: 'LS', code: '0' })!;
    assert.equal(v('sanlock_renewal_read_seconds_count', { lockspace: 'LS' }), renewed);
    assert.equal(v('sanlock_renewal_write_seconds_count', { lockspace: 'LS' }), renewed);
    assert.equal(v('sanlock_renewal_read_seconds_bucket', { lockspace: 'LS', le: '+Inf' }), renewed);
    const readSum = v('sanlock_renewal_read_seconds_sum', { lockspace: 'LS' })!;
    assert.ok(readSum > 0 && readSum < renewed, `renewal reads took ${readSum} s in all`);
    const age = v('sanlock_renewal_last_success_age_seconds', { lockspace: 'LS' })!;
    assert.ok(age >= 0 && age <= 3, `last renewal ${age} s ago`);
    assert.equal(v('sanlock_renewal_last_result', { lockspace: 'LS' }), 1);
    assert.equal(v('sanlock_kills_total', { signal: 'SIGKILL' }), 0);
    assert.equal(v('sanlock_io_timeouts_total', { lockspace: 'LS', use: 'resource' }), undefined);
    assert.equal(v('sanlock_ts_info', { version: '3.8.5' }), 1);
    assert.ok(v('process_cpu_seconds_total')! > 0);
  });

  test('I/O timeouts of resource and renewal disks are counted, and so is the -202 acquire result', async () => {
    // reads of R3's disk finish only after 3 s (the acquire gives up after io_timeout 1 s);
    // one renewal read of the lockspace is held 1.5 s, so that renewal times out once
    writeFileSync(
      faults,
      JSON.stringify({
        disks: [
          { path: res3, faults: [{ op: 'read', hang: { completeAfterMs: 3000 } }] },
          { path: ids, faults: [{ op: 'read', count: 1, hang: { completeAfterMs: 1500 } }] },
        ],
      }),
    );
    await sleep(300); // the daemon looks at the fault file at most every 100 ms
    const r = ours.py(`fd = sanlock.register()\ntry:\n    sanlock.acquire(b"LS", b"R3", [(${JSON.stringify(res3)}, 0)], slkfd=fd)\n    print("ACQUIRED")\nexcept sanlock.SanlockException as e:\n    print("ERR", e.errno)`);
    assert.match(r.stdout, /ERR -202/);
    await waitFor(async () => (sampleValue((await scrape(port)).samples, 'sanlock_io_timeouts_total', { lockspace: 'LS', use: 'renewal' }) ?? 0) >= 1, 10_000, 'renewal timeout');
    writeFileSync(faults, '{"disks": []}');
    const { samples: s } = await scrape(port);
    assert.ok(sampleValue(s, 'sanlock_io_timeouts_total', { lockspace: 'LS', use: 'resource' })! >= 1);
    assert.equal(sampleValue(s, 'sanlock_acquire_results_total', { lockspace: 'LS', code: '-202', result: 'SANLK_AIO_TIMEOUT' }), 1);
    assert.ok(sampleValue(s, 'sanlock_renewals_total', { lockspace: 'LS', code: '-202' })! >= 1);
    // the held leases are untouched by the failed acquire
    assert.equal(sampleValue(s, 'sanlock_leases_held', { lockspace: 'LS', mode: 'exclusive' }), 1);
  });

  test('rem_lockspace with a holder: the SIGKILL is counted and the lockspace leaves the scrape', async () => {
    assert.ok(holder && holder.exitCode === null);
    const died = new Promise<string | null>((r) => holder!.once('exit', (_c, sig) => r(sig)));
    const rem = ours.cli(['client', 'rem_lockspace', '-s', `LS:1:${ids}:0`]);
    assert.match(rem.stdout, /done 0/);
    assert.equal(await died, 'SIGKILL');
    const { samples: s } = await scrape(port);
    assert.equal(sampleValue(s, 'sanlock_kills_total', { signal: 'SIGKILL' }), 1);
    assert.equal(sampleValue(s, 'sanlock_kills_total', { signal: 'SIGTERM' }), 0);
    assert.equal(sampleValue(s, 'sanlock_lockspace_state', { lockspace: 'LS', state: 'joined' }), undefined);
    assert.equal(sampleValue(s, 'sanlock_leases_held', { lockspace: 'LS', mode: 'exclusive' }), undefined);
    // counters keep their history
    assert.equal(sampleValue(s, 'sanlock_acquire_results_total', { lockspace: 'LS', code: '0' }), 2);
  });

  test('the server answers only GET/HEAD on its three paths, and listens on loopback only', async () => {
    assert.equal((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status, 405);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    const st = (await (await fetch(`http://127.0.0.1:${port}/api/state`)).json()) as { daemon: { pid: number } };
    assert.equal(st.daemon.pid, ours.proc.pid);
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal);
    if (external) {
      await assert.rejects(fetch(`http://${external.address}:${port}/metrics`), 'not reachable on a non-loopback address');
    }
  });
});

describe('metrics start-up errors', () => {
  let dir: string;
  let blocker: Server;
  let busyPort: number;

  before(async () => {
    dir = scratchDir('metrics-cfg');
    blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    busyPort = (blocker.address() as { port: number }).port;
  });
  after(() => new Promise<void>((r) => blocker.close(() => r())));

  function runDaemon(name: string, args: string[], foreground = true): { status: number | null; stdout: string; stderr: string; runDir: string } {
    const runDir = join(dir, name);
    const base = foreground ? BASE_ARGS : BASE_ARGS.filter((a) => a !== '-D');
    const r = spawnSync(process.execPath, [OUR_BIN, ...base, ...args], {
      env: { ...process.env, SANLOCK_RUN_DIR: runDir, SANLOCK_PRIVILEGED: '0' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    // a daemon that wrongly started in the background must not outlive the test
    const pidFile = join(runDir, 'sanlock.pid');
    if (!foreground && existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, runDir };
  }

  test('port in use (--metrics, foreground): the error names the option, exit 1, no socket left', () => {
    const r = runDaemon('busy-fg', ['--metrics', `127.0.0.1:${busyPort}`]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`not started:\\n--metrics 127\\.0\\.0\\.1:${busyPort}: cannot listen on 127\\.0\\.0\\.1:${busyPort}: address already in use \\(EADDRINUSE\\)`));
    assert.doesNotMatch(r.stderr, /sanlock daemon started/);
    assert.equal(existsSync(join(r.runDir, 'sanlock.sock')), false);
  });

  test('port in use (daemonizing start): reported on the terminal before detaching, nothing started', () => {
    const r = runDaemon('busy-bg', ['--metrics', String(busyPort)], false);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`--metrics ${busyPort}: cannot listen on 127\\.0\\.0\\.1:${busyPort}: address already in use`));
    assert.equal(existsSync(join(r.runDir, 'sanlock.pid')), false, 'no daemon child got as far as its pid file');
  });

  test('port in use from the config key: the error names the key and the file', () => {
    const conf = join(dir, 'busy.conf');
    writeFileSync(conf, `# metrics server\nmetrics = 127.0.0.1:${busyPort}\n`);
    const r = runDaemon('busy-conf', ['--config', conf]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`metrics = 127\\.0\\.0\\.1:${busyPort} \\(in ${conf.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\): cannot listen`));
    assert.equal(existsSync(join(r.runDir, 'sanlock.sock')), false);
  });

  test('an implicit all-interfaces address or a host name is refused, from argv and from the file', () => {
    const a = runDaemon('bad-arg', ['--metrics', `:${busyPort}`]);
    assert.equal(a.status, 1);
    assert.match(a.stdout, new RegExp(`bad value ':${busyPort}' for option --metrics: expected an explicit host`));
    const b = runDaemon('bad-host', ['--metrics', 'example.com:9100']);
    assert.equal(b.status, 1);
    assert.match(b.stdout, /bad value 'example\.com:9100' for option --metrics: expected PORT or HOST:PORT/);
    const conf = join(dir, 'star.conf');
    writeFileSync(conf, 'metrics = *:9100\n');
    const c = runDaemon('bad-conf', ['--config', conf]);
    assert.equal(c.status, 1);
    assert.match(c.stderr, /configuration error, not started/);
    assert.match(c.stderr, new RegExp(`${conf.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line 1: bad value '\\*:9100' for key 'metrics'`));
    for (const x of [a, b, c]) assert.equal(existsSync(join(x.runDir, 'sanlock.sock')), false);
  });

  test('a non-loopback address given explicitly is accepted, with a warning in the log', async () => {
    const port = await freePort('0.0.0.0');
    const d = await startOurDaemon(join(dir, 'any'), ['--metrics', `0.0.0.0:${port}`]);
    try {
      await waitFor(() => /metrics and dashboard listening on 0\.0\.0\.0:\d+, reachable beyond this host/.test(d.stderr()), 10_000, 'warning');
      const { samples } = await scrape(port);
      assert.ok(sampleValue(samples, 'process_cpu_seconds_total')! > 0);
    } finally {
      await d.stop();
    }
  });
});
