// Issue 6, mixed clusters: four hosts on one machine share one lockspace file, two running our
// daemon and two the real sanlock 3.8.5 daemon (separate run dirs, host_ids and -e host names,
// io_timeout 1). Clients are python3-sanlock processes (one per daemon, libsanlock binds a
// process to one run dir) and both CLIs. After every step both `direct dump` binaries read the
// lease area and must print the same bytes, and the owner / lver / shared holders are checked.
//
//   host 1  ours  mix-ours-1        host 3  ours  mix-ours-3
//   host 2  real  mix-real-2        host 4  real  mix-real-4
//
// The takeover step kills hosts 1 and 2 together, so both directions (real 4 takes over from
// ours 1, ours 3 from real 2) share one host_dead wait.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { computeTimeouts } from '../../src/lease/timeouts.js';
import { pyAvailable, SANLOCK_BIN, waitFor } from '../daemon/our-daemon.js';
import { scratchDir } from '../helpers/real-sanlock.js';
import { Agent, client, type DumpRow, disks, dumpBoth, type Host, hostNames, hostStates, type Kind, monoNow, OUR_BIN, sleep, startHost } from './mixed-helpers.js';

const skip = !pyAvailable();
const MiB = 1024 * 1024;
const LS = 'MIXLS';
const IO = 1;
const TO = computeTimeouts(IO);
const IDLIVE = -243;
const EAGAIN = -11;
/** EAGAIN as python3-sanlock raises it (SanlockException.errno) */
const PY_EAGAIN = 11;

const RES = { EX1: 0, EX2: 1, SH: 2, F1: 3, F2: 4, T1: 5, T2: 6 } as const;
type ResName = keyof typeof RES;

