// Replays recorded exchanges with the real sanlock 3.8.5 daemon (vectors/wire/) against our
// daemon and compares the reply bytes exactly. Only exchanges that need no lockspace state.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { scratchDir } from '../helpers/real-sanlock.js';
import { type OurDaemon, pyAvailable, readBytes, startOurDaemon } from './our-daemon.js';
import { WIRE_VECTORS_DIR } from '../helpers/paths.js';

const WIRE = WIRE_VECTORS_DIR;
const STATELESS = [
  '09-inq_lockspace_enoent',
  '22-inquire_by_pid_esrch',
  '25-get_hosts_enoent',
  '32-version',
  '48-rem_lockspace_enoent',
  '51-renewal_enospc',
  '52-host_status_enospc',
  '57-version_raw',
  '58-version_future_proto',
  '59-status_future_proto_ignored',
  '60-bad_magic_then_version',
  '61-unknown_cmd_then_version',
  '63-inquire_unregistered',
  '64-acquire_unregistered',
  '65-acquire_zero_disks',
  '66-acquire_no_lockspace',
  '67-acquire_count9',
  '70-set_config_invalid',
  '84-request_enospc',
];

const skip = !pyAvailable() || !existsSync(WIRE);

describe('replay of recorded wire exchanges', { skip }, () => {
  let d: OurDaemon;
  before(async () => {
    d = await startOurDaemon(join(scratchDir('daemon-replay'), 'run'));
  });
  after(async () => {
    await d.stop();
  });

  for (const name of STATELESS) {
    test(name, async () => {
      const v = JSON.parse(readFileSync(join(WIRE, `${name}.json`), 'utf8')) as { request_hex: string; reply_hex: string; reply_len: number };
      const s = await d.rawConnect();
      s.write(Buffer.from(v.request_hex, 'hex'));
      const got = await readBytes(s, v.reply_len + 1, v.reply_len === 0 ? 300 : 1500);
      s.destroy();
      assert.equal(got.toString('hex'), v.reply_hex);
    });
  }
});

/** Rewrites every NUL-padded path field that starts with `from` so it starts with `to` instead. */
function subPaths(buf: Buffer, from: string, to: string): Buffer {
  const out = Buffer.from(buf);
  const f = Buffer.from(from);
  for (let i = out.indexOf(f); i >= 0; i = out.indexOf(f, i + 1)) {
    const end = out.indexOf(0, i);
    const rest = out.toString('latin1', i + f.length, end);
    const np = Buffer.from(`${to}${rest}\0`, 'latin1');
    // only the padding of a 1024-byte path field is overwritten
    assert.ok(np.length < 1024);
    out.fill(0, i, i + np.length);
    np.copy(out, i);
  }
  return out;
}

describe('replay of recorded disk commands with paths moved to a scratch dir', { skip }, () => {
  let d: OurDaemon;
  let dir: string;
  before(async () => {
    dir = scratchDir('daemon-replay-disk');
    execFileSync('truncate', ['-s', '1M', join(dir, 'ids')]);
    execFileSync('truncate', ['-s', '5M', join(dir, 'leases')]);
    d = await startOurDaemon(join(dir, 'run'));
  });
  after(async () => {
    await d.stop();
  });

  test('write_lockspace, write_resource, read_lockspace, read_resource, read of a missing lease, align', async () => {
    for (const name of ['01-write_lockspace', '02-write_resource', '03-read_lockspace', '04-read_resource', '05-read_resource_error_magic', '68-align']) {
      const v = JSON.parse(readFileSync(join(WIRE, `${name}.json`), 'utf8')) as { request_hex: string; reply_hex: string; reply_len: number };
      const req = subPaths(Buffer.from(v.request_hex, 'hex'), '/shared/sanlock', dir);
      const want = subPaths(Buffer.from(v.reply_hex, 'hex'), '/shared/sanlock', dir);
      const s = await d.rawConnect();
      s.write(req);
      const got = await readBytes(s, want.length, 10_000);
      s.destroy();
      assert.equal(got.toString('hex'), want.toString('hex'), name);
    }
  });
});

/** The reply a vector expects, with paths moved: INQUIRE text (variable length) is rebuilt. */
function expectedReply(hex: string, dir: string): Buffer {
  const b = Buffer.from(hex, 'hex');
  if (b.length > 32 && b.readUInt32LE(8) === 9) {
    const text = Buffer.from(b.toString('latin1', 32).split('/shared/sanlock').join(dir), 'latin1');
    const h = Buffer.from(b.subarray(0, 32));
    h.writeUInt32LE(32 + text.length, 16);
    return Buffer.concat([h, text]);
  }
  return subPaths(b, '/shared/sanlock', dir);
}

describe('replay of a recorded session: lockspace, registered connection, leases', { skip }, () => {
  let d: OurDaemon;
  let dir: string;
  before(async () => {
    dir = scratchDir('daemon-replay-ses');
    const ids = join(dir, 'ids');
    const leases = join(dir, 'leases');
    execFileSync('truncate', ['-s', '1M', ids]);
    execFileSync('truncate', ['-s', '3M', leases]);
    execFileSync('/usr/sbin/sanlock', ['direct', 'init', '-s', `LS:0:${ids}:0`, '-o', '1']);
    for (let i = 0; i < 3; i++) execFileSync('/usr/sbin/sanlock', ['direct', 'init', '-r', `LS:R${i + 1}:${leases}:${i * 1048576}`]);
    d = await startOurDaemon(join(dir, 'run'));
  });
  after(async () => {
    await d.stop();
  });

  test('byte-exact replies for 06–20, 39–41, 46–48', async () => {
    const load = (name: string) => JSON.parse(readFileSync(join(WIRE, `${name}.json`), 'utf8')) as { request_hex: string; reply_hex: string };
    const once = async (name: string, sock?: import('node:net').Socket): Promise<void> => {
      const v = load(name);
      const s = sock ?? (await d.rawConnect());
      s.write(subPaths(Buffer.from(v.request_hex, 'hex'), '/shared/sanlock', dir));
      const want = expectedReply(v.reply_hex, dir);
      const got = await readBytes(s, want.length, 15_000);
      if (!sock) s.destroy();
      assert.equal(got.toString('hex'), want.toString('hex'), name);
    };
    for (const n of ['06-add_lockspace', '07-add_lockspace_eexist', '08-inq_lockspace', '10-get_lockspaces']) await once(n);
    const reg = await d.rawConnect();
    for (const n of ['11-register', '12-killpath', '13-acquire_exclusive', '14-acquire_exclusive_eexist', '15-inquire_one', '16-acquire_shared', '17-acquire_lvb']) await once(n, reg);
    for (const n of ['18-set_lvb', '19-get_lvb']) await once(n);
    await once('20-inquire_three', reg);
    await once('39-rem_lockspace_unused_ebusy');
    for (const n of ['40-release', '41-release_not_held']) await once(n, reg);
    reg.destroy();
    await new Promise((r) => setTimeout(r, 300));
    for (const n of ['46-rem_lockspace', '47-inq_lockspace_after_rem', '48-rem_lockspace_enoent']) await once(n);
  });
});
