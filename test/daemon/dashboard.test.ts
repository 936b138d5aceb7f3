// The live dashboard of `--metrics` in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core): two of our daemons (hosts 1 and 2) on one lockspace with io_timeout 1, a
// lease held through host 1; the page must show the lockspace, both hosts with their liveness
// timelines, the lease and its owner, a renewal plot that grows while we watch, and host 2
// turning FAIL after it is killed. A screenshot is saved and its path printed.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { scratchDir } from '../helpers/real-sanlock.js';
import { freePort } from './metrics-helpers.js';
import { type OurDaemon, PYTHON, pyAvailable, SANLOCK_BIN, startOurDaemon, waitFor } from './our-daemon.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function skipReason(): string | false {
  if (!existsSync(CHROMIUM)) return `headless Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium): dashboard browser test skipped`;
  if (!pyAvailable()) return 'needs /usr/sbin/sanlock and python3-sanlock';
  return false;
}

describe('live dashboard in headless Chromium', { skip: skipReason() }, () => {
  let dir: string;
  let ids: string;
  let res: string;
  let port: number;
  let hostA: OurDaemon;
  let hostB: OurDaemon;
  let holder: ChildProcess | undefined;
  let holderPid = 0;
  let ctx: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const foreign: string[] = [];

  before(async () => {
    dir = scratchDir('dashboard');
    ids = join(dir, 'ids');
    res = join(dir, 'res');
    execFileSync('truncate', ['-s', '1M', ids]);
    execFileSync('truncate', ['-s', '1M', res]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LS:0:${ids}:0`, '-o', '1']);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LS:R1:${res}:0`]);
    port = await freePort();
    hostA = await startOurDaemon(join(dir, 'run-a'), ['-e', 'hostA', '--metrics', `127.0.0.1:${port}`]);
    hostB = await startOurDaemon(join(dir, 'run-b'), ['-e', 'hostB']);
    const [a, b] = await Promise.all([
      hostA.cliAsync(['client', 'add_lockspace', '-s', `LS:1:${ids}:0`, '-o', '1']),
      hostB.cliAsync(['client', 'add_lockspace', '-s', `LS:2:${ids}:0`, '-o', '1']),
    ]);
    assert.match(a.stdout, /done 0/);
    assert.match(b.stdout, /done 0/);
    holder = spawn(PYTHON, ['-c', `import sanlock, time\nfd = sanlock.register()\nsanlock.acquire(b"LS", b"R1", [(${JSON.stringify(res)}, 0)], slkfd=fd)\nprint("READY", flush=True)\ntime.sleep(120)`], {
      env: hostA.env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    holderPid = holder.pid!;
    let out = '';
    holder.stdout!.on('data', (d) => (out += d));
    await waitFor(() => out.includes('READY'), 20_000, 'lease holder');

    const profile = join(dir, 'chromium-profile');
    mkdirSync(profile);
    ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1100, height: 900 } });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
    page.on('request', (r) => {
      if (!r.url().startsWith(`http://127.0.0.1:${port}/`)) foreign.push(r.url());
    });
  });

  after(async () => {
    await ctx?.close().catch(() => {});
    if (holder && holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
    await hostA?.stop();
    await hostB?.stop();
  });

  test('the page shows the lockspace, both hosts LIVE, the lease and its owner', async () => {
    await page.goto(`http://127.0.0.1:${port}/?interval=500`);
    await page.waitForSelector('section.lockspace[data-lockspace="LS"]', { timeout: 10_000 });
    assert.equal(await page.textContent('[data-lockspace="LS"] .ls-name'), 'LS');
    assert.equal(await page.textContent('[data-lockspace="LS"] [data-testid="our-host-id"]'), '1');
    // host 2 becomes LIVE once host 1 has seen its timestamp change (two renewals of host 2)
    await page.waitForFunction(
      () => document.querySelector('tr.host[data-host-id="1"] [data-state]')?.getAttribute('data-state') === 'LIVE' &&
        document.querySelector('tr.host[data-host-id="2"] [data-state]')?.getAttribute('data-state') === 'LIVE',
      undefined,
      { timeout: 20_000 },
    );
    assert.match((await page.textContent('tr.host[data-host-id="2"]'))!, /hostB/);
    assert.match((await page.textContent('tr.host[data-host-id="1"]'))!, /\(us\).*hostA/s);
    const lease = page.locator('tr.lease[data-lease="LS:R1"]');
    assert.equal(await lease.count(), 1);
    assert.match((await lease.textContent())!, /exclusive/);
    assert.match((await lease.locator('td.owner').textContent())!, /^host_id 1 gen 1 \(hostA\)$/);
    assert.match((await lease.locator('td.pids').textContent())!, new RegExp(`\\b${holderPid}\\b`));
    // the liveness timeline of host 2 has a LIVE stretch
    assert.ok((await page.locator('tr.host[data-host-id="2"] svg.timeline rect[data-state="LIVE"]').count()) >= 1);
  });

  test('the renewal latency plot grows as renewals happen, without reloading the page', async () => {
    const plot = page.locator('[data-lockspace="LS"] svg.renewal-plot');
    const n1 = Number(await plot.getAttribute('data-points'));
    assert.ok(n1 >= 1, `plot has ${n1} points`);
    await page.waitForFunction((n) => Number(document.querySelector('[data-lockspace="LS"] svg.renewal-plot')?.getAttribute('data-points')) >= n + 2, n1, { timeout: 10_000 });
    assert.equal(await page.locator('[data-lockspace="LS"] svg.renewal-plot polyline.series-readMs').count(), 1);
    assert.equal(await page.locator('[data-lockspace="LS"] svg.renewal-plot polyline.series-writeMs').count(), 1);
    assert.match((await page.textContent('#status'))!, /^live$/);
  });

  test('a killed host turns FAIL on its timeline; screenshot saved', async (t) => {
    await hostB.stop(); // SIGKILL: host 2 stops renewing without releasing its delta lease
    await page.waitForFunction(() => document.querySelector('tr.host[data-host-id="2"] [data-state]')?.getAttribute('data-state') === 'FAIL', undefined, { timeout: 25_000 });
    const states = await page.locator('tr.host[data-host-id="2"] svg.timeline rect[data-state]').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-state')));
    assert.deepEqual(states.slice(-2), ['LIVE', 'FAIL']);
    const shot = join(dir, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 10_000, 'screenshot written');
    t.diagnostic(`dashboard screenshot: ${shot}`);
    console.log(`dashboard screenshot: ${shot}`);
    assert.deepEqual(pageErrors, [], 'no script errors in the page');
    assert.deepEqual(foreign, [], 'the page loads nothing from anywhere but the daemon');
  });
});