describe('mixed cluster: our daemon and the real sanlock on one lockspace', { skip }, () => {
  let dir: string;
  let ids: string;
  let leases: string;
  const hosts = new Map<number, Host>();
  /** the long-lived registered python client of each host */
  const A = new Map<number, Agent>();
  const agents: Agent[] = [];
  const H = (id: number): Host => hosts.get(id)!;
  const P = (id: number): Agent => A.get(id)!;

  const off = (r: ResName): number => RES[r] * MiB;
  const resArg = (r: ResName, suffix = ''): string => `${LS}:${r}:${leases}:${off(r)}${suffix}`;
  const acq = (r: ResName, shared = false): string => `sanlock.acquire(b"${LS}", b"${r}", ${disks(leases, off(r))}, slkfd=fd${shared ? ', shared=True' : ''})`;
  const rel = (r: ResName): string => `sanlock.release(b"${LS}", b"${r}", ${disks(leases, off(r))}, slkfd=fd)`;

  /** Both dumps of the lease file agree; the row of resource r. */
  async function leaseRow(r: ResName): Promise<DumpRow> {
    const { rows } = await dumpBoth(leases);
    const row = rows.find((x) => x.offset === off(r));
    assert.ok(row, `no dump row for ${r}`);
    assert.equal(row.resource, r);
    assert.equal(row.lockspace, LS);
    return row;
  }

  async function expectRow(r: ResName, want: { owner: number; lver: number; held: boolean; sh?: number[] }): Promise<DumpRow> {
    const row = await leaseRow(r);
    assert.equal(row.owner, want.owner, `${r} owner`);
    assert.equal(row.lver, want.lver, `${r} lver`);
    assert.equal(row.timestamp > 0, want.held, `${r} timestamp ${row.timestamp}`);
    assert.deepEqual([...row.sh.keys()].sort(), want.sh ?? [], `${r} shared holders`);
    return row;
  }

  /** `client <args>` through the given CLI; its last line must be `<what> done <code>`. */
  async function done(host: Host, args: string[], cli: Kind): Promise<number> {
    const r = await client(host, args, cli);
    const m = / done (-?\d+)\n$/.exec(r.stdout);
    assert.ok(m, `client ${args.join(' ')} (${cli} CLI → ${host.kind} daemon): ${r.stdout}${r.stderr}`);
    return Number(m[1]);
  }

  before(async () => {
    dir = scratchDir('mixed');
    ids = join(dir, 'ids');
    leases = join(dir, 'leases');
    execFileSync('truncate', ['-s', '1M', ids]);
    execFileSync('truncate', ['-s', `${Object.keys(RES).length}M`, leases]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `${LS}:0:${ids}:0`, '-o', String(IO)]);
    // half the leases formatted by each binary
    for (const r of Object.keys(RES) as ResName[]) {
      const bin = RES[r] % 2 === 0 ? [SANLOCK_BIN] : [process.execPath, OUR_BIN];
      execFileSync(bin[0]!, [...bin.slice(1), 'direct', 'init', '-r', resArg(r)]);
    }
    const spec: [number, Kind][] = [
      [1, 'ours'],
      [2, 'real'],
      [3, 'ours'],
      [4, 'real'],
    ];
    for (const [id, kind] of spec) hosts.set(id, await startHost(kind, id, `mix-${kind}-${id}`, join(dir, `run${id}`)));
    for (const [id] of spec) A.set(id, await Agent.start(H(id).env, agents));
  });

  let failed = false;
  /** On a failure every live daemon's `client log_dump` is saved next to the lease files, which are kept. */
  async function keepLogs(): Promise<void> {
    for (const h of hosts.values()) {
      if (h.proc.exitCode !== null || h.proc.signalCode !== null) continue;
      const r = await client(h, ['log_dump']);
      writeFileSync(join(dir, `host${h.hostId}-${h.kind}.log`), r.stdout + r.stderr);
    }
    console.log(`# mixed cluster failed: lease files and daemon logs kept in ${dir}`);
  }
  /** test() whose failure keeps the evidence */
  function step(name: string, fn: () => Promise<void>): void {
    test(name, async () => {
      try {
        await fn();
      } catch (e) {
        if (!failed) await keepLogs().catch(() => undefined);
        failed = true;
        throw e;
      }
    });
  }

  after(async () => {
    for (const a of agents) a.kill();
    await Promise.all(agents.map((a) => a.exited));
    for (const h of hosts.values()) await h.stop();
    if (dir && !failed) rmSync(dir, { recursive: true, force: true });
  });

  step('all four hosts join (through both CLIs and python); each lists every other host LIVE with its name', async () => {
    const joins = await Promise.all([
      done(H(1), ['add_lockspace', '-s', `${LS}:1:${ids}:0`, '-o', String(IO)], 'real'),
      done(H(2), ['add_lockspace', '-s', `${LS}:2:${ids}:0`, '-o', String(IO)], 'ours'),
      P(3).ok(`sanlock.add_lockspace(b"${LS}", 3, ${JSON.stringify(ids)}, iotimeout=${IO})`).then(() => 0),
      done(H(4), ['add_lockspace', '-s', `${LS}:4:${ids}:0`, '-o', String(IO)], 'real'),
    ]);
    assert.deepEqual(joins, [0, 0, 0, 0]);
    for (const id of hosts.keys()) {
      await waitFor(
        async () => {
          const st = await hostStates(H(id), LS, id % 2 ? 'ours' : 'real');
          return [1, 2, 3, 4].every((h) => st.get(h) === 'LIVE');
        },
        20_000,
        `host ${id} (${H(id).kind}) sees hosts 1-4 LIVE`,
      );
    }
    for (const id of hosts.keys()) {
      // python get_hosts through libsanlock, on each kind of daemon
      const got = await P(id).json<[number, number, number][]>(`_r = sorted([h["host_id"], h["flags"], h["generation"]] for h in sanlock.get_hosts(b"${LS}"))`);
      const live = Number(await P(id).ok('_r = sanlock.HOST_LIVE'));
      assert.deepEqual(got, [1, 2, 3, 4].map((h) => [h, live, 1]), `get_hosts on host ${id}`);
      const names = await hostNames(H(id), LS, id % 2 ? 'real' : 'ours');
      for (const other of hosts.values()) {
        if (other.hostId !== id) assert.equal(names.get(other.hostId), other.name, `host ${id} names host ${other.hostId}`);
      }
    }
    // the delta leases carry the host names, whichever daemon wrote them
    const { rows } = await dumpBoth(ids);
    for (const h of hosts.values()) {
      const row = rows.find((r) => r.offset === (h.hostId - 1) * 512);
      assert.ok(row && row.resource === h.name && row.owner === h.hostId && row.gen === 1 && row.timestamp > 0, `delta lease of host ${h.hostId}: ${JSON.stringify(row)}`);
    }
    await dumpBoth(leases);
  });

  step('exclusive contention both ways: the loser gets -243 (IDLIVE)', async () => {
    for (const a of A.values()) await a.ok('fd = sanlock.register()');
    // real holds, ours (and the other ours host) are refused
    await P(2).ok(acq('EX1'));
    assert.equal(await P(1).errno(acq('EX1')), IDLIVE);
    assert.equal(await P(3).errno(acq('EX1')), IDLIVE);
    await expectRow('EX1', { owner: 2, lver: 1, held: true });
    // ours holds, real (both real hosts) is refused
    await P(1).ok(acq('EX2'));
    assert.equal(await P(2).errno(acq('EX2')), IDLIVE);
    assert.equal(await P(4).errno(acq('EX2')), IDLIVE);
    await expectRow('EX2', { owner: 1, lver: 1, held: true });
    // released leases keep owner and lver with a zero timestamp; the loser can then take them
    await P(2).ok(rel('EX1'));
    await P(1).ok(rel('EX2'));
    await expectRow('EX1', { owner: 2, lver: 1, held: false });
    await expectRow('EX2', { owner: 1, lver: 1, held: false });
    await P(1).ok(acq('EX1'));
    await P(2).ok(acq('EX2'));
    await expectRow('EX1', { owner: 1, lver: 2, held: true });
    await expectRow('EX2', { owner: 2, lver: 2, held: true });
    await P(1).ok(rel('EX1'));
    await P(2).ok(rel('EX2'));
    await expectRow('EX1', { owner: 1, lver: 2, held: false });
    await expectRow('EX2', { owner: 2, lver: 2, held: false });
  });

  step('shared lease held by both kinds at once; EX acquire and SH→EX convert refused (EAGAIN) while the other kind holds SH', async () => {
    await P(2).ok(acq('SH', true));
    await P(1).ok(acq('SH', true));
    const row = await expectRow('SH', { owner: 1, lver: 2, held: false, sh: [1, 2] });
    for (const g of row.sh.values()) assert.equal(g, 1);
    // an exclusive acquire from a host holding nothing is refused while shared holders of either
    // kind live: the daemon answers -11 (EAGAIN), which python3-sanlock raises as errno 11 (it
    // flips the sign of plain errnos, keeps sanlock's own -2xx codes)
    assert.equal(await P(4).errno(acq('SH')), PY_EAGAIN, 'real host 4 EX against SH holders ours 1 + real 2');
    assert.equal(await P(3).errno(acq('SH')), PY_EAGAIN, 'ours host 3 EX against SH holders ours 1 + real 2');
    assert.equal(await done(H(3), ['acquire', '-r', resArg('SH'), '-p', String(P(3).pid)], 'real'), EAGAIN, 'ours host 3 via the CLI');
    assert.equal(await done(H(4), ['acquire', '-r', resArg('SH'), '-p', String(P(4).pid)], 'ours'), EAGAIN, 'real host 4 via our CLI');
    const refused = await leaseRow('SH');
    assert.deepEqual([...refused.sh.keys()].sort(), [1, 2], 'a refused EX acquire leaves the SH holders');
    assert.equal(refused.timestamp, 0, 'a refused EX acquire frees the leader again');
    // ours asks to convert while real holds SH; real asks while ours holds SH
    assert.equal(await done(H(1), ['convert', '-r', resArg('SH'), '-p', String(P(1).pid)], 'real'), EAGAIN);
    assert.equal(await done(H(2), ['convert', '-r', resArg('SH'), '-p', String(P(2).pid)], 'ours'), EAGAIN);
    const after1 = await leaseRow('SH');
    assert.deepEqual([...after1.sh.keys()].sort(), [1, 2], 'a refused convert keeps every SH holder');
    assert.equal(after1.timestamp, 0, 'a refused convert frees the leader again');
    // once only real holds SH, real converts to EX; back to SH; then ours converts once real has gone
    await P(1).ok(rel('SH'));
    assert.equal(await done(H(2), ['convert', '-r', resArg('SH'), '-p', String(P(2).pid)], 'real'), 0);
    const ex = await expectRow('SH', { owner: 2, lver: after1.lver! + 1, held: true });
    assert.equal(await done(H(2), ['convert', '-r', resArg('SH', ':SH'), '-p', String(P(2).pid)], 'real'), 0);
    await expectRow('SH', { owner: 2, lver: ex.lver!, held: false, sh: [2] });
    await P(1).ok(acq('SH', true));
    assert.equal(await done(H(1), ['convert', '-r', resArg('SH'), '-p', String(P(1).pid)], 'ours'), EAGAIN);
    await P(2).ok(rel('SH'));
    assert.equal(await done(H(1), ['convert', '-r', resArg('SH'), '-p', String(P(1).pid)], 'ours'), 0);
    const ex1 = await leaseRow('SH');
    assert.equal(ex1.owner, 1);
    assert.ok(ex1.timestamp > 0);
    assert.deepEqual([...ex1.sh.keys()], []);
    await P(1).ok(rel('SH'));
    await expectRow('SH', { owner: 1, lver: ex1.lver!, held: false });
  });

  /**
   * requester asks (force) for lease r held by a throwaway client of holder; the holder's daemon
   * SIGKILLs it and releases; the requester then acquires.
   */
  async function forceRequest(r: ResName, holder: number, requester: number, cli: Kind): Promise<void> {
    const victim = await Agent.start(H(holder).env, agents);
    await victim.ok('fd = sanlock.register()');
    await victim.ok(acq(r));
    const held = await expectRow(r, { owner: holder, lver: 1, held: true });
    assert.equal(await P(requester).errno(acq(r)), IDLIVE);
    const t0 = monoNow();
    assert.equal(await done(H(requester), ['request', '-r', resArg(r, `:${held.lver! + 1}`), '-f', '1'], cli), 0);
    const sig = await Promise.race([victim.exited, sleep(20_000).then(() => 'timeout')]);
    const dt = monoNow() - t0;
    assert.equal(sig, 'SIGKILL', `the ${H(holder).kind} daemon killed its holder`);
    // the holder's daemon released it: owner and lver stay, timestamp 0; the request record stays
    await waitFor(async () => (await leaseRow(r)).timestamp === 0, 10_000, `${r} released`);
    const freed = await expectRow(r, { owner: holder, lver: held.lver!, held: false });
    assert.equal(freed.reqLver, held.lver! + 1);
    assert.equal(freed.reqForce, 1);
    await P(requester).ok(acq(r));
    await expectRow(r, { owner: requester, lver: held.lver! + 1, held: true });
    await P(requester).ok(rel(r));
    await expectRow(r, { owner: requester, lver: held.lver! + 1, held: false });
    console.log(`# force request ${H(requester).kind} host ${requester} → ${H(holder).kind} host ${holder}: holder killed after ${dt.toFixed(2)} s`);
  }

  step('force request ours → real: the real daemon kills its holder and releases', async () => {
    await forceRequest('F1', 2, 1, 'real');
  });

  step('force request real → ours (our CLI to the real daemon): our daemon kills its holder and releases', async () => {
    await forceRequest('F2', 1, 2, 'ours');
  });

  step('host events both ways, and one to all hosts from ours', async () => {
    const reg = `efd = sanlock.reg_event(b"${LS}")`;
    type Ev = { from_host_id: number; from_generation: number; host_id: number; event: number; data: number } | null;
    // real 2 → ours 1 (real CLI on the real daemon)
    await P(1).ok(reg);
    assert.equal(await done(H(2), ['set_event', '-s', LS, '-i', '1', '-e', '5', '-d', '7'], 'real'), 0);
    const e1 = await P(1).json<Ev>('_r = waitev(efd, 20, 5)', 30_000);
    assert.deepEqual(e1 && [e1.from_host_id, e1.from_generation, e1.host_id, e1.event, e1.data], [2, 1, 1, 5, 7]);
    // ours 1 → real 2 (our CLI on our daemon)
    await P(2).ok(reg);
    assert.equal(await done(H(1), ['set_event', '-s', LS, '-i', '2', '-e', '6', '-d', '8'], 'ours'), 0);
    const e2 = await P(2).json<Ev>('_r = waitev(efd, 20, 6)', 30_000);
    assert.deepEqual(e2 && [e2.from_host_id, e2.from_generation, e2.host_id, e2.event, e2.data], [1, 1, 2, 6, 8]);
    // ours 3 → every host (python SETEV_ALL_HOSTS): real 2, real 4 and ours 1 get it
    await P(4).ok(reg);
    await P(3).ok(`sanlock.set_event(b"${LS}", 0, 0, 9, 10, flags=sanlock.SETEV_ALL_HOSTS)`);
    const all = await Promise.all([1, 2, 4].map((id) => P(id).json<Ev>('_r = waitev(efd, 20, 9)', 30_000)));
    for (const [i, e] of all.entries()) assert.deepEqual(e && [e.from_host_id, e.event, e.data], [3, 9, 10], `host ${[1, 2, 4][i]} got the event`);
    for (const id of [1, 2, 4]) await P(id).ok(`sanlock.end_event(efd, b"${LS}")`);
    await dumpBoth(ids);
    await dumpBoth(leases);
  });

  step('takeover both ways after SIGKILL of the other daemon: -243 while the owner was seen renewing, the lease only after host_dead', async () => {
    const hd = TO.hostDeadSeconds;
    assert.equal(hd, 8 * IO + 60);
    // a client of ours 1 holds T1, a client of real 2 holds T2
    const h1 = await Agent.start(H(1).env, agents);
    const h2 = await Agent.start(H(2).env, agents);
    for (const [a, r] of [
      [h1, 'T1'],
      [h2, 'T2'],
    ] as const) {
      await a.ok('fd = sanlock.register()');
      await a.ok(acq(r));
    }
    await expectRow('T1', { owner: 1, lver: 1, held: true });
    await expectRow('T2', { owner: 2, lver: 1, held: true });
    // kill -9 both daemons, then every client of theirs. Daemons first: a daemon that outlives
    // its holder for even a moment sees the client die and releases the lease on disk (both
    // kinds do), which is a clean release, not the crash this step is about.
    await Promise.all([H(1).stop(), H(2).stop()]);
    const victims = [h1, h2, P(1), P(2)];
    for (const a of victims) a.kill();
    await Promise.all(victims.map((a) => a.exited));
    const K = monoNow();
    const delta = (await dumpBoth(ids)).rows;
    const T = new Map([1, 2].map((id) => [id, delta.find((r) => r.offset === (id - 1) * 512)!.timestamp]));
    for (const id of [1, 2]) assert.ok(T.get(id)! > 0 && T.get(id)! <= K + 0.5, `last renewal of host ${id}`);
    // a SIGKILLed daemon releases nothing: both leases are still held by the dead hosts
    await expectRow('T1', { owner: 1, lver: 1, held: true });
    await expectRow('T2', { owner: 2, lver: 1, held: true });

    // survivors watch the dead hosts' states while they keep trying for the leases
    const seen = new Map<string, number>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const obs of [3, 4]) {
          const st = await hostStates(H(obs), LS);
          for (const dead of [1, 2]) {
            const key = `${obs}:${dead}:${st.get(dead)}`;
            if (!seen.has(key)) seen.set(key, monoNow());
          }
        }
        await sleep(500);
      }
    })();
    type Loop = [[number, number] | null, [number, number, number][]];
    let got4: Loop;
    let got3: Loop;
    try {
      [got4, got3] = await Promise.all([
        P(4).json<Loop>(`_r = acquire_until(b"${LS}", b"T1", ${disks(leases, off('T1'))}, ${hd + 30})`, (hd + 60) * 1000),
        P(3).json<Loop>(`_r = acquire_until(b"${LS}", b"T2", ${disks(leases, off('T2'))}, ${hd + 30})`, (hd + 60) * 1000),
      ]);
      // the survivors' host states reach DEAD about when the leases are granted: watch until both see both
      await waitFor(() => [3, 4].every((obs) => [1, 2].every((dead) => seen.has(`${obs}:${dead}:DEAD`))), 20_000, 'both survivors show both dead hosts DEAD');
    } finally {
      watching = false;
      await watcher;
    }

    for (const [taker, dead, r, got] of [
      [4, 1, 'T1', got4],
      [3, 2, 'T2', got3],
    ] as const) {
      const t = T.get(dead)!;
      const [gotAt, errs] = got;
      const what = `${H(taker).kind} host ${taker} taking ${r} from dead ${H(dead).kind} host ${dead}`;
      assert.ok(gotAt !== null, `${what}: never acquired (${JSON.stringify(errs.slice(-3))})`);
      const [tBegan, tGot] = gotAt;
      assert.ok(errs.length > 0, `${what}: refused at first`);
      assert.deepEqual([...new Set(errs.map((e) => e[2]))], [IDLIVE], `${what}: every refusal is IDLIVE`);
      // Both daemons refuse while their last look at the owner's delta lease saw it renewed; once
      // it has stopped, the acquire call waits inside the daemon until host_dead has passed since
      // the last renewal seen, re-reading the owner's delta lease every second (the real one logs
      // "paxos_acquire owner 1 1 ... dead 23926-23857>68").
      const lastRefusal = errs[errs.length - 1]![1];
      assert.ok(lastRefusal < t + 8 * IO + 6, `${what}: refused until T+${(lastRefusal - t).toFixed(1)}, after the owner stopped renewing`);
      assert.ok(tBegan < t + hd - 20, `${what}: the granting call began at T+${(tBegan - t).toFixed(1)}, it should wait in the daemon`);
      // the safety property: never granted before host_dead after the dead host's last renewal
      assert.ok(tGot >= t + hd, `${what}: acquired at T+${(tGot - t).toFixed(2)}, before host_dead ${hd}`);
      assert.ok(tGot <= t + hd + 12, `${what}: acquired late, at T+${(tGot - t).toFixed(2)}`);
      const deadAt = seen.get(`${taker}:${dead}:DEAD`)!;
      const failAt = seen.get(`${taker}:${dead}:FAIL`);
      assert.ok(deadAt >= t + hd - 1, `${what}: DEAD shown at T+${(deadAt - t).toFixed(1)}`);
      assert.ok(failAt !== undefined && failAt < deadAt && failAt >= t + 8 * IO - 1, `${what}: FAIL shown at T+${failAt && (failAt - t).toFixed(1)}, before DEAD`);
      await expectRow(r, { owner: taker, lver: 2, held: true });
      console.log(
        `# takeover ${what}: host_dead ${hd} s; FAIL seen T+${(failAt - t).toFixed(1)}, DEAD seen T+${(deadAt - t).toFixed(1)}, ` +
          `${errs.length} refusals (${errs[0]![2]}) until T+${(lastRefusal - t).toFixed(1)}, granting call T+${(tBegan - t).toFixed(1)} → T+${(tGot - t).toFixed(2)}`,
      );
    }
    // every survivor agrees on who is dead; the dead hosts' delta leases are untouched since the kill
    for (const obs of [3, 4]) {
      const st = await hostStates(H(obs), LS, obs === 3 ? 'real' : 'ours');
      assert.deepEqual([1, 2, 3, 4].map((h) => st.get(h)), ['DEAD', 'DEAD', 'LIVE', 'LIVE'], `host ${obs} view`);
    }
    const after2 = (await dumpBoth(ids)).rows;
    for (const id of [1, 2]) assert.equal(after2.find((r) => r.offset === (id - 1) * 512)!.timestamp, T.get(id));
  });
});
