// Top-level command dispatch. Each command family lives in its own module and is loaded only
// when used, so `direct` never pays for the daemon's start-up cost and vice versa.

export type CommandRunner = (args: string[]) => Promise<number>;

const families: Record<string, () => Promise<CommandRunner>> = {
  direct: async () => (await import('./direct.js')).runDirect,
  client: async () => (await import('./client.js')).runClient,
  daemon: async () => (await import('../daemon/main.js')).runDaemon,
  cluster: async () => (await import('./cluster.js')).runCluster,
  'lease-xml': async () => (await import('./lease-xml.js')).runLeaseXml,
  domain: async () => (await import('./domain.js')).runDomain,
};

export async function main(argv: string[]): Promise<number> {
  const [family, ...rest] = argv;
  if (family === undefined || family === 'help' || family === '-h' || family === '--help') {
    const { printUsage } = await import('./usage.js');
    printUsage();
    return 0;
  }
  if (family === 'version') {
    const { printVersion } = await import('./usage.js');
    printVersion();
    return 0;
  }
  if (family === '-V' || family === '--version') {
    const { printLongVersion } = await import('./usage.js');
    printLongVersion('sanlock-ts');
    return 0;
  }
  const load = families[family];
  // sanlock treats `sanlock <action>` as `sanlock client <action>`.
  if (!load) return (await families.client!())(argv);
  const run = await load();
  return run(rest);
}
