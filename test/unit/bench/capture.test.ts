/** The capture-floor section's arithmetic: the busy reader's calibration and the split of the gap. */
import { budgetAt, busyPerRecordUs, ratioAt, splitGap } from '../../../bench/lib/capture';

describe('busyPerRecordUs', () => {
  it("spreads the agent's CPU per request beyond the plain reader's over the records of a request", () => {
    expect(busyPerRecordUs(10, 2, 2)).toBe(4);
    expect(busyPerRecordUs(9.5, 1.5, 4)).toBe(2);
  });

  it('never asks for negative busy work, nor divides by no records', () => {
    expect(busyPerRecordUs(1, 2, 2)).toBe(0);
    expect(busyPerRecordUs(10, 2, 0)).toBe(0);
    expect(busyPerRecordUs(10, 2, Number.NaN)).toBe(0);
  });
});

describe('splitGap', () => {
  it('splits the floor-to-agent gap into capture, user space and the agent kernel side, which add up', () => {
    const s = splitGap([{ floor: 0.95, capture: 0.9, captureBusy: 0.6, agent: 0.45 }]);
    expect(s.gap).toBeCloseTo(0.5);
    expect(s.capture).toBeCloseTo(0.05);
    expect(s.userSpace).toBeCloseTo(0.3);
    expect(s.agentBpf).toBeCloseTo(0.15);
    expect(s.capture + s.userSpace + s.agentBpf).toBeCloseTo(s.gap);
  });

  it('takes the median of each part over rounds', () => {
    const s = splitGap([
      { floor: 0.9, capture: 0.8, captureBusy: 0.5, agent: 0.4 },
      { floor: 1.0, capture: 0.9, captureBusy: 0.7, agent: 0.5 },
      { floor: 0.95, capture: 0.5, captureBusy: 0.45, agent: 0.44 },
    ]);
    expect(s.capture).toBeCloseTo(0.1);
    expect(s.userSpace).toBeCloseTo(0.2);
    expect(s.agentBpf).toBeCloseTo(0.1);
    expect(s.gap).toBeCloseTo(0.5);
  });
});

describe('the user-space budget curve', () => {
  const curve = [
    { us: 4.8, ratio: 0.7 },
    { us: 0.8, ratio: 0.95 },
    { us: 10.8, ratio: 0.45 },
    { us: 2.8, ratio: 0.85 },
  ];

  it('finds the CPU per request where the ratio falls to a value, between the points around it', () => {
    expect(budgetAt(curve, 0.9)).toBeCloseTo(1.8);
    expect(budgetAt(curve, 0.7)).toBeCloseTo(4.8);
    expect(budgetAt(curve, 0.5)).toBeCloseTo(9.6);
  });

  it('says undefined when the sweep does not cross the value', () => {
    expect(budgetAt(curve, 0.99)).toBeUndefined();
    expect(budgetAt(curve, 0.3)).toBeUndefined();
  });

  it('reads the ratio at a CPU per request, inside the sweep and beyond it', () => {
    expect(ratioAt(curve, 1.8)).toBeCloseTo(0.9);
    expect(ratioAt(curve, 7.8)).toBeCloseTo(0.575);
    expect(ratioAt(curve, 0)).toBeCloseTo(0.99);
    expect(ratioAt(curve, 30)).toBe(0);
  });
});
