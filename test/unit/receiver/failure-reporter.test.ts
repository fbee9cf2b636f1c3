import { FailureReporter } from '../../../receiver/failure-reporter';
import { recordingLog } from './helpers/otlp-server';

describe('FailureReporter', () => {
  it('logs the first failure, then at most one summary per interval, then a recovery', () => {
    let now = 1_000_000;
    const log = recordingLog();
    const r = new FailureReporter(log, 60_000, () => now);
    r.failure('export: a', 10);
    for (let i = 0; i < 100; i++) {
      now += 100; // 10 s of failures every 100 ms
      r.failure(`export: b${i}`, 10);
    }
    expect(log.warnings).toEqual(['export: a; dropped 10 spans; further failures are reported at most every 60 s']);
    now += 60_000;
    r.failure('export: c', 5);
    expect(log.warnings).toHaveLength(2);
    expect(log.warnings[1]).toBe(
      'export: c; dropped 5 spans (101 failed exports since the last report); further failures are reported at most every 60 s',
    );
    r.failure('export: d', 5);
    r.success();
    expect(log.infos).toEqual(['export recovered after 103 failed exports; last error: export: d']);
    r.success();
    expect(log.infos).toHaveLength(1);
    r.failure('export: e', 1); // a new outage is reported at once
    expect(log.warnings).toHaveLength(3);
  });
});
