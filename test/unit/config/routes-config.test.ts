import { describeConfig } from '../../../src/cli/args';
import { configErr, runOptions as run } from '../../helpers/run-options';

const YAML = `
selections:
  - exe: api
    service_name: checkout
    routes:
      patterns: ['/carts/{cart}', '/carts/{cart}/items/{item}']
      unmatched: path
  - open_port: 8080
    routes: {unmatched: wildcard}
  - pid: 7
routes:
  patterns:
    - /users/{id}
    - /api/v1/orders/{order}/items/{item}
  unmatched: heuristic
  max_per_service: 250
`;

describe('routes configuration', () => {
  it('defaults: no patterns, heuristic, 1,000 routes per service', () => {
    const r = run(['--pid', '1']).routes;
    expect(r.global.patterns).toEqual([]);
    expect(r.global.unmatched).toBe('heuristic');
    expect(r.maxPerService).toBe(1000);
    expect(r.bySelection).toEqual({});
  });

  it('global patterns with per-selection overrides, keyed by the selection they belong to', () => {
    const r = run(['--config', '/c.yaml'], {}, { '/c.yaml': YAML }).routes;
    expect(r.global.patterns.map((p) => p.route)).toEqual(['/users/{id}', '/api/v1/orders/{order}/items/{item}']);
    expect(r.global.unmatched).toBe('heuristic');
    expect(r.maxPerService).toBe(250);
    expect(r.bySelection['exe api'].patterns?.map((p) => p.route)).toEqual(['/carts/{cart}', '/carts/{cart}/items/{item}']);
    expect(r.bySelection['exe api'].unmatched).toBe('path');
    expect(r.bySelection['port 8080']).toEqual({ unmatched: 'wildcard' });
    expect(r.bySelection['pid 7']).toBeUndefined();
  });

  it('environment and flag beat the file', () => {
    const r = run(['--config', '/c.yaml', '--routes-unmatched', 'unset'], { SPANBRIDGE_ROUTES_PATTERNS: '/a/{x}, /b/{y}', SPANBRIDGE_ROUTES_MAX_PER_SERVICE: '10' }, { '/c.yaml': YAML }).routes;
    expect(r.global.unmatched).toBe('unset');
    expect(r.global.patterns.map((p) => p.route)).toEqual(['/a/{x}', '/b/{y}']);
    expect(r.maxPerService).toBe(10);
  });

  it('--print-config shows the patterns as routes', () => {
    const text = describeConfig(run(['--config', '/c.yaml'], {}, { '/c.yaml': YAML }));
    expect(text).toMatch(/^routes\.patterns: \["\/users\/\{id\}","\/api\/v1\/orders\/\{order\}\/items\/\{item\}"\] {2}# yaml$/m);
    expect(text).toMatch(/^ {2}- \{exe: 'api', service_name: checkout, routes: \{patterns: \["\/carts\/\{cart\}","\/carts\/\{cart\}\/items\/\{item\}"\], unmatched: path\}\}$/m);
    expect(text).toMatch(/^routes\.max_per_service: 250 {2}# yaml$/m);
  });

  it.each([
    ['routes: {patterns: ["/users/{id}", "/orders/{id"]}', /\/c\.yaml: routes\.patterns\[1\]: "\/orders\/\{id": segment '\{id': a parameter is a whole segment like \{id\}/],
    ['routes: {patterns: ["users/{id}"]}', /routes\.patterns\[0\]: "users\/\{id\}": a pattern starts with \//],
    ['routes: {patterns: ["/users/{id}", "/users/:uid"]}', /routes\.patterns\[1\]: '\/users\/:uid' matches the same paths as '\/users\/\{id\}'/],
    ['routes: {patterns: 5}', /routes\.patterns: expected a list of path patterns/],
    ['routes: {unmatched: guess}', /routes\.unmatched: 'guess' is not one of heuristic, path, wildcard, unset/],
    ['routes: {max_per_service: 0}', /routes\.max_per_service: 0 is not an integer 1\.\.100000/],
    ['routes: {pattern: ["/a"]}', /unknown key 'routes\.pattern' \(known keys under routes: patterns, unmatched, max_per_service\)/],
    ['selections: [{exe: x, routes: {patterns: ["/a/{b"]}}]', /selections\[0\]\.routes\.patterns\[0\]: "\/a\/\{b": segment/],
    ['selections: [{exe: x, routes: {unmatched: nope}}]', /selections\[0\]\.routes\.unmatched: 'nope' is not one of heuristic, path, wildcard, unset/],
    ['selections: [{exe: x, routes: {max_per_service: 3}}]', /selections\[0\]\.routes: unknown key 'max_per_service' \(known keys: patterns, unmatched\)/],
    ['selections: [{exe: x, routes: [a]}]', /selections\[0\]\.routes: expected a mapping with patterns and\/or unmatched/],
  ])('%s', (yaml, msg) => {
    expect(configErr(() => run(['--config', '/c.yaml', '--pid', '1'], {}, { '/c.yaml': yaml }))).toMatch(msg);
  });

  it('bad environment and flag values name the variable and the flag', () => {
    expect(configErr(() => run(['--pid', '1'], { SPANBRIDGE_ROUTES_PATTERNS: '/ok, /bad/{' }))).toMatch(/SPANBRIDGE_ROUTES_PATTERNS\[1\]: "\/bad\/\{": segment/);
    expect(configErr(() => run(['--pid', '1', '--routes-unmatched', 'x']))).toMatch(/--routes-unmatched: 'x' is not one of heuristic, path, wildcard, unset/);
  });
});
