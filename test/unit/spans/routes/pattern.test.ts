import { parsePattern, parsePatternList, RouteMatcher, type RoutePattern } from '../../../../src/spans/routes/pattern';

function matcher(...patterns: string[]): RouteMatcher {
  const p = parsePatternList(patterns);
  if (!p.ok) throw new Error(p.why);
  return new RouteMatcher(p.patterns);
}

describe('route patterns', () => {
  it('matches parameters, literals and rest wildcards', () => {
    const m = matcher('/users/{id}', '/api/v1/orders/{order}/items/{item}', '/files/{path...}', '/static/**', '/legacy/:id/view', '/any/*/x');
    expect(m.match('/users/42')).toBe('/users/{id}');
    expect(m.match('/api/v1/orders/77/items/3')).toBe('/api/v1/orders/{order}/items/{item}');
    expect(m.match('/files/a/b/c.txt')).toBe('/files/{path...}');
    expect(m.match('/files')).toBe('/files/{path...}');
    expect(m.match('/static/js/app.js')).toBe('/static/**');
    expect(m.match('/legacy/9/view')).toBe('/legacy/:id/view');
    expect(m.match('/any/thing/x')).toBe('/any/*/x');
    expect(m.match('/users')).toBeUndefined();
    expect(m.match('/users/42/orders')).toBeUndefined();
    expect(m.match('/api/v1/orders/77/items')).toBeUndefined();
    expect(m.match('/Users/42')).toBeUndefined();
  });

  it('a trailing slash matches the same pattern, in the path or in the pattern', () => {
    const m = matcher('/users/{id}', '/teams/');
    expect(m.match('/users/42/')).toBe('/users/{id}');
    expect(m.match('/teams')).toBe('/teams');
    expect(m.match('/teams/')).toBe('/teams');
    expect(matcher('/').match('/')).toBe('/');
  });

  it('the most specific pattern wins, whatever the order declared', () => {
    const patterns = ['/users/{id}', '/users/me', '/users/{id}/orders/{order}', '/users/{id}/orders/latest', '/{tenant}/users/{id}', '/files/{path...}', '/files/{name}', '/a/{x}/c', '/a/b/{y}'];
    for (const order of [patterns, [...patterns].reverse()]) {
      const m = matcher(...order);
      expect(m.match('/users/me')).toBe('/users/me');
      expect(m.match('/users/7')).toBe('/users/{id}');
      expect(m.match('/users/7/orders/latest')).toBe('/users/{id}/orders/latest');
      expect(m.match('/users/7/orders/9')).toBe('/users/{id}/orders/{order}');
      expect(m.match('/acme/users/7')).toBe('/{tenant}/users/{id}');
      expect(m.match('/files/x')).toBe('/files/{name}');
      expect(m.match('/files/x/y')).toBe('/files/{path...}');
      expect(m.match('/a/b/c')).toBe('/a/b/{y}');
      expect(m.match('/a/z/c')).toBe('/a/{x}/c');
    }
  });

  it('a parameter never matches an empty segment', () => {
    const m = matcher('/users/{id}/orders');
    expect(m.match('/users//orders')).toBeUndefined();
  });

  it('backtracks: a literal branch that fails later falls back to the parameter', () => {
    const m = matcher('/users/me/settings', '/users/{id}/orders');
    expect(m.match('/users/me/orders')).toBe('/users/{id}/orders');
  });

  it.each([
    ['users/{id}', 'starts with /'],
    ['/users/{id', 'whole segment'],
    ['/users/id}', 'whole segment'],
    ['/users/{}', 'whole segment'],
    ['/users/{1d}', "parameter name '1d'"],
    ['/users/pre{id}', 'whole segment'],
    ['/users/a*b', 'whole segment'],
    ['/files/{p...}/x', 'last segment'],
    ['/a/{id}/b/{id}', "parameter 'id' appears twice"],
    ['/search?q={q}', 'no spaces, ? or #'],
    ['/a b', 'no spaces'],
    ['/a//b', 'empty segment'],
  ])('rejects %s (%s)', (raw, why) => {
    const p = parsePattern(raw);
    expect(p.ok).toBe(false);
    if (!p.ok) expect(p.why).toContain(why);
  });

  it('rejects a list entry by its index, and two patterns for the same paths', () => {
    expect(parsePatternList(['/a', '/b/{id', '/c'])).toMatchObject({ ok: false, at: '[1]' });
    const dup = parsePatternList(['/users/{id}', '/users/:uid']);
    expect(dup).toMatchObject({ ok: false, at: '[1]' });
    if (!dup.ok) expect(dup.why).toContain("matches the same paths as '/users/{id}'");
    expect(parsePatternList('not a list at all, /x')).toMatchObject({ ok: false, at: '[0]' });
    expect(parsePatternList({ a: 1 })).toMatchObject({ ok: false });
  });

  it('accepts a comma-separated string (the environment form)', () => {
    const p = parsePatternList(' /users/{id}, /orders/{id} ');
    expect(p.ok && p.patterns.map((x: RoutePattern) => x.route)).toEqual(['/users/{id}', '/orders/{id}']);
  });

  it('costs per segment, not per pattern: thousands of patterns, one lookup', () => {
    const many = Array.from({ length: 5000 }, (_, i) => `/svc${i}/items/{id}`);
    const m = matcher(...many, '/{a}/{b}/{c}');
    expect(m.match('/svc4999/items/1')).toBe('/svc4999/items/{id}');
    expect(m.match('/x/y/z')).toBe('/{a}/{b}/{c}');
  });
});
