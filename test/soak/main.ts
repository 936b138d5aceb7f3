// `npm run soak -- [--minutes N] [--seed S] [--config ours|mixed|both] [--hosts N]`: the
// devcount-style mutual exclusion soak (see soak.ts). Exits 1 on any violation.
import { formatStats, runSoak, type SoakConfig } from './soak.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const minutes = Number(arg('minutes') ?? 10);
const seed = Number(arg('seed') ?? Date.now() % 1_000_000);
const which = arg('config') ?? 'both';
const hosts = arg('hosts') !== undefined ? Number(arg('hosts')) : undefined;
if (!(minutes > 0) || !Number.isInteger(seed) || !['ours', 'mixed', 'both'].includes(which)) {
  console.error('usage: soak [--minutes N] [--seed S] [--config ours|mixed|both] [--hosts N]');
  process.exit(2);
}
const configs: SoakConfig[] = which === 'both' ? ['ours', 'mixed'] : [which as SoakConfig];
let bad = 0;
for (const config of configs) {
  const stamp = (): string => new Date().toISOString().slice(11, 19);
  const s = await runSoak({ minutes, seed, config, hosts, log: (l) => console.error(`${stamp()} ${l}`) });
  console.log(formatStats(s));
  console.log(`reproduce: npm run soak -- --minutes ${minutes} --seed ${seed} --config ${config}${hosts ? ` --hosts ${hosts}` : ''}`);
  console.log('');
  bad += s.violations.length;
}
process.exit(bad > 0 ? 1 : 0);
