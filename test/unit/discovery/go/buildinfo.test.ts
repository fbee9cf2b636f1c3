import { parseModInfo, unquoteGo } from '../../../../src/discovery/go/buildinfo';

describe('module info parsing', () => {
  const text = [
    'path\texample.com/app/cmd/server',
    'mod\texample.com/app\tv1.2.3\th1:abc=',
    'dep\tgolang.org/x/net\tv0.30.0\th1:net=',
    'dep\texample.com/lib\tv0.1.0',
    '=>\t../lib\t(devel)\t',
    'build\t-buildmode=exe',
    'build\t-ldflags="-s -w"',
    'build\t"key with space"="v\\tx"',
    'build\tCGO_ENABLED=0',
    'build\tvcs.revision=0123abcd',
    '',
  ].join('\n');

  test('main module, deps with replacements, build settings (quoted)', () => {
    const m = parseModInfo(text);
    expect(m.path).toBe('example.com/app/cmd/server');
    expect(m.main).toEqual({ path: 'example.com/app', version: 'v1.2.3', sum: 'h1:abc=' });
    expect(m.deps).toEqual([
      { path: 'golang.org/x/net', version: 'v0.30.0', sum: 'h1:net=' },
      { path: 'example.com/lib', version: 'v0.1.0', replace: { path: '../lib', version: '(devel)' } },
    ]);
    expect(m.settings).toEqual([
      { key: '-buildmode', value: 'exe' },
      { key: '-ldflags', value: '-s -w' },
      { key: 'key with space', value: 'v\tx' },
      { key: 'CGO_ENABLED', value: '0' },
      { key: 'vcs.revision', value: '0123abcd' },
    ]);
  });

  test('Go string unquoting', () => {
    expect(unquoteGo('"a\\"b\\\\c\\n\\x41\\u00e9\\101"')).toBe('a"b\\c\nAéA');
    expect(unquoteGo('plain')).toBe('plain');
  });
});
