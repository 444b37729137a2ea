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

  it('refuse a token whose serial was altered (it would skip or repeat items), also only by leading zeros, naming page_token', () => {
    const given = pageTokenOf(5, LEASES);
    for (const altered of [given.replace(/^p5\./, 'p6.'), given.replace(/^p5\./, 'p4.'), given.replace(/^p5\./, 'p999.'), given.replace(/^p5\./, 'p05.'), given.replace(/^p5\./, 'p005.')]) {
      const error = thrownBy(() => pageStart(altered, LEASES), TensormemError);
      expect(error.kind).toBe('INVALID_ARGUMENT');
      expect(error.metadata.field).toBe('page_token');
      expect(error.message).toContain(altered);
    }
  });

  it("refuse another listing's token", () => {
    const error = thrownBy(() => pageStart(pageTokenOf(3, ARRAYS), LEASES), TensormemError);
    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain("every tenant's leases");
  });
});
