import { SelfMetrics } from '../../../src/metrics/counters';

describe('SelfMetrics', () => {
  it('runs its collectors before each snapshot, so values read from elsewhere are current', () => {
    const m = new SelfMetrics();
    let kernel = 0;
    m.onSnapshot(() => m.set('spanbridge_kernel_drops', 'Kernel-side drops', { reason: 'x' }, kernel));
    kernel = 3;
    expect(m.snapshot()).toEqual([{ name: 'spanbridge_kernel_drops', description: 'Kernel-side drops', kind: 'gauge', labels: { reason: 'x' }, value: 3 }]);
    kernel = 5;
    expect(m.snapshot()[0].value).toBe(5);
    // get() and total() read what the last snapshot (or call site) left: no collection of their own.
    kernel = 9;
    expect(m.get('spanbridge_kernel_drops', { reason: 'x' })).toBe(5);
  });

  it('a bound counter series adds to the same series as add(), and appears only once counted', () => {
    const m = new SelfMetrics();
    const b = m.bound('c_total', 'help', { type: 'x' });
    expect(m.snapshot()).toEqual([]);
    b.add();
    b.add(2);
    m.add('c_total', 'help', { type: 'x' });
    expect(m.get('c_total', { type: 'x' })).toBe(4);
    expect(m.snapshot()).toEqual([{ name: 'c_total', description: 'help', kind: 'counter', labels: { type: 'x' }, value: 4 }]);
  });
});
