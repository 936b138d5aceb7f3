// Replays recorded exchanges with the real sanlock 3.8.5 daemon (vectors/wire/) against our
// daemon and compares the reply bytes exactly. Only exchanges that need no lockspace state.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { scratchDir } from '../helpers/real-sanlock.js';
import { type OurDaemon, pyAvailable, readBytes, startOurDaemon } from './our-daemon.js';

const WIRE = '/work/shared/vectors/wire';
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
