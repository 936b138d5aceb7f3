// Issue 9 item 5: sanlock's limits, each refused with sanlock's code and nothing written to
// the lease file, against OUR daemon (python3-sanlock and the real CLI as clients).
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { emptyOptions, encodeOptions, encodeResource, makeResource } from '../../src/protocol/structs.js';
import { decodeLeader } from '../../src/ondisk/leader.js';
import { header, pyAvailable, readBytes, waitFor } from '../daemon/our-daemon.js';
import { direct, MiB, pyCode, type Setup, setup } from './helpers.js';

const skip = !pyAvailable();

describe('limits against our daemon', { skip }, () => {
  let s: Setup;
  let ids: string;
  let leases: string;

  before(async () => {
    s = await setup('limits', { ids: 1, ids2: 1, leases: 10 }, (f) => {
      direct(['init', '-s', `LS:0:${f('ids')}:0`, '-o', '1']);
      direct(['init', '-s', `LS2:0:${f('ids2')}:0`, '-o', '1']);
      for (let i = 0; i < 10; i++) direct(['init', '-r', `LS:R${i}:${f('leases')}:${i * MiB}`]);
    });
    ids = s.file('ids');
    leases = s.file('leases');
    assert.match(s.d.cli(['client', 'add_lockspace', '-s', `LS:1:${ids}:0`, '-o', '1']).stdout, /done 0\n$/);
  });

  after(async () => {
    await s?.cleanup();
  });

  test('host_id 0 → -22 and 2001 → -231 with nothing written; 2000 joins', () => {
    const ids2 = s.file('ids2');
    const before0 = s.snapshot(ids2);
    assert.equal(pyCode(s.d, `sanlock.add_lockspace(b"LS2", 0, b"${ids2}", 0, iotimeout=1)`), 'ERR 22');
    assert.equal(pyCode(s.d, `sanlock.add_lockspace(b"LS2", 2001, b"${ids2}", 0, iotimeout=1)`), 'ERR -231');
    assert.ok(s.snapshot(ids2).equals(before0), 'ids file changed by a refused join');
    assert.match(s.d.cli(['client', 'status']).stdout, /^s LS:1:/m);
    assert.doesNotMatch(s.d.cli(['client', 'status']).stdout, /^s LS2:/m);
    // 2000 is the last host id a 512-byte-sector lockspace holds: the join succeeds and writes
    // only that host's sector (the last one of the 1 MiB area)
    assert.equal(pyCode(s.d, `sanlock.add_lockspace(b"LS2", 2000, b"${ids2}", 0, iotimeout=1)`), 'OK');
    const after = s.snapshot(ids2);
    assert.ok(after.subarray(0, 1999 * 512).equals(before0.subarray(0, 1999 * 512)), 'other hosts\' sectors changed');
    const l = decodeLeader(after, 1999 * 512);
    assert.equal(l.ownerId, 2000);
    assert.equal(l.ownerGeneration, 1);
    assert.ok(l.timestamp > 0);
    assert.equal(pyCode(s.d, `sanlock.rem_lockspace(b"LS2", 2000, b"${ids2}", 0)`), 'OK');
  });

  /** A registered raw connection sending ACQUIRE for itself (data2 -1) with `res`. */
  async function rawAcquire(res: { name: string; offset: number; path?: string; ls?: string }[]): Promise<{ code: number; sock: Socket }> {
    const sock = await s.d.rawConnect();
    sock.write(header(1));
    const payload = Buffer.concat([
      ...res.map((r) => encodeResource(makeResource(r.ls ?? 'LS', r.name, [{ path: r.path ?? leases, offset: r.offset, pad1: 0, pad2: 0 }]))),
      encodeOptions(emptyOptions()),
    ]);
    sock.write(Buffer.concat([header(7, { data: res.length, data2: -1, length: 32 + payload.length }), payload]));
    const rep = await readBytes(sock, 32, 20_000);
    assert.equal(rep.length, 32, 'acquire reply');
    return { code: rep.readInt32LE(24), sock };
  }

  test('9 resources per acquire → -7 (E2BIG), nothing written; 8 are acquired', async () => {
    const before9 = s.snapshot(leases);
    const nine = await rawAcquire(Array.from({ length: 9 }, (_, i) => ({ name: `R${i}`, offset: i * MiB })));
    assert.equal(nine.code, -7);
    nine.sock.destroy();
    assert.ok(s.snapshot(leases).equals(before9), 'lease file changed by a refused acquire');
    const eight = await rawAcquire(Array.from({ length: 8 }, (_, i) => ({ name: `R${i}`, offset: i * MiB })));
    assert.equal(eight.code, 0);
    const inq = s.d.cli(['client', 'status']);
    for (let i = 0; i < 8; i++) assert.match(inq.stdout, new RegExp(`r LS:R${i}:`));
    eight.sock.destroy();
    // the client's exit releases all eight
    await waitFor(() => !/r LS:R/.test(s.d.cli(['client', 'status']).stdout), 10_000, 'release on close');
  });

  test('offset beyond the end of the lease file → -90 (EMSGSIZE), nothing written', async () => {
    const before = s.snapshot(leases);
    const r = await rawAcquire([{ name: 'R0', offset: 20 * MiB }]);
    r.sock.destroy();
    assert.equal(r.code, -90);
    assert.ok(s.snapshot(leases).equals(before), 'lease file changed');
    assert.equal(pyCode(s.d, `fd = sanlock.register()\nsanlock.acquire(b"LS", b"R0", [(b"${leases}", ${20 * MiB})], slkfd=fd)`), 'ERR 90');
  });

  test('names: 48 bytes accepted by the daemon, 49 refused by the client library before the wire', async () => {
    const n48 = 'N'.repeat(48);
    // a 48-byte name fills the struct without a terminating NUL: the daemon must not read past it
    direct(['init', '-r', `LS:${n48}:${leases}:${9 * MiB}`]);
    const r = await rawAcquire([{ name: n48, offset: 9 * MiB }]);
    assert.equal(r.code, 0);
    assert.match(s.d.cli(['client', 'status']).stdout, new RegExp(`r LS:${n48}:`));
    r.sock.destroy();
    await waitFor(() => !/r LS:N/.test(s.d.cli(['client', 'status']).stdout), 10_000, 'release on close');
    // a 49-byte name cannot be carried by the 48-byte field: python-sanlock truncates it
    // (strncpy), so the daemon sees — and acquires — the 48-byte name
    assert.equal(pyCode(s.d, `fd = sanlock.register()\nsanlock.acquire(b"LS", b"${'N'.repeat(49)}", [(b"${leases}", ${9 * MiB})], slkfd=fd)\nprint(sanlock.inquire(slkfd=fd))`), 'OK');
    // nothing from a 49-byte name lands on disk: the leader keeps the 48-byte name
    assert.match(direct(['dump', `${leases}:${9 * MiB}:${MiB}`]), new RegExp(` LS +${n48} `));
  });

  test('paths: 1 025 bytes refused by the client library; 1 024 bytes (no NUL) is not found', async () => {
    const before = s.snapshot(leases);
    assert.match(pyCode(s.d, `fd = sanlock.register()\nsanlock.acquire(b"LS", b"R0", [(b"/" + b"p" * 1024, 0)], slkfd=fd)`), /^(PYERR ValueError|ERR 22)/);
    // a path filling all 1024 bytes of the struct has no NUL: the daemon must treat it as that
    // 1024-byte (nonexistent) path and fail the open, not read beyond the field
    const r = await rawAcquire([{ name: 'R0', offset: 0, path: '/' + 'p'.repeat(1023) }]);
    r.sock.destroy();
    assert.ok(r.code < 0, `acquire on a 1024-byte path returned ${r.code}`);
    assert.ok(s.snapshot(leases).equals(before), 'lease file changed');
    assert.match(s.d.cli(['client', 'status']).stdout, /^daemon /);
  });
});

