// The usage text of sanlock 3.8.5, verbatim (captured from the real binary; tabs included).
// `help`, `-h`, `--help` and no arguments print it with exit 0; `client`/`direct` without an action
// print it with exit 1.

export const USAGE_TEXT = [
  "Usage:",
  "sanlock <command> <action> ...",
  "",
  "commands:",
  "  daemon        start daemon",
  "  client        send request to daemon (default type if none given)",
  "  direct        access storage directly (no coordination with daemon)",
  "  help          print this usage (defaults in parens)",
  "  version       print version",
  "",
  "sanlock daemon [options]",
  "  -D            no fork and print all logging to stderr",
  "  -Q 0|1        quiet error messages for common lock contention (1)",
  "  -R 0|1        renewal debugging, log debug info about renewals (0)",
  "  -H <num>      renewal history size (180)",
  "  -L <pri>      write logging at priority level and up to logfile (4 LOG_WARNING)",
  "                (use -1 for none)",
  "  -S <pri>      write logging at priority level and up to syslog (3 LOG_ERR)",
  "                (use -1 for none)",
  "  -U <uid>      user id",
  "  -G <gid>      group id",
  "  -t <num>      max worker threads (8)",
  "  -g <sec>      seconds for graceful recovery (40)",
  "  -w 0|1        use watchdog through wdmd (1)",
  "  -h 0|1        use high priority (RR) scheduling (0)",
  "  -l <num>      use mlockall (0 none, 1 current, 2 current and future) (1)",
  "  -b <sec>      seconds a host id bit will remain set in delta lease bitmap",
  "                (default: 6 * io_timeout)",
  "  -e <str>      local host name used in delta leases",
  "                (default: generate new uuid)",
  "",
  "sanlock client <action> [options]",
  "sanlock client status [-D] [-o p|s]",
  "sanlock client gets [-h 0|1]",
  "sanlock client host_status -s LOCKSPACE [-D]",
  "sanlock client renewal -s LOCKSPACE",
  "sanlock client set_event -s LOCKSPACE -i <host_id> [-g gen] -e <event> -d <data>",
  "sanlock client set_config -s LOCKSPACE [-u 0|1] [-O 0|1]",
  "sanlock client log_dump",
  "sanlock client shutdown [-f 0|1] [-w 0|1]",
  "sanlock client init -s LOCKSPACE | -r RESOURCE [-z 0|1] [-Z 512|4096 -A 1M|2M|4M|8M]",
  "sanlock client read -s LOCKSPACE | -r RESOURCE [-D]",
  "sanlock client add_lockspace -s LOCKSPACE",
  "sanlock client inq_lockspace -s LOCKSPACE",
  "sanlock client rem_lockspace -s LOCKSPACE",
  "sanlock client command -r RESOURCE -c <path> <args>",
  "sanlock client acquire -r RESOURCE -p <pid>",
  "sanlock client convert -r RESOURCE -p <pid>",
  "sanlock client release -r RESOURCE -p <pid>",
  "sanlock client inquire -p <pid>",
  "sanlock client request -r RESOURCE -f <force_mode>",
  "sanlock client examine -r RESOURCE | -s LOCKSPACE",
  "sanlock client format -x RINDEX [-Z 512|4096 -A 1M|2M|4M|8M]",
  "sanlock client create -x RINDEX -e <resource_name>",
  "sanlock client delete -x RINDEX -e <resource_name>[:<offset>]",
  "sanlock client lookup -x RINDEX [-e <resource_name>:<offset>]",
  "sanlock client update -x RINDEX -e <resource_name>[:<offset>] [-z 0|1]",
  "sanlock client rebuild -x RINDEX",
  "",
  "sanlock direct <action> [-a 0|1] [-o 0|1] [-Z 512|4096 -A 1M|2M|4M|8M]",
  "sanlock direct init -s LOCKSPACE | -r RESOURCE [-Z 512|4096 -A 1M|2M|4M|8M]",
  "sanlock direct read_leader -s LOCKSPACE | -r RESOURCE",
  "sanlock direct dump <path>[:<offset>[:<size>]]",
  "sanlock direct format -x RINDEX [-Z 512|4096 -A 1M|2M|4M|8M]",
  "sanlock direct lookup -x RINDEX [-e <resource_name>:<offset>]",
  "sanlock direct update -x RINDEX -e <resource_name>[:<offset>] [-z 0|1]",
  "sanlock direct rebuild -x RINDEX",
  "",
  "LOCKSPACE = <lockspace_name>:<host_id>:<path>:<offset>",
  "  <lockspace_name>\tname of lockspace",
  "  <host_id>\t\tlocal host identifier in lockspace",
  "  <path>\t\tpath to storage reserved for leases",
  "  <offset>\t\toffset on path (bytes)",
  "",
  "RESOURCE = <lockspace_name>:<resource_name>:<path>:<offset>[:<lver>]",
  "  <lockspace_name>\tname of lockspace",
  "  <resource_name>\tname of resource",
  "  <path>\t\tpath to storage reserved for leases",
  "  <offset>\t\toffset on path (bytes)",
  "  <lver>                optional leader version or SH for shared lease",
  "",
  "RINDEX = <lockspace_name>:<path>:<offset>",
  "  <lockspace_name>\tname of lockspace",
  "  <path>\t\tpath to storage reserved for leases",
  "  <offset>\t\toffset on path (bytes)",
  "",
  "Limits:",
  "valid sector/align size combinations: 512/1M, 4K/1M, 4K/2M, 4K/4M, 4K/8M",
  "maximum host_id for sector/align sizes: 2000, 250, 500, 1000, 2000",
  "maximum name length for lockspaces and resources: 48",
  "maximum path length: 1024",
  "maximum client process connections: 1000",
  "",
].join("\n") + "\n";

