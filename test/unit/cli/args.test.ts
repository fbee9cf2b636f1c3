import { parseRunArgs } from '../../../src/cli/args';

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
