// Debian's libvirt sanlock lock-driver plugin (package libvirt-sanlock: lock-driver/sanlock.so,
// linked with libsanlock_client) against our daemon, without a hypervisor: a small C harness
// dlopens the plugin and drives its exported `virLockDriverImpl` table the way libvirt's qemu
// driver does for a domain start (drvInit → drvNew with the domain's name/uuid/pid → one
// drvAddResource per <lease> → drvAcquire in the "qemu" process itself → drvInquire/drvRelease).
// The harness plays the qemu process (pid param = its own pid), so the plugin registers with the
// daemon, sends KILLPATH for a failure action, acquires with the domain name as owner, inquires
// and releases through libsanlock_client. The leases come from a domain XML parsed by our
// src/client/domain-xml.ts, the same file `client command --domain-xml` takes. The same checks
// run against the real sanlock 3.8.5 daemon as a reference.
//
// Struct layout (libvirt src/locking/lock_driver.h, plugin ABI 1.0.0 = version 1000000, which
// the installed plugin reports): { unsigned version, flags; 8 function pointers: init, deinit,
// new, free, addResource, acquire, release, inquire }; params are { int type; const char *key;
// union (16 bytes) value }.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseDomainLeases } from '../../src/client/domain-xml.js';
import { decodeLeader } from '../../src/ondisk/leader.js';
import { startOurDaemon, waitFor } from '../daemon/our-daemon.js';
import { SANLOCK_BIN, haveRealSanlock, scratchDir, startRealDaemon } from '../helpers/real-sanlock.js';

const BIN = resolve('bin/sanlock-ts');
const MIB = 1024 * 1024;

function findPlugin(): string | undefined {
  for (const dir of ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib']) {
    const p = join(dir, 'libvirt/lock-driver/sanlock.so');
    if (existsSync(p)) return p;
  }
  return undefined;
}

