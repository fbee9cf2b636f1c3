#!/usr/bin/env node
/**
 * `spanbridge` command line: `run` (trace), `doctor` (what this kernel allows), `--version`.
 * Logs go to stderr; stdout carries only what was asked for (--print-spans, doctor output).
 */
import { readFileSync } from 'node:fs';
import { SpanbridgeError, errorCode, errorMessage } from '../errors';
import { createLogger } from '../log';
import { AGENT_VERSION } from '../version';
import { startRun } from '../wiring';
import { describeConfig, parseRunArgs, RUN_USAGE } from './args';
import { TREE_USAGE, treesFromJsonLines } from './tree-command';
import { formatDoctorReport, runDoctor } from './doctor';
import { loadConfig, toRoutesSettings } from '../config/load';

const USAGE = `Usage: spanbridge <command> [options]

Turns eBPF observations of unmodified services into OpenTelemetry traces for a Collector.

Commands:
  run       trace selected processes and export spans (spanbridge run --help)
  doctor    what this kernel and these privileges allow, and the strategy each feature
            will use here [--json] (spanbridge doctor --help)
  tree      print spans recorded with --print-spans json as trees [FILE]
  help CMD  help for a command

Options:
  --version   print the version
  -h, --help  this help

Quick look: spanbridge run --exe my-service --print-spans tree --export none
Configuration (YAML file, environment, flags): docs/configuration.md
`;

async function run(argv: string[]): Promise<number> {
  const opts = parseRunArgs(argv);
  if (opts === 'help') {
    process.stdout.write(RUN_USAGE);
    return 0;
  }
  if (opts.printConfig) {
    process.stdout.write(describeConfig(opts));
    return 0;
  }
  const log = createLogger(opts.logLevel);
  // Every file the agent creates (ready file, bpffs pins, mount points) is root-only.
  process.umask(0o077);
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // A closed pipe on stdout (e.g. `| head`) must not crash the agent.
    if (err.code !== 'EPIPE') log.warn(`stdout: ${err.message}`);
  });
  const running = await startRun(opts, log);
  log.info(`spanbridge ${AGENT_VERSION} running (pid ${process.pid}); Ctrl-C to stop`);
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn(`${signal} again: exiting without waiting`);
        process.exit(1);
      }
      stopping = true;
      log.info(`${signal}: detaching and flushing`);
      // Detaching waits for kernel RCU grace periods per probe, seconds for a few dozen probes (a
      // SIGKILLed agent takes as long to be reaped): give an orderly stop ample time.
      const deadline = setTimeout(() => {
        log.warn('shutdown took longer than 30 s; exiting');
        resolve(1);
      }, 30_000);
      // Not unref'd: the deadline also keeps the event loop alive while stop() waits on work that
      // does not (koffi calls on worker threads), or Node would exit 0 mid-stop, unflushed.
      running
        .stop()
        .then(({ exported, dropped }) => {
          clearTimeout(deadline);
          log.info(`stopped: ${exported} spans exported, ${dropped} dropped`);
          resolve(0);
        })
        .catch((err) => {
          clearTimeout(deadline);
          log.error(`stop: ${errorMessage(err)}`);
          resolve(1);
        });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

export const DOCTOR_USAGE = `Usage: spanbridge doctor [--json] [--config FILE]

Prints what this kernel and these privileges allow (kernel, lockdown, BTF, uprobes, kprobes,
syscall tracepoints, sk_msg/sock_ops, cgroup v2, bpf_probe_write_user, privileges) and which
strategy each feature will use here and why: the same plan \`spanbridge run\` logs at start-up.
Program types and helpers are decided by loading tiny programs (libbpf feature probes).
Mounts bpffs, tracefs and securityfs if they are not mounted, as \`run\` would.
Also says how traced processes' server spans get their route (http.route): Go's ServeMux
pattern, declared patterns (routes.patterns, per selection), or the unmatched mode, as
configured by FILE (default $SPANBRIDGE_CONFIG) and the environment.

Options:
  --json         the report as JSON
  --config FILE  the configuration \`run\` would use (for the routes section)
  -h, --help     this help
`;

function doctor(argv: string[]): number {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(DOCTOR_USAGE);
    return 0;
  }
  const args = [...argv];
  const at = args.indexOf('--config');
  let file: string | undefined;
  if (at >= 0) {
    file = args[at + 1];
    if (file === undefined || file.startsWith('-')) throw new SpanbridgeError('ERR_CONFIG', `doctor: --config needs a FILE\n\n${DOCTOR_USAGE}`);
    args.splice(at, 2);
  }
  const unknown = args.filter((a) => a !== '--json');
  if (unknown.length > 0) throw new SpanbridgeError('ERR_CONFIG', `doctor: unknown option '${unknown[0]}'\n\n${DOCTOR_USAGE}`);
  const config = loadConfig({ flags: file !== undefined ? { config: file } : {}, env: process.env });
  const goServerPath = config.values['go.server_path'] as 'syscall' | 'uprobes' | undefined;
  const goClientPath = config.values['go.client_path'] as 'syscall' | 'uprobes' | undefined;
  const report = runDoctor({ injectHeaders: 'auto', ...(goServerPath ? { goServerPath } : {}), ...(goClientPath ? { goClientPath } : {}) }, toRoutesSettings(config));
  process.stdout.write(argv.includes('--json') ? `${JSON.stringify(report, null, 2)}\n` : formatDoctorReport(report));
  return 0;
}

function tree(argv: string[]): number {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(TREE_USAGE);
    return 0;
  }
  if (argv.length > 1 || argv[0]?.startsWith('-')) throw new SpanbridgeError('ERR_CONFIG', `tree: expected at most one FILE\n\n${TREE_USAGE}`);
  let input: string;
  try {
    input = readFileSync(argv[0] ?? 0, 'utf8');
  } catch (err) {
    throw new SpanbridgeError('ERR_CONFIG', `tree: cannot read ${argv[0] ?? 'stdin'}: ${errorMessage(err)}`);
  }
  const r = treesFromJsonLines(input, process.stdout.isTTY === true);
  process.stdout.write(r.text);
  if (r.skipped > 0) process.stderr.write(`spanbridge tree: skipped ${r.skipped} lines that are not spans\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return run(rest);
    case 'doctor':
      return doctor(rest);
    case 'tree':
      return tree(rest);
    case 'help':
      if (rest[0] === 'run') return run(['--help']);
      if (rest[0] === 'doctor') return doctor(['--help']);
      if (rest[0] === 'tree') return tree(['--help']);
      process.stdout.write(USAGE);
      return rest.length === 0 ? 0 : 2;
    case '--version':
      process.stdout.write(`${AGENT_VERSION}\n`);
      return 0;
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`spanbridge: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      const code = errorCode(err) ?? 'ERR_UNEXPECTED';
      process.stderr.write(`spanbridge: ${errorMessage(err)} [${code}]\n`);
      process.exit(code === 'ERR_CONFIG' ? 2 : 1);
    },
  );
}
