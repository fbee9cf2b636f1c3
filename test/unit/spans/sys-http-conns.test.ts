/** The syscall assembler's connection table (src/spans/sys-http-conns.ts): lookup and order of last activity. */
import { ConnTable, type LruEntry } from '../../../src/spans/sys-http-conns';

interface E extends LruEntry<bigint, E> {
  readonly name: string;
}

const entry = (id: bigint, name: string): E => ({ id, name, older: null, newer: null });

function order(t: ConnTable<bigint, E>): string[] {
  const out: string[] = [];
  for (let c = t.oldest; c !== null; c = c.newer) out.push(c.name);
  return out;
}

describe('ConnTable', () => {
  it('keeps entries by id, least recently active first', () => {
    const t = new ConnTable<bigint, E>();
    const [a, b, c] = [entry(1n, 'a'), entry(2n, 'b'), entry(2n ** 63n + 5n, 'c')];
    t.add(a);
    t.add(b);
    t.add(c);
    expect(t.size).toBe(3);
    expect(t.get(2n ** 63n + 5n)).toBe(c);
    expect(t.has(4n)).toBe(false);
    expect(order(t)).toEqual(['a', 'b', 'c']);
    t.touch(a);
    expect(order(t)).toEqual(['b', 'c', 'a']);
    t.touch(a); // already the newest
    t.touch(c);
    expect(order(t)).toEqual(['b', 'a', 'c']);
    t.delete(a);
    expect(order(t)).toEqual(['b', 'c']);
    expect(t.get(1n)).toBeUndefined();
    t.delete(b);
    t.delete(c);
    expect([t.size, t.oldest, order(t)]).toEqual([0, null, []]);
    t.add(a);
    expect(order(t)).toEqual(['a']);
  });
});
