/**
 * The Node.js linking probe (src/discovery/node.ts) on the node binary installed here, and its
 * refusals: a version without measured offsets, a file that is not node.
 */
import { existsSync } from 'node:fs';
import { inspectNodeBinary, NODE_LAYOUTS, nodeVersionOf } from '../../../src/discovery/node';
import { withElf } from '../../../src/discovery/go/elf';

describe('Node.js linking probe', () => {
  const node = process.execPath;

  it('reads the version of the node running this test from its release URL', () => {
    expect(withElf(node, (elf) => nodeVersionOf(elf))).toBe(process.versions.node);
  });

  it('a node whose offsets are measured: the loop, both vtable pointers and the layout; others: the reason', () => {
    const r = inspectNodeBinary(node);
    if (NODE_LAYOUTS[process.versions.node] && existsSync(node)) {
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.version).toBe(process.versions.node);
      expect(r.loop).toBeGreaterThan(0);
      // the Parser's StreamListener vtable lies inside the Parser's vtable group, past its first one
      expect(r.parserVptr).toBeGreaterThan(r.tcpVptr === r.parserVptr ? 0 : 16);
      expect(r.layout).toBe(NODE_LAYOUTS[process.versions.node]);
    } else {
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(/not measured|no symbols|missing/);
    }
  });

  it('refuses a binary that is not node, with its reason', () => {
    const r = inspectNodeBinary('/bin/true');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/no node release string/);
  });
});
