/** tensormemctl snapshot diff's table (renderDiff). */
import { describe, expect, it } from 'vitest';
import { type DiffGroup, renderDiff } from '../../src/cli/snapshot-diff';
import { KiB } from '../../src/units';

const group = (blocks: number, bytes: number): DiffGroup => ({ tenant: 't', lease_id: 'lease-1', label: 'x', blocks, bytes, owners: ['array-1'], purposes: ['device:0 device'] });

describe('renderDiff', () => {
  it('heads each section with its count of blocks, a count of 1 in the singular', () => {
    const text = renderDiff({ from: 'a.json', to: 'b.json', appeared: [group(1, 4 * KiB)], disappeared: [group(1, KiB), group(1, KiB)], appeared_bytes: 4 * KiB, disappeared_bytes: 2 * KiB });
    expect(text).toContain('appeared: 1 block, 4.00 KiB\n');
    expect(text).toContain('disappeared: 2 blocks, 2.00 KiB\n');
    const empty = renderDiff({ from: 'a.json', to: 'b.json', appeared: [], disappeared: [], appeared_bytes: 0, disappeared_bytes: 0 });
    expect(empty).toBe('snapshot diff a.json → b.json\n\nappeared: 0 blocks, 0 B\n\ndisappeared: 0 blocks, 0 B');
  });
});
