// Child process for device-mode tests: runs our DeviceWatchdog inside a process that has the
// fake-watchdog shim preloaded (the test's own process does not). Commands arrive as JSON lines
// on stdin, one JSON reply line each on stdout:
//   {"op":"arm","spaceName":..,"hostId":..,"ioTimeout":..,"renewalTs"?:..}  (ts default: now)
//   {"op":"refresh","renewalTs"?:..} | {"op":"disarm"} | {"op":"close"} | {"op":"state"} | {"op":"exit"}
import { createInterface } from 'node:readline';
import { DeviceWatchdog } from '../../../src/daemon/watchdog/device.js';
import { monotonicSecondsExact } from '../../../src/daemon/watchdog/common.js';

const devicePath = process.argv[2]!;
const intervalMs = Number(process.argv[3] ?? 1000);
const wd = new DeviceWatchdog({
  devicePath,
  keepaliveIntervalMs: intervalMs,
  log: { error: (m) => process.stderr.write(`error: ${m}\n`), warn: (m) => process.stderr.write(`warn: ${m}\n`) },
});
// The hub's timer is unref'd, as in the daemon; this keeps the child alive between commands.
const keep = setInterval(() => {}, 1 << 30);

const nowTs = (): number => Math.floor(monotonicSecondsExact());

const rl = createInterface({ input: process.stdin });
// The parent gone (stdin closed) means the test is over, whatever state it left us in.
rl.on('close', () => process.exit(0));
rl.on('line', (line) => {
  void (async () => {
    const cmd = JSON.parse(line) as Record<string, unknown>;
    let reply: Record<string, unknown> = { ok: true };
    try {
      switch (cmd.op) {
        case 'arm':
          await wd.arm({
            spaceName: String(cmd.spaceName),
            hostId: Number(cmd.hostId),
            ioTimeout: Number(cmd.ioTimeout),
            renewalTs: Number(cmd.renewalTs ?? nowTs()),
          });
          reply.expire = wd.expireTs;
          break;
        case 'refresh':
          reply.rv = await wd.refresh(Number(cmd.renewalTs ?? nowTs()));
          reply.expire = wd.expireTs;
          break;
        case 'disarm':
          reply.rv = await wd.disarm();
          break;
        case 'close':
          await wd.close();
          break;
        case 'state':
          reply = { ok: true, open: wd.hub.isOpen, keepalives: wd.hub.keepalives, skipped: wd.hub.skipped, expire: wd.expireTs };
          break;
        case 'exit':
          clearInterval(keep);
          // stdin stays open in the parent: leave explicitly once the reply is out.
          process.stdout.write(`${JSON.stringify(reply)}\n`, () => process.exit(0));
          return;
        default:
          reply = { ok: false, error: `unknown op ${String(cmd.op)}` };
      }
    } catch (err) {
      reply = { ok: false, code: (err as { code?: number }).code, error: (err as Error).message };
    }
    process.stdout.write(`${JSON.stringify(reply)}\n`);
  })();
});
