// `npm run fuzz -- --count N --seed S [--connections C]`: starts our daemon with a lockspace and
// a lease-holding python client, fuzzes it, checks it the way daemon-fuzz.test.ts does, and
// exits 1 (printing the seed) on any failure.
import assert from 'node:assert/strict';
import { parseArgs } from 'node:util';
import { waitFor } from '../daemon/our-daemon.js';
import { fuzzWithHarness, holderInquire, leaderOwner, leftoverSlots, startHarness, statusProbe } from './harness.js';

const { values } = parseArgs({
  options: { count: { type: 'string', default: '10000' }, seed: { type: 'string' }, connections: { type: 'string', default: '6' } },
});
const count = Number(values.count);
const seed = values.seed !== undefined ? Number(values.seed) : (Date.now() ^ (process.pid << 8)) | 0;
const connections = Number(values.connections);
assert.ok(Number.isInteger(count) && count > 0, '--count must be a positive integer');
assert.ok(Number.isInteger(seed), '--seed must be an integer');

console.log(`fuzz: seed ${seed}, ${count} messages, ${connections} connections`);
// The fuzzer's connections register as this process, so a fuzzed rem_lockspace or a failed FZ
// lockspace makes the daemon SIGTERM us, as sanlock would: note it and go on fuzzing.
let sigterms = 0;
process.on('SIGTERM', () => {
  if (sigterms++ === 0) console.log('fuzz: SIGTERM from the daemon (our registered connections held FZ leases); ignored');
});
const h = await startHarness('fuzz-main');
let failed = false;
try {
  const inqBefore = await holderInquire(h);
  assert.match(inqBefore, /^INQ \[\(b'FUZZKEEP', b'KEEP_EX', \d+\), \(b'FUZZKEEP', b'KEEP_SH', \d+\)\]$/);
  const r = await fuzzWithHarness(h, count, seed, connections, inqBefore);
  console.log(JSON.stringify(r));
  console.log(`throughput ${Math.round((r.sent * 1000) / r.elapsedMs)} msg/s; RSS start ${r.rssStartKiB} KiB, warm ${r.rssWarmKiB}, end ${r.rssEndKiB}; max status latency ${r.maxProbeMs} ms`);
  assert.equal(h.d.proc.exitCode, null, 'daemon exited');
  await statusProbe(h);
  const inq = await holderInquire(h);
  assert.equal(inq, inqBefore, 'holder inquire changed');
  assert.equal(leaderOwner(h.leases, 0), 1);
  // no client slot of the fuzzer's closed connections is left behind, registered or not
  const t0 = Date.now();
  await waitFor(() => leftoverSlots(h).length === 0, 30_000, 'fuzzer client slots freed').catch((e) => {
    console.error(leftoverSlots(h).join('\n'));
    throw e;
  });
  const bugs = h.daemonBugs();
  assert.equal(bugs.count, 0, `the daemon logged ${bugs.count} command/loop failures:\n${bugs.text}`);
  console.log(`SIGTERMs received from the daemon: ${sigterms}`);
  console.log(`client slots left by the fuzzer: 0 (${Date.now() - t0} ms after the end); status lists ${(h.d.cli(['client', 'status']).stdout.match(/^p /gm) ?? []).length} client lines; daemon failures logged: 0`);
} catch (e) {
  failed = true;
  console.error(`FUZZ FAILED with seed ${seed} (rerun: npm run fuzz -- --count ${count} --seed ${seed})`);
  console.error(e);
  // what the holder and the daemon said last: enough to tell a daemon stall from a lost lease
  console.error(`--- holder output (tail) ---\n${h.holderOut().slice(-1500)}`);
  const bugs = h.daemonBugs();
  console.error(`--- daemon failures logged (${bugs.count}) ---\n${bugs.text.slice(0, 8000)}`);
  console.error(`--- daemon log (tail) ---\n${h.d.stderr().slice(-6000)}`);
} finally {
  await h.stop();
}
process.exit(failed ? 1 : 0);