describe('connection limit of our daemon', { skip }, () => {
  let s: Setup;
  before(async () => {
    s = await setup('conns', {}, () => undefined);
  });
  after(async () => {
    await s?.cleanup();
  });

  /** The listen backlog fills while the daemon accepts: EAGAIN means "try again", as for any client. */
  async function connectRetry(): Promise<Socket> {
    for (let i = 0; ; i++) {
      try {
        return await s.d.rawConnect();
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || i > 200) throw e;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  /** Sends VERSION (28) and returns the reply's cmd, or -1 when the daemon closed / said nothing. */
  async function version(sock: Socket): Promise<number> {
    sock.write(header(28));
    const r = await readBytes(sock, 32, 3000);
    return r.length === 32 ? r.readUInt32LE(8) : -1;
  }

  test('registered connections cut mid-payload free their client slots (found by the long fuzz run)', async () => {
    const mine = (): number => [...s.d.cli(['client', 'status']).stdout.matchAll(new RegExp(`^p ${process.pid} `, 'gm'))].length;
    // T: a registered connection of this pid that stays; the others act for this pid (so for T)
    const t = await s.d.rawConnect();
    t.write(header(1));
    await waitFor(() => mine() === 1, 5000, 'T registered');
    const cut = async (cmd: number, data2: number): Promise<void> => {
      const k = await s.d.rawConnect();
      k.write(header(1));
      // the header promises a payload; only 10 bytes of it come before the close
      k.write(Buffer.concat([header(cmd, { data: 1, data2, length: 32 + 2000 }), Buffer.alloc(10, 0x41)]));
      await new Promise((r) => setTimeout(r, 50));
      k.destroy();
    };
    try {
      for (let i = 0; i < 5; i++) {
        await cut(16, 0); // INQ_LOCKSPACE: a lockspace command
        await cut(24, 0); // READ_RESOURCE_OWNERS: a storage command
        await cut(7, process.pid); // ACQUIRE for another client of this pid (T)
      }
      await waitFor(() => mine() === 1, 10_000, 'cut connections freed').catch(() => {
        assert.fail(`client slots left behind:\n${s.d.cli(['client', 'status', '-D']).stdout}`);
      });
    } finally {
      t.destroy();
    }
    await waitFor(() => mine() === 0, 10_000, 'T freed');
  });

  test('1 022 connections are served (sanlock: 1 024 slots less listener and helper); the next is closed; a freed slot is reused', async () => {
    const socks: Socket[] = [];
    try {
      for (let i = 0; i < 1022; i++) socks.push(await connectRetry());
      assert.equal(await version(socks[0]!), 28);
      assert.equal(await version(socks[1021]!), 28);
      const extra = await connectRetry();
      socks.push(extra);
      const closed = new Promise<boolean>((res) => {
        extra.once('close', () => res(true));
        setTimeout(() => res(false), 3000);
      });
      assert.equal(await version(extra), -1, 'the connection beyond the limit was answered');
      assert.equal(await closed, true, 'the connection beyond the limit was left open');
      // the daemon keeps serving the others and the CLI once a slot is free
      socks[5]!.destroy();
      await waitFor(() => s.d.cli(['client', 'status']).status === 0, 10_000, 'status after a slot frees');
      assert.equal(await version(socks[1000]!), 28);
    } finally {
      for (const k of socks) k.destroy();
    }
  });
});