/** The version sanlock-ts is compatible with; `sanlock version` prints exactly this. */
export const SANLOCK_VERSION = '3.8.5';
/** Our own package version, shown only by `--version` / `-V`. */
export const SANLOCK_TS_VERSION = '0.1.0';

/**
 * What sanlock-ts adds to sanlock's commands. Never part of USAGE_TEXT: scripts compare that with
 * sanlock's output byte for byte, so `help` prints this part on stderr.
 */
export const EXTENSIONS_USAGE_TEXT = [
  "sanlock-ts extensions (not in sanlock 3.8.5; see sanlock-ts(8)):",
  "",
  "sanlock daemon [options] [--config <path>] [--logfile-path <path>]",
  "               [--debug-log-path <path> [--debug-log-max-bytes <num>] [--debug-log-files <num>]]",
  "               [--metrics [<host>:]<port>]",
  "  --config <path>           read this file instead of /etc/sanlock/sanlock.conf",
  "  --logfile-path <path>     log file (default /var/log/sanlock.log as root,",
  "                            <run dir>/sanlock.log otherwise); SIGHUP reopens it",
  "  --debug-log-path <path>   also write every log_dump line to this file",
  "  --debug-log-max-bytes <num>  rotate the debug log at this size (8388608)",
  "  --debug-log-files <num>   rotated debug logs kept: <path>.1 ... (3)",
  "  --metrics [<host>:]<port> serve metrics and a dashboard over HTTP (a bare port: 127.0.0.1)",
  "  (each has a sanlock.conf key: logfile_path, debug_log_path, ..., metrics; unknown keys and bad",
  "  values in sanlock.conf stop the daemon at start-up)",
  "",
  "sanlock client acquire -r RESOURCE -p <pid> --wait <sec> [--request graceful|force]",
  "  --wait <sec>              retry while the lease is busy, up to <sec> seconds",
  "  --request graceful|force  with --wait: ask the holder to release first",
  "sanlock client add_lockspace -s LOCKSPACE [--progress] [--json]",
  "  --progress                say on stderr what the join waits for (default on a TTY)",
  "  --json                    stdout is one JSON object {result, seconds, lockspace}",
  "sanlock client command -r RESOURCE --domain-xml <file> -c <path> <args>",
  "  --domain-xml <file>       also acquire every <lease> of a libvirt domain XML",
  "sanlock client <action> ... --explain",
  "  --explain                 explain a failing result on stderr (default on a TTY)",
  "",
  "sanlock-ts cluster status -s LOCKSPACE [-r RESOURCE ...] [-x RINDEX] [--json]",
  "                          [--sample <sec>|auto] [--watch <sec> [--count <n>]] [--io-timeout <sec>]",
  "  read a lockspace and its leases directly from storage (no daemon, never writes)",
  "sanlock-ts lease-xml -r RESOURCE [-r ...] [--indent <n>]",
  "  print the libvirt <lease> element for a resource",
  "",
].join("\n") + "\n";

export type Write = (s: string) => void;
const stdoutWrite: Write = (s) => { process.stdout.write(s); };
const stderrWrite: Write = (s) => { process.stderr.write(s); };

/**
 * sanlock's usage on `write` (stdout by default), byte-identical to sanlock 3.8.5's; our
 * extensions go to `writeExtensions`, which defaults to stderr only when printing to stdout.
 */
export function printUsage(write: Write = stdoutWrite, writeExtensions: Write | undefined = write === stdoutWrite ? stderrWrite : undefined): void {
  write(USAGE_TEXT);
  writeExtensions?.(EXTENSIONS_USAGE_TEXT);
}

/** `sanlock version`: the bare version number, as 3.8.5 prints it. */
export function printVersion(write: Write = stdoutWrite): void {
  write(`${SANLOCK_VERSION}\n`);
}

/**
 * `--version` / `-V`: sanlock prints `<argv0> 3.8.5 (built <date> <time>)`; we keep the shape
 * `<argv0> <version> (...)` but name our own build in the parentheses instead of a compile time.
 */
export function printLongVersion(argv0 = 'sanlock-ts', write: Write = stdoutWrite): void {
  write(`${argv0} ${SANLOCK_VERSION} (sanlock-ts ${SANLOCK_TS_VERSION})\n`);
}
