/**
 * The built CLI's configuration surface as a user meets it: help texts, --print-config with a
 * YAML file, environment and flags merged in order, and errors that name the bad key (exit 2).
 * No privileges needed: nothing is loaded into the kernel.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AGENT_CLI } from './helpers/processes';

function cli(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [AGENT_CLI, ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('spanbridge configuration (built CLI)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spanbridge-config-'));
  const file = path.join(dir, 'spanbridge.yaml');
  writeFileSync(
    file,
    ['selections:', "  - exe: 'api'", '    service_name: checkout', '  - open_port: 8080', 'log_level: debug', 'print_spans: tree', 'otlp:', '  protocol: grpc', '  headers: {authorization: Bearer cfg-secret-token}', 'redaction:', '  query_keys: [default, x-api-key]', ''].join('\n'),
  );

  it('help: top level, per command, and `help CMD`', () => {
    const top = cli(['--help']);
    expect(top.status).toBe(0);
    expect(top.stdout).toMatch(/Commands:\n {2}run .*\n {2}doctor /);
    expect(cli(['run', '--help']).stdout).toMatch(/--config FILE[\s\S]*--print-spans none\|json\|tree[\s\S]*--web-port P\|off/);
    expect(cli(['help', 'doctor']).stdout).toMatch(/^Usage: spanbridge doctor \[--json\]/);
    expect(cli([]).status).toBe(2);
  });

  it('--print-config: defaults < YAML < environment < flags, each value with its source', () => {
    const r = cli(['run', '--config', file, '--print-config', '--otlp-protocol', 'http/json'], { SPANBRIDGE_LOG_LEVEL: 'warn' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^ {2}- \{exe: 'api', service_name: checkout\}$/m);
    expect(r.stdout).toMatch(/^ {2}- \{open_port: 8080\}$/m);
    expect(r.stdout).toMatch(/^log_level: "warn" {2}# env$/m);
    expect(r.stdout).toMatch(/^print_spans: "tree" {2}# yaml$/m);
    expect(r.stdout).toMatch(/^otlp\.protocol: "http\/json" {2}# flag$/m);
    expect(r.stdout).toMatch(/^inject_headers: auto {2}# default$/m);
    expect(r.stdout).toMatch(/^redaction\.query_keys: \["default","x-api-key"\] {2}# yaml$/m);
    expect(r.stdout).toMatch(/^redaction\.query: keys {2}# default$/m);
    // The Collector credential is set, and never printed.
    expect(r.stdout).toMatch(/^otlp\.headers: \{"authorization":"REDACTED"\} {2}# yaml$/m);
    expect(r.stdout + r.stderr).not.toContain('cfg-secret-token');
  });

  it('errors name the key and the allowed values, exit status 2', () => {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'selections: [{exe: api}]\nweb:\n  prot: 8411\n');
    const r = cli(['run', '--config', bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`spanbridge: ${bad}: unknown key 'web.prot' (known keys under web: port, host) [ERR_CONFIG]\n`);
    const e = cli(['run', '--config', file], { SPANBRIDGE_PRINT_SPANS: 'yaml' });
    expect(e.status).toBe(2);
    expect(e.stderr).toMatch(/SPANBRIDGE_PRINT_SPANS: 'yaml' is not one of none, json, tree \[ERR_CONFIG\]/);
    const n = cli(['run']);
    expect(n.stderr).toMatch(/no process selected: give --pid, --exe, --open-port or --container, or selections in a --config file/);
  });
});
