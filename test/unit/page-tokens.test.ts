/** Page tokens (ListLeases, ListArrays): only a token this daemon process gave, for this listing, is taken. */
import { describe, expect, it } from 'vitest';
import { TensormemError } from '../../src/errors';
import { type Listing, pageStart, pageTokenOf } from '../../src/service/page-tokens';
import { thrownBy } from '../helpers/thrown';

const LEASES: Listing = { rpc: 'ListLeases', key: '*', name: "every tenant's leases" };
const ARRAYS: Listing = { rpc: 'ListArrays', key: 'l:lease-1', name: "lease lease-1's arrays" };

describe('page tokens', () => {
  it('give back the serial of a token given for the same listing; empty is the first page', () => {
    expect(pageStart('', LEASES)).toBe(0);
    for (const serial of [1, 42, 999_999_999_999_999]) expect(pageStart(pageTokenOf(serial, LEASES), LEASES)).toBe(serial);
  });

  it('refuse a token altered anywhere (its serial would skip or repeat items), naming page_token', () => {
    const given = pageTokenOf(5, LEASES);
    const flipped = (at: number) => given.slice(0, at) + (given[at] === '0' ? '1' : '0') + given.slice(at + 1);
    const altered = [...Array.from({ length: given.length - 1 }, (_, i) => flipped(i + 1)), given.toUpperCase(), `${given}0`, given.slice(0, -1), 'p5', 'p5.0000000000000000'];
    for (const token of altered) {
      const error = thrownBy(() => pageStart(token, LEASES), TensormemError);
      expect(error.kind).toBe('INVALID_ARGUMENT');
      expect(error.metadata.field).toBe('page_token');
      expect(error.message).toContain(token);
    }
  });

  it("hold no plain number: the serial (for ListLeases a count of every tenant's leases) is enciphered", () => {
    const tokens = [1, 2, 303, 999_999_999_999_999].map((serial) => pageTokenOf(serial, LEASES));
    for (const token of tokens) expect(token).toMatch(/^p[0-9a-f]{32}$/);
    expect(tokens.flatMap((token) => token.split(/[^0-9a-f]+/).filter((part) => /^\d+$/.test(part)))).toEqual([]);
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it("refuse another listing's token", () => {
    const error = thrownBy(() => pageStart(pageTokenOf(3, ARRAYS), LEASES), TensormemError);
    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain("every tenant's leases");
  });
});
