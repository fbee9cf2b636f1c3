/**
 * bin/spanbridge: the agent under a bounded V8 heap, in the launcher's own process (exec, so the
 * pid a supervisor or the bench watches is the agent's).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LAUNCHER = join(__dirname, '../../bin/spanbridge');

describe('bin/spanbridge', () => {
  it('runs the agent with the heap bounds, WebAssembly on the baseline compiler, one V8 worker and two malloc arenas, in its own process, extra flags appended', () => {
    const probe = join(mkdtempSync(join(tmpdir(), 'spanbridge-launcher-')), 'probe.js');
    writeFileSync(
      probe,
      `process.stderr.write('PROBE ' + JSON.stringify({ limit: require('v8').getHeapStatistics().heap_size_limit, execArgv: process.execArgv, ppid: process.ppid, arenas: process.env.MALLOC_ARENA_MAX }) + '\\n');`,
    );
    const env: NodeJS.ProcessEnv = { ...process.env, SPANBRIDGE_NODE_FLAGS: `--require ${probe}` };
    delete env.MALLOC_ARENA_MAX;
    const r = spawnSync('sh', ['-c', `"${LAUNCHER}" --version; echo "SHELL $$"`], {
      env,
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+/);
    const seen = JSON.parse(/PROBE (.*)/.exec(r.stderr)![1]) as { limit: number; execArgv: string[]; ppid: number; arenas?: string };
    expect(seen.arenas).toBe('2');
    expect(seen.execArgv.slice(0, 4)).toEqual(['--max-semi-space-size=4', '--max-old-space-size=256', '--liftoff-only', '--v8-pool-size=1']);
    expect(seen.execArgv).toContain('--require');
    // V8's limit: the old space bound plus the young generation; far below Node's default (~2-4 GB).
    expect(seen.limit).toBeLessThan(300 * 1024 * 1024);
    // exec: node's parent is the shell that ran the launcher, not a shell the launcher started.
    expect(seen.ppid).toBe(Number(/SHELL (\d+)/.exec(r.stdout)![1]));
  });
});
