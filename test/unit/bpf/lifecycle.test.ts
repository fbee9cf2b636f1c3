import { closeAllOpenObjects, openObjectCount, trackOpenObject } from '../../../src/bpf/lifecycle';

describe('lifecycle', () => {
  it('closes every open object in reverse order and collects errors', async () => {
    const order: string[] = [];
    const mk = (name: string, fail = false) => {
      const obj = {
        close: async () => {
          order.push(name);
          untrack();
          if (fail) throw new Error(`${name} failed`);
        },
      };
      const untrack = trackOpenObject(obj);
      return obj;
    };
    mk('a');
    mk('b', true);
    mk('c');
    expect(openObjectCount()).toBe(3);
    const errors = await closeAllOpenObjects();
    expect(order).toEqual(['c', 'b', 'a']);
    expect(errors.map((e) => (e as Error).message)).toEqual(['b failed']);
    expect(openObjectCount()).toBe(0);
  });
});
