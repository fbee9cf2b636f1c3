import { parseRunArgs } from '../../../src/cli/args';
import { redactQuery } from '../../../src/spans/url-redaction';

describe('spanbridge run arguments', () => {
  it('parses selectors and options', () => {
    const o = parseRunArgs(['--pid', '7', '--pid', '8', '--exe', '*/api', '--open-port', '8080', '--print-spans', 'json', '--inject-headers', 'off', '--ready-file', '/tmp/r'], {});
    expect(o).toMatchObject({
      selection: { pids: [7, 8], exeGlobs: ['*/api'], openPorts: [8080] },
      printSpans: 'json',
      injectHeaders: 'off',
      readyFile: '/tmp/r',
      export: 'otlp',
      logLevel: 'info',
    });
  });

  it('redaction: default keys, added or replaced from YAML, environment and flag; query all', () => {
    const q = 'sig=1&session=2&x=3';
    const run = (argv: string[], env: NodeJS.ProcessEnv = {}, yaml?: string) => {
      const o = parseRunArgs(['--pid', '1', ...(yaml ? ['--config', 'f.yaml'] : []), ...argv], env, () => yaml ?? '');
      if (o === 'help') throw new Error('help');
      return o;
    };
    const d = run([]);
    expect(redactQuery(q, d.urlRedaction)).toBe('sig=REDACTED&session=2&x=3');
    expect(d.redactionReplacesDefaults).toBe(false);
    const added = run([], {}, 'redaction:\n  query_keys: [default, Session]\n');
    expect(redactQuery(q, added.urlRedaction)).toBe('sig=REDACTED&session=REDACTED&x=3');
    const replaced = run([], { SPANBRIDGE_REDACTION_QUERY_KEYS: 'session, x' }, 'redaction:\n  query_keys: [default]\n');
    expect(redactQuery(q, replaced.urlRedaction)).toBe('sig=1&session=REDACTED&x=REDACTED');
    expect(replaced.redactionReplacesDefaults).toBe(true);
    const flag = run(['--redaction-query-keys', 'default,x', '--redaction-query', 'all'], { SPANBRIDGE_REDACTION_QUERY_KEYS: 'session' });
    expect(redactQuery('a=1&b', flag.urlRedaction)).toBe('a=REDACTED&b');
    expect(() => run(['--redaction-query-keys', 'a=b'])).toThrow(/--redaction-query-keys: 'a=b' is not a list of query keys/);
    expect(() => run(['--redaction-query', 'some'])).toThrow(/--redaction-query: 'some' is not one of keys, all/);
    expect(() => run([], {}, 'redaction:\n  query_keys: []\n')).toThrow(/redaction.query_keys/);
  });

  it('web.host defaults to loopback', () => {
    expect(parseRunArgs(['--pid', '1'], {})).toMatchObject({ webHost: '127.0.0.1' });
    expect(parseRunArgs(['--pid', '1', '--web-host', '0.0.0.0'], {})).toMatchObject({ webHost: '0.0.0.0' });
  });

  it('defaults', () => {
    expect(parseRunArgs(['--pid', '1'], {})).toMatchObject({ printSpans: 'none', injectHeaders: 'auto', export: 'otlp' });
  });

  it.each([
    [['--pid', 'abc'], /--pid: 'abc' is not an integer/],
    [['--open-port', '70000'], /--open-port: '70000' is not an integer in 1..65535/],
    [['--pid', '1', '--inject-headers', 'maybe'], /--inject-headers: 'maybe' is not one of auto, on, off/],
    [['--pid', '1', '--print-spans', 'xml'], /--print-spans: 'xml' is not one of none, json/],
    [['--pid', '1', '--otlp-endpoint', 'ftp://x'], /--otlp-endpoint: 'ftp:\/\/x' is not an http\(s\) URL/],
    [['--pid', '1', '--log-level', 'loud'], /--log-level: 'loud'/],
    [[], /no process selected/],
    [['--bogus'], /Unknown option '--bogus'/],
  ])('rejects %p with a message naming the option', (argv, msg) => {
    expect(() => parseRunArgs(argv, {})).toThrow(msg);
    try {
      parseRunArgs(argv, {});
    } catch (err) {
      expect((err as { code: string }).code).toBe('ERR_CONFIG');
    }
  });

  it('takes the log level from SPANBRIDGE_LOG_LEVEL, the flag winning', () => {
    expect(parseRunArgs(['--pid', '1'], { SPANBRIDGE_LOG_LEVEL: 'debug' })).toMatchObject({ logLevel: 'debug' });
    expect(parseRunArgs(['--pid', '1', '--log-level', 'warn'], { SPANBRIDGE_LOG_LEVEL: 'debug' })).toMatchObject({ logLevel: 'warn' });
  });
});
