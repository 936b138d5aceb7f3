// CLI: npm run sim -- --seeds 1000 --hosts 8   |   npm run sim -- --seed 42 --trace
import { defaultWorldConfig, formatFailure, runWorld } from './world.js';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const get = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const seed = get('--seed');
  const hosts = Number(get('--hosts') ?? 4);
  const cfg = (s: number) => defaultWorldConfig(s, { machines: hosts, fullTrace: args.includes('--trace'), ioTrace: args.includes('--io'), engine: (get('--engine') ?? 'real') as 'real' | 'model', shared: !args.includes('--no-sh') });
  if (seed !== undefined) {
    const r = await runWorld(cfg(Number(seed)));
    if (args.includes('--trace')) process.stdout.write(r.trace.join('\n') + '\n');
    if (!r.ok) process.stdout.write(formatFailure(r, `--seed ${seed} --hosts ${hosts} --trace`) + '\n');
    process.stdout.write(`seed ${seed}: ${r.ok ? 'ok' : 'FAILED'} ${JSON.stringify(r.stats)}\n`);
    return r.ok ? 0 : 1;
  }
  return 0;
}

process.exitCode = await main();
