// Our `client` CLI sends the same bytes as the real `sanlock client` for every action and
// option combination, and prints the same text for the same replies: both talk to a daemon
// stand-in that accepts everything and records what it receives.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { runClient } from '../../src/cli/client.js';
import { SANLOCK_BIN, haveRealSanlock } from '../helpers/real-sanlock.js';
import { startAcceptingDaemon } from '../client/fake-daemon.js';

const CASES: string[][] = [
  ['status'],
  ['status', '-D', '-o', 's'],
  ['host_status', '-s', 'LS'],
  ['host_status'],
  ['renewal', '-s', 'LS'],
  ['gets', '-h', '1'],
  ['log_dump'],
  ['version'],
  ['shutdown'],
  ['shutdown', '-f', '1'],
  ['shutdown', '-w', '1', '-f', '1'],
  ['init', '-s', 'LS:0:/x/ids:0'],
  ['init', '-s', 'LS:0:/x/ids:0', '-o', '3', '-m', '250', '-Z', '4096', '-A', '1M'],
  ['init', '-r', 'LS:R1:/x/leases:1M'],
  ['init', '-r', 'LS:R1:/x/leases:1M', '-z', '1', '-n', '5', '-m', '9', '-Z', '4096'],
  ['write', '-r', 'LS:R1:/x/a\\:b:0:/y:7'],
  ['read', '-s', 'LS:0:/x/ids:0', '-D'],
  ['read', '-s', 'LS:0:/x/ids:1M', '-Z', '512', '-A', '1M'],
  ['read', '-r', 'LS:R1:/x/leases:0', '-D'],
  ['read', '-r', 'LS:R1:/x/leases:0', '-h', '1'],
  ['align', '-s', 'LS:0:/x/ids:0'],
  ['add_lockspace', '-s', 'LS:1:/x/ids:0'],
  ['add_lockspace', '-s', 'LS:7:/x/ids:1M', '-o', '1'],
  ['inq_lockspace', '-s', 'LS:1:/x/ids:0'],
  ['rem_lockspace', '-s', 'LS:1:/x/ids:0'],
  ['acquire', '-r', 'LS:R1:/x/leases:0', '-p', '123'],
  ['acquire', '-r', 'LS:R1:/x/leases:0:SH', '-r', 'LS:R2:/x/leases:1M:5', '-p', '123', '-n', '4', '-P', '1', '-O', '1'],
  ['convert', '-r', 'LS:R1:/x/leases:0:SH', '-p', '123'],
  ['release', '-r', 'LS:R1', '-r', 'LS:R2:/x/leases:0', '-p', '123'],
  ['release', '-r', 'LS:R1', '-p', '123', '-a', '1'],
  ['release', '-s', 'LS', '-O', '1', '-p', '123'],
  ['release', '-r', 'LS:R1', '-O', '1', '-p', '123'],
  ['inquire', '-p', '123'],
  ['request', '-r', 'LS:R1:/x/leases:0:3', '-f', '2'],
  ['request', '-r', 'LS:R1:/x/leases:0', '-f', '1'],
  ['examine', '-r', 'LS:R1:/x/leases:0'],
  ['examine', '-s', 'LS:1:/x/ids:0'],
  ['examine', '-s', 'LS'],
  ['set_event', '-s', 'LS', '-i', '2', '-g', '3', '-e', '0x1f', '-d', '255'],
  ['set_config', '-s', 'LS', '-u', '1'],
  ['set_config', '-s', 'LS', '-O', '1'],
  ['set_config', '-s', 'LS', '-u', '0', '-O', '0'],
  ['format', '-x', 'LS:/x/rx:1M', '-Z', '4096', '-A', '8M'],
  ['create', '-x', 'LS:/x/rx:1M', '-e', 'RES1', '-m', '7', '-n', '3'],
  ['delete', '-x', 'LS:/x/rx:1M', '-e', 'RES1:3M'],
  ['lookup', '-x', 'LS:/x/rx:1M', '-e', 'RES1'],
  ['lookup', '-x', 'LS:/x/rx:1M'],
  ['update', '-x', 'LS:/x/rx:1M', '-e', 'RES9:6M'],
  ['update', '-x', 'LS:/x/rx:1M', '-e', 'RES9:6M', '-z', '1'],
  ['rebuild', '-x', 'LS:/x/rx:1M'],
];

function realCli(args: string[], runDir: string): Promise<{ stdout: string; status: number }> {
  return new Promise((resolve) => {
    execFile(SANLOCK_BIN, ['client', ...args], { env: { ...process.env, SANLOCK_RUN_DIR: runDir }, encoding: 'utf8', timeout: 10_000 }, (err, stdout) => {
      resolve({ stdout, status: err ? ((err as { code?: number }).code ?? 1) : 0 });
    });
  });
}

describe('client CLI request bytes equal the real CLI', { skip: haveRealSanlock() ? false : 'real sanlock not installed' }, () => {
  for (const args of CASES) {
    test(`client ${args.join(' ')}`, async () => {
      const a = await startAcceptingDaemon();
      const b = await startAcceptingDaemon();
      try {
        const real = await realCli(args, a.runDir);
        let stdout = '';
        const status = await runClient(args, { write: (s) => (stdout += s), runDir: b.runDir, isTTY: false });
        await new Promise((r) => setTimeout(r, 10));
        assert.equal(b.received().toString('hex'), a.received().toString('hex'), 'request bytes');
        assert.deepEqual({ stdout, status }, real);
      } finally {
        await a.close();
        await b.close();
      }
    });
  }
});
