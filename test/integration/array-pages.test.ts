/**
 * ListArrays in pages, against a daemon process: a lease holding more arrays than one reply can carry
 * (the unpaged reply fails past --max-message-bytes) is listed page by page, arrays freed or made
 * between pages neither repeat nor shift the rest, and the typed client's list() pages by itself.
 */
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { LeaseSession } from '../../src/client/tensormem-client';
import { daemonForTests } from '../helpers/daemon-for-tests';
import { failure } from '../helpers/thrown';

/** `count` FLOAT32 [4] arrays made one after the other (so their order is known). */
async function allocateArrays(lease: LeaseSession, count: number, label = ''): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push((await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [4], label })).array_id);
  return ids;
}

describe('ListArrays pages', () => {
  const daemon = daemonForTests(['--maxbytes', '64M', '--pool-chunk', '4M']);

  it('pages the arrays in the order they were made, none twice, with the total', async () => {
    const lease = await daemon.client.openLease({ clientName: 'pages' });
    try {
      const ids = await allocateArrays(lease, 25);
      const first = await lease.listPage({ pageSize: 10 });
      expect(first.arrays.map((array) => array.array_id)).toEqual(ids.slice(0, 10));
      expect(first.totalCount).toBe(25);
      const second = await lease.listPage({ pageSize: 10, pageToken: first.nextPageToken });
      expect(second.arrays.map((array) => array.array_id)).toEqual(ids.slice(10, 20));
      const last = await lease.listPage({ pageSize: 10, pageToken: second.nextPageToken });
      expect(last.arrays.map((array) => array.array_id)).toEqual(ids.slice(20));
      expect(last.nextPageToken).toBe('');
      // Unpaged: every array, no token.
      const all = await lease.listPage();
      expect(all.arrays.map((array) => array.array_id)).toEqual(ids);
      expect(all.nextPageToken).toBe('');
      expect((await lease.list()).map((array) => array.array_id)).toEqual(ids);
    } finally {
      await lease.close();
    }
  });

  it('arrays freed or made between pages neither repeat nor shift the rest', async () => {
    const lease = await daemon.client.openLease({ clientName: 'churn' });
    try {
      const ids = await allocateArrays(lease, 12);
      const first = await lease.listPage({ pageSize: 5 });
      expect(first.arrays.map((array) => array.array_id)).toEqual(ids.slice(0, 5));
      // The last array of the page (the token's position), one not listed yet, and a new one.
      await lease.free(ids[4]);
      await lease.free(ids[7]);
      const [made] = await allocateArrays(lease, 1);
      const rest: string[] = [];
      let pageToken = first.nextPageToken;
      let totalCount = 0;
      while (pageToken !== '') {
        const page = await lease.listPage({ pageSize: 5, pageToken });
        rest.push(...page.arrays.map((array) => array.array_id));
        pageToken = page.nextPageToken;
        totalCount = page.totalCount;
      }
      expect(rest).toEqual([...ids.slice(5, 7), ...ids.slice(8), made]);
      expect(totalCount).toBe(11);
    } finally {
      await lease.close();
    }
  });

  it('refuses a page token it did not give, or gave for another listing, naming page_token', async () => {
    const a = await daemon.client.openLease({ clientName: 'a' });
    const b = await daemon.client.openLease({ clientName: 'b' });
    try {
      await allocateArrays(a, 3);
      const idsOfB = await allocateArrays(b, 3);
      const ofA = await a.listPage({ pageSize: 1 });
      expect(ofA.nextPageToken).not.toBe('');
      // Another lease's token would skip this lease's arrays below its position: refused.
      const crossed = await failure(b.listPage({ pageSize: 1, pageToken: ofA.nextPageToken }));
      expect(crossed.code).toBe(status.INVALID_ARGUMENT);
      expect(crossed.details).toContain('page_token');
      expect(crossed.details).toContain(b.leaseId);
      // A ListLeases token is not a ListArrays one.
      const leasePage = await daemon.client.listLeasesPage({ pageSize: 1 });
      expect(leasePage.nextPageToken).not.toBe('');
      const leaseToken = await failure(b.listPage({ pageSize: 1, pageToken: leasePage.nextPageToken }));
      expect(leaseToken.code).toBe(status.INVALID_ARGUMENT);
      for (const pageToken of ['x', 'p-1', 'p1']) {
        const bad = await failure(b.listPage({ pageSize: 1, pageToken }));
        expect(bad.code).toBe(status.INVALID_ARGUMENT);
        expect(bad.details).toContain('page_token');
        expect(bad.details).toContain('ListArrays');
      }
      // Nothing changed: b still lists its own arrays from the start.
      expect((await b.list()).map((array) => array.array_id)).toEqual(idsOfB);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('ListArrays pages under a small --max-message-bytes', () => {
  const daemon = daemonForTests(['--maxbytes', '64M', '--pool-chunk', '4M', '--max-message-bytes', '16K']);

  it('ends a page before the reply would pass the limit; list() gets every array where one reply cannot', async () => {
    const lease = await daemon.client.openLease({ clientName: 'big' });
    try {
      // 200 arrays with 100-character labels: about 40 KiB of ArrayInfo, over the 16 KiB limit.
      const ids = await allocateArrays(lease, 200, 'x'.repeat(100));
      const unpaged = await failure(lease.listPage());
      expect(unpaged.code).toBe(status.RESOURCE_EXHAUSTED);
      const page = await lease.listPage({ pageSize: 1000 });
      expect(page.arrays.length).toBeGreaterThan(0);
      expect(page.arrays.length).toBeLessThan(200);
      expect(page.nextPageToken).not.toBe('');
      expect(page.totalCount).toBe(200);
      expect((await lease.list()).map((array) => array.array_id)).toEqual(ids);
    } finally {
      await lease.close();
    }
  });
});

describe('ListArrays pages and DuplicateArray', () => {
  const daemon = daemonForTests([]);

  it('lists a copy that becomes usable between two pages in a later page', async () => {
    const lease = await daemon.client.openLease({ clientName: 'copies' });
    try {
      const big = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1024 * 1024 * 1024], placement: 'PLACEMENT_HOST_ONLY' });
      // The copy joins the lease when its copy begins, but is listed only once it is usable.
      const copying = lease.duplicate(big.array_id);
      const [first, second] = await allocateArrays(lease, 2);
      const page1 = await lease.listPage({ pageSize: 2 });
      expect(page1.totalCount).toBe(3); // still copying: not listed yet
      expect(page1.arrays.map((array) => array.array_id)).toEqual([big.array_id, first]);
      const copy = await copying;
      const page2 = await lease.listPage({ pageSize: 2, pageToken: page1.nextPageToken });
      expect(page2.totalCount).toBe(4);
      // Before, the copy kept the place it took when its copy began (before `first`): no page listed it.
      expect(page2.arrays.map((array) => array.array_id)).toEqual([second, copy.array_id]);
      expect(page2.nextPageToken).toBe('');
    } finally {
      await lease.close();
    }
  }, 30_000);
});
