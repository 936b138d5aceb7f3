#!/usr/bin/env node
// Demo: initialise a lockspace and a resource lease in plain files with `sanlock-ts direct`,
// then dump both. Needs a built tree (`npm run build`). Files go on a real filesystem: O_DIRECT,
// which lease I/O uses, is refused by some tmpfs versions.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(repo, 'bin', 'sanlock-ts');
const TMPFS_MAGIC = 0x01021994;

function baseDir() {
  const envTmp = process.env.TMPDIR || tmpdir();
  try {
    if (statfsSync(envTmp).type !== TMPFS_MAGIC) return envTmp;
  } catch { /* fall through to the repo */ }
  const local = join(repo, '.test-tmp');
  mkdirSync(local, { recursive: true });
  return local;
}

function run(args) {
  console.log(`$ sanlock-ts ${args.join(' ')}`);
  try {
    process.stdout.write(execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8' }));
  } catch (e) {
    process.stdout.write(e.stdout ?? '');
    console.log(`(exit status ${e.status})`);
    throw new Error(`sanlock-ts ${args[0]} ${args[1]} failed`);
  }
  console.log();
}

const dir = mkdtempSync(join(baseDir(), 'sanlock-ts-demo-'));
try {
  const ids = join(dir, 'ids');
  const leases = join(dir, 'leases');
  for (const [f, size] of [[ids, 1 << 20], [leases, 3 << 20]]) {
    writeFileSync(f, '');
    truncateSync(f, size);
  }
  console.log(`# lease files in ${dir}\n`);
  run(['direct', 'init', '-s', `demo:0:${ids}:0`]);
  run(['direct', 'init', '-r', `demo:vm1:${leases}:0`]);
  run(['direct', 'init', '-r', `demo:vm2:${leases}:1M`]);
  run(['direct', 'read_leader', '-s', `demo:1:${ids}:0`]);
  run(['direct', 'dump', ids]);
  run(['direct', 'dump', leases, '-f', '1']);
  run(['direct', 'read_leader', '-r', `demo:vm2:${leases}:1M`]);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
