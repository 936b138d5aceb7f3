// A fake watchdog device for tests (shim.c, compiled here with gcc) and the real wdmd 3.8.5
// started on it in a private run dir. The shim refuses every /dev/watchdog* path, so nothing
// here can reset the machine.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WDMD_BIN = '/usr/sbin/wdmd';

function findShimSource(): string {
  // Runs from dist/test/helpers/fake-watchdog; the C source stays in test/helpers/fake-watchdog.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const c = join(dir, 'test', 'helpers', 'fake-watchdog', 'shim.c');
    if (existsSync(c)) return c;
    const local = join(dir, 'shim.c');
    if (existsSync(local)) return local;
    dir = dirname(dir);
  }
  throw new Error('fake-watchdog shim.c not found');
}

export function haveGcc(): boolean {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function haveWdmd(): boolean {
  return existsSync(WDMD_BIN) && haveGcc();
}

let shimSo: string | undefined;

/** Path of the compiled shim (built once per process). */
export function fakeWatchdogShim(): string {
  if (shimSo) return shimSo;
  const dir = mkdtempSync(join(tmpdir(), 'fwd-so-'));
  const so = join(dir, 'fake-watchdog.so');
  execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', so, findShimSource(), '-ldl', '-lpthread']);
  // Processes still mapping it keep their copy; the directory is not needed after this one ends.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  shimSo = so;
  return so;
}

export interface WdEvent {
  /** CLOCK_MONOTONIC seconds (same clock as delta-lease timestamps). */
  t: number;
  pid: number;
  /** open | settimeout | gettimeout | keepalive | write | magic | close | fired */
  event: string;
  arg?: string;
}

export function parseEvents(text: string): WdEvent[] {
  const out: WdEvent[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+\.\d+) (\d+) (\S+)(?: (.*))?$/.exec(line);
    if (!m) continue;
    out.push({ t: Number(m[1]), pid: Number(m[2]), event: m[3]!, arg: m[4] });
  }
  return out;
}

export function readEvents(logPath: string): WdEvent[] {
  if (!existsSync(logPath)) return [];
  return parseEvents(readFileSync(logPath, 'utf8'));
}

export interface FakeDevice {
  /** Private directory (short, under the OS tmp dir: unix socket paths are limited). */
  dir: string;
  devicePath: string;
  logPath: string;
  shmName: string;
  /** Environment that loads the shim into a process and points it at this device. */
  env: NodeJS.ProcessEnv;
  events(): WdEvent[];
  cleanup(): void;
}

export interface FakeDeviceOptions {
  /** Record "fired" this many seconds after the last ping instead of the device timeout. */
  fireSeconds?: number;
  /** What WDIOC_GETTIMEOUT reports before any SETTIMEOUT (default 30). */
  initialTimeout?: number;
}

export function fakeDevice(opts: FakeDeviceOptions = {}): FakeDevice {
  const dir = mkdtempSync(join(tmpdir(), 'fwd-'));
  const devicePath = join(dir, 'watchdog');
  const logPath = join(dir, 'events.log');
  const shmName = `/wdmd-fake-${process.pid}-${dir.slice(-6)}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LD_PRELOAD: fakeWatchdogShim(),
    FAKE_WD_DEV: devicePath,
    FAKE_WD_LOG: logPath,
    FAKE_WD_RUN_DIR: join(dir, 'run'),
    FAKE_WD_SHM: shmName,
  };
  if (opts.fireSeconds !== undefined) env.FAKE_WD_FIRE_SECONDS = String(opts.fireSeconds);
  if (opts.initialTimeout !== undefined) env.FAKE_WD_INITIAL_TIMEOUT = String(opts.initialTimeout);
  return {
    dir,
    devicePath,
    logPath,
    shmName,
    env,
    events: () => readEvents(logPath),
    cleanup() {
      try {
        unlinkSync(join('/dev/shm', shmName.slice(1)));
      } catch {
        /* wdmd removed it on a clean exit */
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface FakeWdmd {
  device: FakeDevice;
  socketPath: string;
  proc: ChildProcess;
  /** wdmd's own -D log so far. */
  stderr(): string;
  events(): WdEvent[];
  /** SIGTERM (wdmd exits only when no client holds a reference); resolves with whether it exited. */
  term(waitMs?: number): Promise<boolean>;
  /** SIGKILL the process group and remove the private dir. */
  stop(): Promise<void>;
}

export async function waitUntil(pred: () => boolean, ms: number, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts `wdmd -D -H 0 -G root -w <fake device>` with the shim, in a private run dir. */
export async function startWdmdWithFakeDevice(opts: FakeDeviceOptions = {}): Promise<FakeWdmd> {
  const device = fakeDevice(opts);
  const runDir = device.env.FAKE_WD_RUN_DIR!;
  const socketPath = join(runDir, 'wdmd.sock');
  const proc = spawn(WDMD_BIN, ['-D', '-H', '0', '-G', 'root', '-w', device.devicePath], {
    env: device.env,
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let log = '';
  proc.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await exited;
    }
    device.cleanup();
  };
  try {
    await waitUntil(() => existsSync(socketPath) || proc.exitCode !== null, 10_000, 'wdmd socket');
  } catch (e) {
    await stop();
    throw e;
  }
  if (proc.exitCode !== null) {
    await stop();
    throw new Error(`wdmd exited at start: ${log}`);
  }
  return {
    device,
    socketPath,
    proc,
    stderr: () => log,
    events: () => device.events(),
    async term(waitMs = 3000) {
      if (proc.exitCode !== null) return true;
      proc.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), waitMs))]);
      return done;
    },
    stop,
  };
}
