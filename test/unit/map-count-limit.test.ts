import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config';
import { mappedRegionsCapFor, maxMapCount } from '../../src/config/map-count-limit';

describe('--max-mapped-regions', () => {
  it("reads vm.max_map_count and defaults to half of it, the rest left to the pools and V8's heap", () => {
    expect(maxMapCount('65530\n')).toBe(65530);
    expect(maxMapCount('none')).toBeUndefined();
    expect(maxMapCount('0')).toBeUndefined();
    expect(mappedRegionsCapFor(65530, 32765)).toBe(32765);
    expect(mappedRegionsCapFor(262144, 32765)).toBe(131072);
    expect(mappedRegionsCapFor(undefined, 32765)).toBe(32765);
  });

  it('takes the derived cap unless one is given, and names the flag and value of a bad one', () => {
    const kernel = maxMapCount(readFileSync('/proc/sys/vm/max_map_count', 'utf8'));
    const derived = loadConfig([], {});
    expect(derived.maxMappedRegions).toBe(mappedRegionsCapFor(kernel, 32765));
    expect(derived.rawValues['max-mapped-regions']).toBe(String(derived.maxMappedRegions));
    expect(loadConfig(['--max-mapped-regions', '0'], {}).maxMappedRegions).toBe(0);
    expect(loadConfig(['--max-mapped-regions', '10'], {}).maxMappedRegions).toBe(10);
    expect(() => loadConfig(['--max-mapped-regions', '-1'], {})).toThrow('Expected an integer from 0 to 2147483647 for --max-mapped-regions but received "-1"');
  });

  it('refuses a given cap at or past vm.max_map_count, which the kernel reaches first (the daemon aborted there with every lease)', () => {
    const kernel = maxMapCount(readFileSync('/proc/sys/vm/max_map_count', 'utf8'))!;
    expect(() => loadConfig(['--max-mapped-regions', String(kernel)], {})).toThrow(
      `Expected 0 (no cap) or a number below vm.max_map_count, ${kernel} (the kernel's limit of mappings, which the pools, the V8 heap and the libraries share; the default is half of it, ${mappedRegionsCapFor(kernel, 32765)}), or a larger vm.max_map_count (sysctl) for --max-mapped-regions but received "${kernel}"`,
    );
    expect(() => loadConfig([], { TENSORMEM_MAX_MAPPED_REGIONS: String(kernel * 2) })).toThrow(`for --max-mapped-regions (from TENSORMEM_MAX_MAPPED_REGIONS) but received "${kernel * 2}"`);
    expect(loadConfig(['--max-mapped-regions', String(kernel - 1)], {}).maxMappedRegions).toBe(kernel - 1);
  });
});
