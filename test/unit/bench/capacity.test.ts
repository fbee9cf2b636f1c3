import type { BenchConfig } from '../../../bench/lib/config';
import type { LoadgenResult } from '../../../bench/lib/load';
import { capacityFigures, type CapacityArm } from '../../../bench/sections/capacity';

const config = { rateConns: 16, wrkConns: 32, serverCpu: 0, loadCpu: 1 } as BenchConfig;
const lat = (achievedRate: number, unsent = 0) => ({ achievedRate, unsent, requests: achievedRate * 3 }) as LoadgenResult;
const sat = (rps: number) => ({ rps, requests: rps * 3, errors: 0 });
const rateCpu = (serverUsPerRequest: number) => ({ serverUsPerRequest, serverCpuBusy: 0.5, loadCpuBusy: 0.6 });
const arm = (serverUs: number, agentUs: number, rps: number, achieved = 1000): CapacityArm => ({
  sat: sat(rps), lat: lat(achieved), rateCpu: rateCpu(serverUs), cpuUsPerSpanRate: agentUs, agentUsPerRequestRate: agentUs,
  serverCpuBusy: 1, loadCpuBusy: 1, ringbufLost: 0,
});
const without = [20, 30].map((us, i) => ({ sat: sat(10_000 + i), lat: lat(1000), rateCpu: rateCpu(us), serverCpuBusy: 1, serverUsPerRequest: 10 }));

describe('bench capacity figures', () => {
  test('capacity is the server CPU per request without / with, paired by round; the agent on the load CPU is not charged', () => {
    const { figures } = capacityFigures({ id: 'go', rate: 1000, config, without, arms: [{ key: '', label: 'injection auto', rounds: [arm(25, 12, 5000), arm(40, 12, 5000)] }] });
    const cap = figures.find((f) => f.id === 'go.capacity_ratio');
    // round 1: 20 / 25 = 0.8, round 2: 30 / 40 = 0.75
    expect(cap?.value).toBeCloseTo(0.775, 6);
    expect(cap?.target).toBeUndefined();
    expect(figures.find((f) => f.id === 'go.server_cpu_added_rate')?.value).toBeCloseTo(7.5, 6);
    // projected on the saturated work (10 us): 10 / (10 + 7.5)
    expect(cap?.detail).toContain('0.571 of capacity kept');
    expect(figures.some((f) => f.id.endsWith('_server_cpu'))).toBe(false);
  });

  test('the agent on the server CPU is charged to the service; its saturated ratio pairs with the same round', () => {
    const { figures, notes } = capacityFigures({
      id: 'sys', rate: 1000, config, without, arms: [{ key: '', label: 'injection auto', rounds: [arm(25, 12, 5000), arm(40, 12, 5000)] }],
      onServerCpu: [arm(22, 18, 6000), arm(30, 10, 7000, 900)],
    });
    // round 1: 20 / (22 + 18) = 0.5, round 2: 30 / (30 + 10) = 0.75
    const cap = figures.find((f) => f.id === 'sys.capacity_ratio_server_cpu');
    expect(cap?.value).toBeCloseTo(0.625, 6);
    expect(cap?.detail).toContain('1 of 2 rounds did not sustain 1000 req/s');
    const tput = figures.find((f) => f.id === 'sys.throughput_ratio_server_cpu');
    expect(tput?.value).toBeCloseTo((6000 / 10_000 + 7000 / 10_001) / 2, 6);
    expect(notes.join(' ')).toContain("charge the agent's CPU per request to the service");
  });

  test('the low rate, when measured, gives its own capacity ratio', () => {
    const low = { rate: 400, without: [rateCpu(30), rateCpu(40)], with: [rateCpu(40), rateCpu(40)] };
    const { figures } = capacityFigures({ id: 'go', rate: 1000, config, without, arms: [{ key: '', label: 'injection auto', rounds: [arm(25, 12, 5000), arm(40, 12, 5000)] }], low });
    // round 1: 30 / 40 = 0.75, round 2: 40 / 40 = 1
    expect(figures.find((f) => f.id === 'go.capacity_ratio_low')?.value).toBeCloseTo(0.875, 6);
    expect(capacityFigures({ id: 'go', rate: 1000, config, without, arms: [] }).figures.some((f) => f.id === 'go.capacity_ratio_low')).toBe(false);
  });
});
