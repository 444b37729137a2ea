import { describe, expect, it } from 'vitest';
import { capText, usageBar } from '../../src/cli/top';

describe('tensormemctl top: usage bars', () => {
  it('fills the bar up to the cap and prints the true share above it', () => {
    expect(usageBar(50, 100, 10)).toBe('[#####-----]  50.0%');
    expect(usageBar(130, 100, 10)).toBe('[##########] 130.0%');
  });

  it('shows no bar and no share without a cap (0), and the cap as none', () => {
    expect(usageBar(123, 0)).toBe('-');
    expect(capText(0)).toBe('none');
    expect(capText(1024)).toBe('1.00 KiB');
  });
});
