// Our daemon with use_watchdog=1 against a fake wdmd (SANLOCK_TS_WDMD_SOCK): the watchdog is
// reached before the join, armed right after the delta acquire, fed each renewal's expiry
// (renewal + 8·io) and cleared only when the lockspace is removed (daemon.md §7).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeWdmdHeader, encodeWdmdHeader, WDMD_HEADER_SIZE, WdmdCmd } from '../../src/daemon/watchdog/wdmd.js';
import { scratchDir } from '../helpers/real-sanlock.js';
import { type OurDaemon, pyAvailable, SANLOCK_BIN, startOurDaemon, waitFor } from './our-daemon.js';

const skip = !pyAvailable();

interface Seen {
  cmd: number;
  renewal: number;
  expire: number;
  name: string;
}

describe('our daemon with a (fake) wdmd', { skip }, () => {
  let d: OurDaemon;
  let server: Server;
  let ids: string;
  const seen: Seen[] = [];
  const conns: Socket[] = [];

  before(async () => {
    const dir = scratchDir('daemon-wdmd');
    ids = join(dir, 'ids');
    execFileSync('truncate', ['-s', '1M', ids]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LSW:0:${ids}:0`, '-o', '1']);
    const sockPath = join(dir, 'wdmd.sock');
    server = createServer((s) => {
      conns.push(s);
      let rx = Buffer.alloc(0);
      s.on('data', (chunk: Buffer) => {
        rx = Buffer.concat([rx, chunk]);
        while (rx.length >= WDMD_HEADER_SIZE) {
          const h = decodeWdmdHeader(rx.subarray(0, WDMD_HEADER_SIZE));
          rx = rx.subarray(WDMD_HEADER_SIZE);
          seen.push({ cmd: h.cmd, renewal: Number(h.renewalTime), expire: Number(h.expireTime), name: h.name });
          if (h.cmd === WdmdCmd.STATUS) s.write(encodeWdmdHeader({ cmd: WdmdCmd.STATUS, testInterval: 10, fireTimeout: 60, lastKeepalive: 1n }));
        }
      });
      s.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(sockPath, r));
    d = await startOurDaemon(join(dir, 'run'), ['-w', '1'], { SANLOCK_TS_WDMD_SOCK: sockPath });
  });

  after(async () => {
    await d.stop();
    for (const c of conns) c.destroy();
    server.close();
  });

  test('register, refcount, status, test_live per renewal, then test_live(0,0) and refcount clear', async () => {
    // async CLI: this process is the fake wdmd and must keep answering
    assert.match((await d.cliAsync(['client', 'add_lockspace', '-s', `LSW:1:${ids}:0`, '-o', '1'])).stdout, /done 0\n$/);
    const cmds = seen.map((x) => x.cmd);
    assert.deepEqual(cmds.slice(0, 4), [WdmdCmd.REGISTER, WdmdCmd.REFCOUNT_SET, WdmdCmd.STATUS, WdmdCmd.TEST_LIVE]);
    assert.equal(seen[0]!.name, 'sanlock_LSW:1');
    const first = seen[3]!;
    assert.equal(first.expire, first.renewal + 8);
    // renewals every 2 s keep moving the expiry
    await waitFor(() => seen.filter((x) => x.cmd === WdmdCmd.TEST_LIVE).length >= 3, 10_000, 'renewal test_live');
    const lives = seen.filter((x) => x.cmd === WdmdCmd.TEST_LIVE);
    for (let i = 1; i < lives.length; i++) {
      assert.ok(lives[i]!.renewal > lives[i - 1]!.renewal);
      assert.equal(lives[i]!.expire, lives[i]!.renewal + 8);
    }
    assert.match((await d.cliAsync(['client', 'rem_lockspace', '-s', `LSW:1:${ids}:0`])).stdout, /done 0\n$/);
    const tail = seen.slice(-2);
    assert.deepEqual(tail.map((x) => x.cmd), [WdmdCmd.TEST_LIVE, WdmdCmd.REFCOUNT_CLEAR]);
    assert.equal(tail[0]!.renewal, 0);
    assert.equal(tail[0]!.expire, 0);
  });
});
