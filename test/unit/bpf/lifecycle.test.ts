import { EventEmitter } from 'node:events';
import { closeAllOnExit, closeAllOpenObjects, openObjectCount, trackOpenObject, type SignalProcess } from '../../../src/bpf/lifecycle';

class FakeProcess extends EventEmitter implements SignalProcess {
  readonly pid = 1234;
  readonly kills: [number, string][] = [];
  readonly exits: number[] = [];
  kill(pid: number, signal: NodeJS.Signals): boolean {
    this.kills.push([pid, signal]);
    return true;
  }
  exit(code: number): void {
    this.exits.push(code);
  }
}

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

  it('on SIGTERM closes objects, removes its handlers and re-raises the signal; installs once', async () => {
    const proc = new FakeProcess();
    let closed = false;
    const untrack = trackOpenObject({
      close: async () => {
        closed = true;
        untrack();
      },
    });
    const uninstall = closeAllOnExit({ proc });
    expect(closeAllOnExit({ proc })).toBe(uninstall);
    expect(proc.listenerCount('SIGTERM')).toBe(1);
    proc.emit('SIGTERM', 'SIGTERM');
    await new Promise((r) => setTimeout(r, 10));
    expect(closed).toBe(true);
    expect(proc.kills).toEqual([[1234, 'SIGTERM']]);
    expect(proc.listenerCount('SIGTERM')).toBe(0);
    expect(proc.listenerCount('SIGINT')).toBe(0);
  });

  it('exits at once on a second signal while closing, and gives up on a close that hangs', async () => {
    const proc = new FakeProcess();
    const untrack = trackOpenObject({ close: () => new Promise<void>(() => undefined) });
    closeAllOnExit({ proc, timeoutMs: 30 });
    proc.emit('SIGINT', 'SIGINT');
    proc.emit('SIGINT', 'SIGINT');
    expect(proc.exits).toEqual([130]);
    await new Promise((r) => setTimeout(r, 60));
    expect(proc.kills).toEqual([[1234, 'SIGINT']]);
    untrack();
  });
});