function haveGcc(): boolean {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const PLUGIN = findPlugin();
const skip = !PLUGIN
  ? "Debian's libvirt sanlock plugin is not installed (apt-get install libvirt-sanlock: lock-driver/sanlock.so)"
  : !haveGcc()
    ? 'gcc is needed to build the plugin harness'
    : false;

// argv: PLUGIN CONFIG NAME ACTION [LOCKSPACE KEY PATH OFFSET]...; then commands on stdin:
// "acquire", "inquire", "release", "exit". Every answer is one line on stdout.
const HARNESS_C = String.raw`
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef union { int iv; unsigned int ui; long long l; unsigned long long ul; double d;
                char *str; const char *cstr; unsigned char uuid[16]; } PVal;
typedef struct { int type; const char *key; PVal value; } Param;
typedef struct { void *driver; void *privateData; } Mgr;
typedef struct {
  unsigned int version, flags;
  int (*init)(unsigned int, const char *, unsigned int);
  int (*deinit)(void);
  int (*newmgr)(Mgr *, unsigned int, size_t, Param *, unsigned int);
  void (*freemgr)(Mgr *);
  int (*add)(Mgr *, unsigned int, const char *, size_t, Param *, unsigned int);
  int (*acquire)(Mgr *, const char *, unsigned int, int, int *);
  int (*release)(Mgr *, char **, unsigned int);
  int (*inquire)(Mgr *, char **, unsigned int);
} Driver;
enum { P_STRING, P_CSTRING, P_INT, P_LONG, P_UINT, P_ULONG, P_DOUBLE, P_UUID };
enum { RES_DISK, RES_LEASE };

static const char *(*lastmsg)(void);
static const char *msg(void) { const char *m = lastmsg ? lastmsg() : NULL; return m ? m : "?"; }

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 5 || (argc - 5) % 4) { printf("ERR usage\n"); return 2; }
  void *vl = dlopen("libvirt.so.0", RTLD_NOW | RTLD_GLOBAL);
  if (!vl) { printf("ERR dlopen libvirt: %s\n", dlerror()); return 2; }
  int (*virInitialize)(void) = (int (*)(void))dlsym(vl, "virInitialize");
  lastmsg = (const char *(*)(void))dlsym(vl, "virGetLastErrorMessage");
  if (!virInitialize || virInitialize() < 0) { printf("ERR virInitialize\n"); return 2; }
  void *h = dlopen(argv[1], RTLD_NOW);
  if (!h) { printf("ERR dlopen plugin: %s\n", dlerror()); return 2; }
  Driver *d = (Driver *)dlsym(h, "virLockDriverImpl");
  if (!d) { printf("ERR no virLockDriverImpl\n"); return 2; }
  printf("DRIVER version %u flags %u\n", d->version, d->flags);
  if (d->init(1000000, argv[2], 0) < 0) { printf("ERR init %s\n", msg()); return 1; }
  Mgr m = { d, NULL };
  Param p[5];
  memset(p, 0, sizeof p);
  p[0].type = P_UUID; p[0].key = "uuid"; memset(p[0].value.uuid, 0xab, 16);
  p[1].type = P_STRING; p[1].key = "name"; p[1].value.str = argv[3];
  p[2].type = P_INT; p[2].key = "pid"; p[2].value.iv = getpid();
  p[3].type = P_UINT; p[3].key = "id"; p[3].value.ui = 1;
  p[4].type = P_CSTRING; p[4].key = "uri"; p[4].value.cstr = "qemu:///system";
  if (d->newmgr(&m, 0, 5, p, 0) < 0) { printf("ERR new %s\n", msg()); return 1; }
  int n = 0;
  for (int i = 5; i + 3 < argc; i += 4) {
    Param r[3];
    memset(r, 0, sizeof r);
    r[0].type = P_STRING; r[0].key = "path"; r[0].value.str = argv[i + 2];
    r[1].type = P_STRING; r[1].key = "lockspace"; r[1].value.str = argv[i];
    r[2].type = P_ULONG; r[2].key = "offset"; r[2].value.ul = strtoull(argv[i + 3], NULL, 10);
    if (d->add(&m, RES_LEASE, argv[i + 1], 3, r, 0) < 0) { printf("ERR add #%d %s\n", n + 1, msg()); return 1; }
    n++;
  }
  printf("READY pid %d leases %d\n", (int)getpid(), n);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    char *state = NULL;
    if (!strncmp(line, "acquire", 7)) {
      int fd = -1;
      if (d->acquire(&m, NULL, 0, atoi(argv[4]), &fd) < 0) printf("ERR acquire %s\n", msg());
      else printf("ACQUIRED fd %d\n", fd);
    } else if (!strncmp(line, "inquire", 7)) {
      if (d->inquire(&m, &state, 0) < 0) printf("ERR inquire %s\n", msg());
      else printf("STATE %s\n", state ? state : "(null)");
    } else if (!strncmp(line, "release", 7)) {
      if (d->release(&m, &state, 0) < 0) printf("ERR release %s\n", msg());
      else printf("RELEASED %s\n", state ? state : "(null)");
    } else if (!strncmp(line, "exit", 4)) {
      break;
    }
    free(state);
  }
  d->freemgr(&m);
  d->deinit();
  return 0;
}
`;

let harnessPath: string | undefined;
function harness(): string {
  if (harnessPath) return harnessPath;
  const dir = mkdtempSync(join(tmpdir(), 'slk-libvirt-harness-'));
  writeFileSync(join(dir, 'harness.c'), HARNESS_C);
  const out = join(dir, 'harness');
  execFileSync('gcc', ['-Wall', '-Werror', '-o', out, join(dir, 'harness.c'), '-ldl']);
  harnessPath = out;
  return out;
}

/** One harness process = one "qemu" process of a domain, driven line by line. */
class Vm {
  readonly proc: ChildProcess;
  private buf = '';
  private waiters: ((l: string) => void)[] = [];
  private lines: string[] = [];
  constructor(env: NodeJS.ProcessEnv, args: string[]) {
    this.proc = spawn(harness(), [PLUGIN!, '/nonexistent/qemu-sanlock.conf', ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const l = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        const w = this.waiters.shift();
        if (w) w(l);
        else this.lines.push(l);
      }
    });
  }
  line(ms = 20_000): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('harness did not answer')), ms);
      this.waiters.push((x) => {
        clearTimeout(t);
        res(x);
      });
    });
  }
  async cmd(c: string): Promise<string> {
    this.proc.stdin!.write(`${c}\n`);
    return this.line();
  }
  async exit(): Promise<number | null> {
    if (this.proc.exitCode !== null) return this.proc.exitCode;
    const done = new Promise<number | null>((r) => this.proc.once('exit', (code) => r(code)));
    this.proc.stdin!.write('exit\n');
    return done;
  }
  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

