// `sanlock-ts client` details that need no daemon: argument errors, an unreachable daemon
// (compared with the real binary when installed), and the status sort orders of §4.2.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runClient } from '../../src/cli/client.js';
import { formatHostStatus, formatStatus } from '../../src/cli/client-output.js';
import { Cmd } from '../../src/protocol/commands.js';
import { decodeReply } from '../../src/protocol/replies.js';
import { SANLOCK_BIN, haveRealSanlock } from '../helpers/real-sanlock.js';
import { haveVectors, loadVector } from '../protocol/vectors.js';

const nowhere = mkdtempSync(join(tmpdir(), 'slk-nodaemon-'));

async function ours(args: string[]): Promise<{ stdout: string; status: number }> {
  let stdout = '';
  const status = await runClient(args, { write: (s) => (stdout += s), runDir: nowhere, isTTY: false });
  return { stdout, status };
}

function real(args: string[]): { stdout: string; status: number } {
  try {
    return { stdout: execFileSync(SANLOCK_BIN, ['client', ...args], { env: { ...process.env, SANLOCK_RUN_DIR: nowhere }, encoding: 'utf8' }), status: 0 };
  } catch (e) {
    const err = e as { stdout?: string; status?: number };
    return { stdout: err.stdout ?? '', status: err.status ?? 1 };
  }
}

const CASES: string[][] = [
  ['version'],
  ['gets'],
  ['gets', '-h', '1'],
  ['status'],
  ['status', '-D'],
  ['host_status'],
  ['host_status', '-s', 'LS'],
  ['renewal', '-s', 'LS'],
  ['log_dump'],
  ['inquire', '-p', '5'],
  ['shutdown'],
  ['shutdown', '-w', '1', '-f', '1'],
  ['init', '-s', 'LS:0:/x:0'],
  ['init', '-r', 'LS:R1:/x:0', '-Z', '4096', '-A', '8M'],
  ['init', '-r', 'LS:R1:/x:0', '-Z', '512', '-A', '2M'],
  ['read', '-s', 'LS:0:/x:0'],
  ['read', '-r', 'LS:R1:/x:0'],
  ['align', '-s', 'LS:0:/x:0'],
  ['add_lockspace', '-s', 'LS:1:/x:0'],
  ['add_lockspace', '-s', 'LS:1:/x:0', '-o', '5'],
  ['add_lockspace', '-s', 'LS:1:/x:0', '-o', '10'],
  ['inq_lockspace', '-s', 'LS:1:/x:0'],
  ['rem_lockspace', '-s', 'LS:1:/x:0'],
  ['acquire', '-r', 'LS:R1:/x:0', '-p', '9'],
  ['convert', '-r', 'LS:R1:/x:0', '-p', '9'],
  ['release', '-r', 'LS:R1', '-p', '9'],
  ['release', '-s', 'LS', '-O', '1', '-p', '9'],
  ['request', '-r', 'LS:R1:/x:0:5', '-f', '1'],
  ['examine', '-r', 'LS:R1:/x:0'],
  ['examine', '-s', 'LS:1:/x:0'],
  ['set_event', '-s', 'LS', '-i', '2', '-g', '3', '-e', '0x1f', '-d', '255'],
  ['set_config', '-s', 'LS', '-u', '1'],
  ['set_config', '-s', 'LS', '-u', '1', '-O', '0'],
  ['format', '-x', 'LS:/x:1M'],
  ['create', '-x', 'LS:/x:1M', '-e', 'A'],
  ['delete', '-x', 'LS:/x:1M', '-e', 'A:3M'],
  ['lookup', '-x', 'LS:/x:1M'],
  ['update', '-x', 'LS:/x:1M', '-e', 'A:3M', '-z', '1'],
  ['rebuild', '-x', 'LS:/x:1M'],
  ['command', '-r', 'LS:R1:/x:0'],
  ['command', '-r', 'LS:R1:/x:0', '-c', '/bin/true'],
  [],
  ['bogus'],
  ['status', '-Q'],
  ['status', 'x'],
  ['acquire', '-r', 'LS:R1:/x', '-p', '9'],
];

