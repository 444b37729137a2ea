/**
 * The addon's CRC-32C (native/src/crc32c.cc) against the JavaScript one (crc32cJs): the instruction
 * path this CPU takes and the portable table path, on every length 0-300 at every offset 0-7, across the
 * interleaved blocks' edges (3 × 256 and 3 × 8192 bytes), split at random points, and on RFC 3720's
 * vectors; and how src/crc32c.ts chooses between them (TENSORMEM_CRC32C, no addon).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chooseCrc32c, crc32c, crc32cImplementation, crc32cJs } from '../../src/crc32c';
import { loadAddon } from '../../src/native/addon';
import { rng } from '../helpers/rng';

const addon = loadAddon();

/** Every CRC-32C this process can compute, by name: each must give the same value. */
const IMPLEMENTATIONS: Record<string, (data: Uint8Array, previous?: number) => number> = {
  js: crc32cJs,
  native: (data, previous) => addon.crc32c(data, previous),
  'native table': (data, previous) => addon.crc32c(data, previous, true),
  dispatched: crc32c,
};

function randomBytes(random: () => number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

/** The CRC of each implementation over `data`, by name. */
function crcsOf(data: Uint8Array, previous?: number): Record<string, number> {
  return Object.fromEntries(Object.entries(IMPLEMENTATIONS).map(([name, compute]) => [name, compute(data, previous)]));
}

function sameFor(value: number): Record<string, number> {
  return Object.fromEntries(Object.keys(IMPLEMENTATIONS).map((name) => [name, value]));
}

describe('native crc32c', () => {
  it('takes the CPU instruction where the CPU has it', () => {
    expect(['sse4.2', 'armv8-crc', 'table']).toContain(addon.crc32cImplementation());
    const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
    if (process.arch === 'x64' && /^flags\s*:.*\bsse4_2\b/m.test(cpuinfo)) expect(addon.crc32cImplementation()).toBe('sse4.2');
    if (process.arch === 'arm64' && /^Features\s*:.*\bcrc32\b/m.test(cpuinfo)) expect(addon.crc32cImplementation()).toBe('armv8-crc');
    // The daemon always has the addon: the data plane's crc32c is the native one.
    expect(crc32cImplementation()).toBe(addon.crc32cImplementation());
  });

  it('matches the published check values (RFC 3720 B.4)', () => {
    expect(crcsOf(Buffer.from('123456789'))).toEqual(sameFor(0xe3069283));
    expect(crcsOf(Buffer.alloc(0))).toEqual(sameFor(0));
    expect(crcsOf(Buffer.alloc(32, 0x00))).toEqual(sameFor(0x8a9136aa));
    expect(crcsOf(Buffer.alloc(32, 0xff))).toEqual(sameFor(0x62a8ab43));
    expect(crcsOf(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toEqual(sameFor(0x46dd794e));
    expect(crcsOf(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)))).toEqual(sameFor(0x113fdb5c));
  });

  it('agrees with crc32cJs on every length 0-300 at every offset 0-7, from any previous CRC', () => {
    const random = rng(0xc5c32);
    const backing = randomBytes(random, 300 + 8);
    const mismatches: string[] = [];
    for (let length = 0; length <= 300; length++) {
      for (let offset = 0; offset < 8; offset++) {
        const view = backing.subarray(offset, offset + length);
        const previous = length % 3 === 0 ? 0 : Math.floor(random() * 2 ** 32);
        const crcs = crcsOf(view, previous);
        if (new Set(Object.values(crcs)).size !== 1) mismatches.push(`length ${length} offset ${offset} previous ${previous}: ${JSON.stringify(crcs)}`);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('agrees across the edges of the interleaved blocks (3 × 256 and 3 × 8192 bytes) and beyond', () => {
    const random = rng(77);
    const backing = randomBytes(random, 3 * 8192 * 3 + 3 * 256 + 64);
    const mismatches: string[] = [];
    for (const base of [3 * 256, 3 * 8192, 2 * 3 * 8192 + 3 * 256, 3 * 8192 * 3 + 3 * 256]) {
      for (const delta of [-9, -8, -1, 0, 1, 7, 8, 15]) {
        for (const offset of [0, 1, 5]) {
          const view = backing.subarray(offset, offset + base + delta);
          const crcs = crcsOf(view);
          if (new Set(Object.values(crcs)).size !== 1) mismatches.push(`length ${view.length} offset ${offset}: ${JSON.stringify(crcs)}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('is incremental: split at random points, the pieces chained give the whole CRC', () => {
    const random = rng(2024);
    for (let round = 0; round < 40; round++) {
      const data = randomBytes(random, 1 + Math.floor(random() * 60_000));
      const whole = crc32cJs(data);
      const cuts = Array.from({ length: 1 + Math.floor(random() * 5) }, () => Math.floor(random() * (data.length + 1))).sort((a, b) => a - b);
      for (const [name, compute] of Object.entries(IMPLEMENTATIONS)) {
        let crc = 0;
        let start = 0;
        for (const cut of [...cuts, data.length]) {
          crc = compute(data.subarray(start, cut), crc);
          start = cut;
        }
        expect({ name, length: data.length, cuts, crc }).toEqual({ name, length: data.length, cuts, crc: whole });
      }
    }
  });

  it('reads a view of a larger buffer in place, and an empty or detached one as no bytes', () => {
    const buffer = new ArrayBuffer(1 << 16);
    const bytes = new Uint8Array(buffer);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) & 0xff;
    const view = new Uint8Array(buffer, 4093, 40_000);
    expect(addon.crc32c(view)).toBe(crc32cJs(view));
    const detached = new Uint8Array(new ArrayBuffer(64));
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    expect(detached.length).toBe(0);
    expect(addon.crc32c(detached, 0x1234abcd)).toBe(0x1234abcd);
    expect(addon.crc32c(detached, 0x1234abcd, true)).toBe(0x1234abcd);
  });

  it('refuses a data that is not a Uint8Array and a previous that is not an unsigned 32-bit CRC, naming the argument and value', () => {
    const call = addon.crc32c as (...args: unknown[]) => number;
    expect(() => call('abc')).toThrow(/Expected a Uint8Array for data but received a string/);
    expect(() => call(new Uint16Array(4))).toThrow(/Uint8Array for data but received a typed array other than Uint8Array/);
    expect(() => call(Buffer.alloc(4), 2 ** 32)).toThrow(/unsigned 32-bit CRC for previous but received 4294967296/);
    expect(() => call(Buffer.alloc(4), -1)).toThrow(/for previous but received -1/);
    expect(() => call(Buffer.alloc(4), 1.5)).toThrow(/for previous but received 1.5/);
    expect(() => call(Buffer.alloc(4), '0')).toThrow(/for previous but received a string/);
    expect(call(Buffer.alloc(4), 2 ** 32 - 1)).toBe(crc32cJs(Buffer.alloc(4), 2 ** 32 - 1));
  });
});

describe('choosing crc32c (TENSORMEM_CRC32C)', () => {
  const noAddon = (): never => {
    throw new Error('tensormem native addon not found at /nowhere/tensormem_native.node');
  };

  it('takes the addon by default and crc32cJs where the addon is not built or predates crc32c', () => {
    expect(chooseCrc32c(undefined, () => addon)).toEqual({ implementation: addon.crc32cImplementation(), compute: addon.crc32c });
    expect(chooseCrc32c('auto', () => addon).implementation).toBe(addon.crc32cImplementation());
    expect(chooseCrc32c(undefined, noAddon)).toEqual({ implementation: 'js', compute: crc32cJs });
    expect(chooseCrc32c('', () => ({}))).toEqual({ implementation: 'js', compute: crc32cJs });
  });

  it('js forces the JavaScript fallback without loading the addon', () => {
    let loads = 0;
    const choice = chooseCrc32c('js', () => {
      loads++;
      return addon;
    });
    expect(choice).toEqual({ implementation: 'js', compute: crc32cJs });
    expect(loads).toBe(0);
    expect(choice.compute(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
  });

  it('table forces the addon table path, and is crc32cJs where the addon is not built or predates crc32c (a client must not fail for it)', () => {
    const choice = chooseCrc32c('TABLE', () => addon);
    expect(choice.implementation).toBe('table');
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff));
    expect(choice.compute(data.subarray(3), choice.compute(data.subarray(0, 3)))).toBe(crc32cJs(data));
    expect(chooseCrc32c('table', noAddon)).toEqual({ implementation: 'js', compute: crc32cJs });
    expect(chooseCrc32c('table', () => ({}))).toEqual({ implementation: 'js', compute: crc32cJs });
  });

  it('refuses any other value, naming the variable and the value', () => {
    expect(() => chooseCrc32c('sse', () => addon)).toThrow('TENSORMEM_CRC32C must be one of auto, js, table (or unset), not "sse"');
  });
});
