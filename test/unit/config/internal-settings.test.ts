/**
 * The internal settings (the syscall tracer's limits, the ring-buffer wait mode, libbpf debug
 * output, the proc root) go through the settings table like every other: environment or YAML,
 * validated once, handed to the parts that use them (none reads the environment itself).
 */
import type { RunOptions } from '../../../src/cli/args';
import { configErr, runOptions } from '../../helpers/run-options';

function run(env: NodeJS.ProcessEnv, yaml?: string): RunOptions {
  return yaml === undefined ? runOptions(['--pid', '1'], env) : runOptions(['--pid', '1', '--config', '/c.yaml'], env, { '/c.yaml': yaml });
}

describe('internal settings in the settings table', () => {
  it('defaults: nothing set, the parts keep their own defaults', () => {
    const o = run({});
    expect(o.sysHttp).toEqual({});
    expect(o.ringWait).toBeUndefined();
    expect(o.libbpfDebug).toBe(false);
    expect(o.procRoot).toBeUndefined();
  });

  it('from the environment', () => {
    const o = run({
      SPANBRIDGE_SYS_HTTP_MAX_CONNECTIONS: '8',
      SPANBRIDGE_SYS_HTTP_CORRELATION_WINDOW_MS: '2500',
      SPANBRIDGE_SYS_HTTP_THREAD_CONTEXT_MAX_AGE_MS: '30000',
      SPANBRIDGE_RING_WAIT: 'worker',
      SPANBRIDGE_LIBBPF_DEBUG: '1',
      SPANBRIDGE_PROC_ROOT: '/tmp/fake-proc',
    });
    expect(o.sysHttp).toEqual({ maxConnections: 8, correlationWindowMs: 2500, threadContextMaxAgeMs: 30000 });
    expect(o.ringWait).toBe('worker');
    expect(o.libbpfDebug).toBe(true);
    expect(o.procRoot).toBe('/tmp/fake-proc');
  });

  it('from YAML, the environment winning', () => {
    const yaml = 'sys_http:\n  max_connections: 100\nring_buffer:\n  wait: worker\ndebug:\n  libbpf: true\n';
    expect(run({}, yaml)).toMatchObject({ sysHttp: { maxConnections: 100 }, ringWait: 'worker', libbpfDebug: true });
    expect(run({ SPANBRIDGE_SYS_HTTP_MAX_CONNECTIONS: '7', SPANBRIDGE_LIBBPF_DEBUG: '0' }, yaml)).toMatchObject({
      sysHttp: { maxConnections: 7 },
      libbpfDebug: false,
    });
  });

  it('a bad value is a configuration error naming the variable and the allowed values', () => {
    expect(configErr(() => run({ SPANBRIDGE_SYS_HTTP_CORRELATION_WINDOW_MS: 'x' }))).toBe(
      "SPANBRIDGE_SYS_HTTP_CORRELATION_WINDOW_MS: 'x' is not an integer 1..3600000 (milliseconds)",
    );
    expect(configErr(() => run({ SPANBRIDGE_SYS_HTTP_MAX_CONNECTIONS: '70000' }))).toMatch(/is not an integer 1\.\.65536/);
    expect(configErr(() => run({ SPANBRIDGE_RING_WAIT: 'spin' }))).toBe("SPANBRIDGE_RING_WAIT: 'spin' is not one of uv-poll, worker");
  });
});