describe('client CLI with no daemon', () => {
  test('connection failures print what sanlock prints (-2 from connect)', async () => {
    assert.deepEqual(await ours(['gets']), { stdout: 'gets error -2\n', status: 1 });
    assert.deepEqual(await ours(['status']), { stdout: '', status: 1 });
    assert.deepEqual(await ours(['version']), {
      stdout: 'daemon version error -2\nclient version 3.8.5 (0x03080500)\ndaemon version 0.0.0 (0x00000000)\nclient socket protocol 0.1\ndaemon socket protocol 0.0\n',
      status: 0,
    });
    assert.deepEqual(await ours(['command', '-r', 'LS:R1:/x:0']), { stdout: 'register\nregister done -2\n', status: 0 });
  });

  test('every action and argument error matches the real binary', { skip: haveRealSanlock() ? false : 'real sanlock not installed' }, async () => {
    for (const args of CASES) assert.deepEqual(await ours(args), real(args), `client ${args.join(' ')}`);
  });
});

describe('status text', { skip: haveVectors() ? false : 'vectors missing' }, () => {
  const rep = haveVectors() ? decodeReply(Cmd.STATUS, loadVector('29').reply) : undefined;
  const records = rep?.ok ? rep.value.records! : [];
  const L = '/shared/sanlock/leases';

  test('unsorted, -o p and -o s orders (cli.md §4.2)', () => {
    assert.equal((loadVector('29').result as { stdout: string }).stdout, formatStatus(records, false));
    assert.equal(
      formatStatus(records, false, 'p'),
      [
        'daemon 34d39be5-14b0-4e35-8547-04bc1f81d579.vm',
        'p -1 helper',
        'p -1 listener',
        'p -1 status',
        's LS:1:/shared/sanlock/ids:0',
        'p 7667 ',
        `r LS:R3:${L}:2097152:1 p 7667`,
        `r LS:R2:${L}:1048576:SH p 7667`,
        `r LS:R1:${L}:0:1 p 7667`,
        '',
      ].join('\n'),
    );
    assert.equal(
      formatStatus(records, false, 's'),
      [
        'daemon 34d39be5-14b0-4e35-8547-04bc1f81d579.vm',
        'p -1 helper',
        'p -1 listener',
        'p -1 status',
        'p 7667 ',
        's LS:1:/shared/sanlock/ids:0',
        `r LS:R3:${L}:2097152:1 p 7667`,
        `r LS:R2:${L}:1048576:SH p 7667`,
        `r LS:R1:${L}:0:1 p 7667`,
        '',
      ].join('\n'),
    );
  });

  test('-D prints each key=value indented, ADD/REM/ORPHAN suffixes, escaped paths', () => {
    const d = formatStatus(records.slice(0, 1), true);
    assert.ok(d.startsWith('daemon 34d39be5-14b0-4e35-8547-04bc1f81d579.vm\n    our_host_name=34d39be5'));
    assert.ok(d.endsWith('    version_hex=03080500\n    smproto_hex=00000001\n'));
    const ls = records.find((r) => r.state.type === 3)!;
    const add = { ...ls, str: ls.str.replace('list=spaces', 'list=add'), lockspace: { ...ls.lockspace!, hostIdDisk: { ...ls.lockspace!.hostIdDisk, path: '/a b:c' } } };
    assert.equal(formatStatus([add], false), 's LS:1:/a\\ b\\:c:0 ADD\n');
    const res = records.find((r) => r.state.type === 4)!;
    assert.equal(formatStatus([{ ...res, str: res.str.replace('list=held', 'list=orphan') }], false), `r LS:R3:${L}:2097152:1 p 7667 ORPHAN\n`);
    const hs = decodeReply(Cmd.HOST_STATUS, loadVector('30').reply);
    assert.ok(hs.ok);
    if (hs.ok) assert.equal(formatHostStatus(hs.value.records!, true), (loadVector('30').result as { stdout: string }).stdout);
  });
});
