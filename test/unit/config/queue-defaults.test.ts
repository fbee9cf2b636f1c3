/**
 * The defaults the settings table prints (--help, docs/configuration.md, doctor) are the ones the
 * batcher applies: src/config may not import receiver/, so this test holds the two together.
 */
import { BATCHER_DEFAULTS } from '../../../receiver/batcher';
import { SETTINGS_BY_KEY } from '../../../src/config/settings';

describe('queue.* defaults', () => {
  it.each([
    ['queue.max_spans', BATCHER_DEFAULTS.maxQueueSize],
    ['queue.max_batch_spans', BATCHER_DEFAULTS.maxBatchSize],
    ['queue.schedule_delay_ms', BATCHER_DEFAULTS.scheduledDelayMs],
  ])('%s says the batcher default (%d)', (key, value) => {
    expect(SETTINGS_BY_KEY.get(key)?.defaultText).toBe(String(value));
  });

  it('queue.max_bytes says the batcher default', () => {
    expect(SETTINGS_BY_KEY.get('queue.max_bytes')?.defaultText).toBe(`${BATCHER_DEFAULTS.maxQueueBytes / (1024 * 1024)}MiB`);
  });
});