interface Site {
  dir: string;
  env: NodeJS.ProcessEnv;
  ids: string;
  leases: string;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function cli(site: Site, args: string[]): string {
  return execFileSync(process.execPath, [BIN, ...args], { env: site.env, encoding: 'utf8', timeout: 60_000 });
}

/** Storage formatting is not under test: the real binary does it when installed, ours otherwise. */
function directInit(site: Site, args: string[]): void {
  if (haveRealSanlock()) execFileSync(SANLOCK_BIN, ['direct', 'init', ...args], { stdio: 'ignore', timeout: 30_000 });
  else cli(site, ['direct', 'init', ...args]);
}

function held(site: Site): { res: Map<string, number>; owners: Map<number, string> } {
  const res = new Map<string, number>();
  const owners = new Map<number, string>();
  for (const line of cli(site, ['client', 'status']).split('\n')) {
    const m = /^r ([^:]+):([^:]+):.* p (\d+)$/.exec(line);
    if (m) res.set(`${m[1]}:${m[2]}`, Number(m[3]));
    const p = /^p (\d+) ?(.*)$/.exec(line);
    if (p) owners.set(Number(p[1]), p[2]!);
  }
  return { res, owners };
}

function diskTimestamp(site: Site, k: number): { owner: number; timestamp: number } {
  const fd = openSync(site.leases, 'r');
  try {
    const b = Buffer.alloc(512);
    readSync(fd, b, 0, 512, k * MIB);
    const l = decodeLeader(b);
    return { owner: l.ownerId, timestamp: l.timestamp };
  } finally {
    closeSync(fd);
  }
}

/** Harness arguments for the <lease>s of a domain XML, through our parser. */
function leaseArgs(site: Site, leases: { ls?: string; key: string; k: number }[]): { name: string; args: string[] } {
  const xml = `<domain type='kvm'><name>vm-plugin</name><devices>${leases
    .map((l) => `<lease><lockspace>${l.ls ?? 'LS'}</lockspace><key>${l.key}</key><target path='${site.leases}' offset='${l.k * MIB}'/></lease>`)
    .join('')}</devices></domain>`;
  const d = parseDomainLeases(xml);
  return { name: d.domainName!, args: d.leases.flatMap((l) => [l.lockspace, l.key, l.path, String(l.offset)]) };
}

function pluginScenarios(name: string, start: (runDir: string) => Promise<{ env: NodeJS.ProcessEnv; stop(): Promise<void> }>, skipIt: boolean | string) {
  describe(`libvirt sanlock plugin against ${name}`, { skip: skipIt }, () => {
    let site: Site;
    let daemon: { stop(): Promise<void> } | undefined;
    const vms: Vm[] = [];
    const vm = (args: string[]) => {
      const v = new Vm(site.env, args);
      vms.push(v);
      return v;
    };

    before(async () => {
      const dir = scratchDir(`libvirt-plugin-${name.replace(/\W+/g, '-')}`);
      site = { dir, env: {}, ids: join(dir, 'ids'), leases: join(dir, 'leases') };
      writeFileSync(site.ids, '');
      writeFileSync(site.leases, '');
      truncateSync(site.ids, MIB);
      truncateSync(site.leases, 12 * MIB);
      const d = await start(join(dir, 'run'));
      daemon = d;
      site.env = d.env;
      directInit(site, ['-s', `LS:0:${site.ids}:0`, '-o', '1']);
      for (let k = 1; k <= 9; k++) directInit(site, ['-r', `LS:R${k}:${site.leases}:${k * MIB}`]);
      assert.equal(cli(site, ['client', 'add_lockspace', '-s', `LS:1:${site.ids}:0`, '-o', '1']), 'add_lockspace_timeout 1\nadd_lockspace_timeout done 0\n');
    });
    after(async () => {
      for (const v of vms) v.kill();
      await daemon?.stop();
      rmSync(site.dir, { recursive: true, force: true });
    });

    test('domain start: the plugin registers the qemu pid, acquires the leases with the domain name as owner; drvRelease frees them', async () => {
      const { name: dom, args } = leaseArgs(site, [
        { key: 'R1', k: 1 },
        { key: 'R2', k: 2 },
      ]);
      const v = vm([dom, '0', ...args]);
      assert.equal(await v.line(), 'DRIVER version 1000000 flags 1');
      assert.equal(await v.line(), `READY pid ${v.proc.pid} leases 2`);
      assert.match(await v.cmd('acquire'), /^ACQUIRED fd \d+$/);
      const st = held(site);
      assert.equal(st.res.get('LS:R1'), v.proc.pid);
      assert.equal(st.res.get('LS:R2'), v.proc.pid);
      assert.equal(st.owners.get(v.proc.pid!), 'vm-plugin');
      const path = esc(site.leases);
      assert.match(await v.cmd('inquire'), new RegExp(`^STATE LS:R1:${path}:${MIB}:\\d+ LS:R2:${path}:${2 * MIB}:\\d+$`));
      assert.equal(diskTimestamp(site, 1).owner, 1);
      assert.notEqual(diskTimestamp(site, 2).timestamp, 0);
      // drvRelease: sanlock_inquire + sanlock_release(-1, pid, SANLK_REL_ALL) on fresh connections
      assert.match(await v.cmd('release'), new RegExp(`^RELEASED LS:R1:${path}:${MIB}:\\d+ LS:R2:${path}:${2 * MIB}:\\d+$`));
      assert.equal(held(site).res.size, 0);
      assert.equal(diskTimestamp(site, 1).timestamp, 0);
      assert.equal(diskTimestamp(site, 2).timestamp, 0);
      // still registered (qemu keeps the fd), nothing held
      assert.equal(await v.cmd('inquire'), 'STATE (null)');
      assert.equal(await v.exit(), 0);
      await waitFor(() => !held(site).owners.has(v.proc.pid!), 10_000, 'client gone');
    });

    test('qemu dies: the daemon releases its leases (the registered fd closed); failure action poweroff registers a killpath', async () => {
      const { name: dom, args } = leaseArgs(site, [{ key: 'R3', k: 3 }]);
      // action 1 = VIR_DOMAIN_LOCK_FAILURE_POWEROFF: KILLPATH libvirt_sanlock_helper on the socket
      const v = vm([dom, '1', ...args]);
      await v.line();
      await v.line();
      assert.match(await v.cmd('acquire'), /^ACQUIRED fd \d+$/);
      assert.equal(held(site).res.get('LS:R3'), v.proc.pid);
      v.kill();
      await waitFor(() => !held(site).res.has('LS:R3'), 15_000, 'R3 released after the kill');
      await waitFor(() => diskTimestamp(site, 3).timestamp === 0, 15_000, 'R3 free on disk');
    });

    test('a lease in a lockspace not joined: "Failed to acquire lock: No space left on device" (-ENOSPC), nothing held', async () => {
      const { name: dom, args } = leaseArgs(site, [
        { key: 'R4', k: 4 },
        { ls: 'NOPE', key: 'R5', k: 5 },
      ]);
      const v = vm([dom, '0', ...args]);
      await v.line();
      await v.line();
      assert.equal(await v.cmd('acquire'), 'ERR acquire Failed to acquire lock: No space left on device');
      assert.equal(held(site).res.size, 0);
      assert.equal(diskTimestamp(site, 4).timestamp, 0);
      assert.equal(await v.exit(), 0);
    });

    test('the plugin takes at most 8 leases per domain (our --domain-xml batches past that)', async () => {
      const { name: dom, args } = leaseArgs(
        site,
        Array.from({ length: 9 }, (_, i) => ({ key: `R${i + 1}`, k: i + 1 })),
      );
      const v = vm([dom, '0', ...args]);
      await v.line();
      assert.equal(await v.line(), 'ERR add #9 internal error: Too many resources 8 for object');
      await new Promise((r) => v.proc.once('exit', r));
      assert.equal(v.proc.exitCode, 1);
    });
  });
}

pluginScenarios('our daemon', (runDir) => startOurDaemon(runDir), skip);
pluginScenarios(
  'the real sanlock daemon',
  (runDir) => startRealDaemon(runDir),
  skip || (haveRealSanlock() ? false : 'the real sanlock daemon is not installed'),
);
