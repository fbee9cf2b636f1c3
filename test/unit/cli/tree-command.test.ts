import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { treesFromJsonLines } from '../../../src/cli/tree-command';

describe('spanbridge tree', () => {
  it('prints recorded --print-spans json lines as one tree per trace, in order, skipping other lines', () => {
    const recorded = readFileSync(join(__dirname, '../../fixtures/demo-spans.jsonl'), 'utf8');
    const r = treesFromJsonLines(`2026-11-25T03:47:48Z INFO  a log line\n${recorded}{"not":"a span"}\n`);
    expect(r.traces).toBe(3);
    expect(r.skipped).toBe(2);
    const blocks = r.text.trimEnd().split('\n\n');
    expect(blocks).toHaveLength(3);
    expect(blocks.map((b) => b.split('\n')[0].slice(0, 14))).toEqual(['trace 335259f7', 'trace dfe9acdf', 'trace b4c2fae5']);
    expect(blocks[2]).toMatch(/demo-frontend {2}SERVER GET \/shop\/\{item\} +502 ERROR/);
  });
});
