import { OVERFLOW_ROUTE } from '../../../../src/spans/routes/route-policy';
import { RouteLimiter } from '../../../../src/spans/routes/route-limiter';

describe('route limiter', () => {
  it('admits known routes forever and new ones up to the limit per service', () => {
    const l = new RouteLimiter(3);
    expect(['/a', '/b', '/c'].map((r) => l.admit('s', r).route)).toEqual(['/a', '/b', '/c']);
    expect(l.admit('s', '/d')).toEqual({ route: OVERFLOW_ROUTE, overflow: true, firstOverflow: true, added: false });
    expect(l.admit('s', '/e')).toEqual({ route: OVERFLOW_ROUTE, overflow: true, firstOverflow: false, added: false });
    expect(l.admit('s', '/a')).toEqual({ route: '/a', overflow: false, firstOverflow: false, added: false });
    expect(l.count('s')).toBe(3);
    expect(l.admit('t', '/d').route).toBe('/d');
  });

  it('bounds the routes of all services together', () => {
    const l = new RouteLimiter(1000, 10);
    for (let s = 0; s < 5; s++) for (let r = 0; r < 2; r++) expect(l.admit(`s${s}`, `/r${r}`).overflow).toBe(false);
    expect(l.admit('s9', '/x')).toMatchObject({ route: OVERFLOW_ROUTE, overflow: true, firstOverflow: true });
    expect(l.admit('s0', '/r1').route).toBe('/r1');
  });
});
