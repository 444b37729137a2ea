/**
 * withOthersMasked: a unix socket bound under a umask of 0 is never open to other users, not even
 * before the chmod to 0660 that follows its bind; the umask comes back after the bind, also when
 * two binds overlap or one fails.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withOthersMasked } from '../../src/service/socket-umask';

const dir = mkdtempSync(join(tmpdir(), 'tensormem-umask-'));
const servers: Server[] = [];
let umaskBefore = 0;

function listen(path: string): Promise<number> {
  const server = createServer();
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // The mode as bound, before anything could chmod it.
    server.listen(path, () => resolve(statSync(path).mode & 0o777));
  });
}

describe('withOthersMasked', () => {
  beforeEach(() => {
    umaskBefore = process.umask(0);
  });
  afterEach(async () => {
    process.umask(umaskBefore);
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('binds with no bits for others under a umask of 0, and puts the umask back', async () => {
    // Without it, the socket is open to every user.
    expect(await listen(join(dir, 'open.sock'))).toBe(0o777);
    expect(await withOthersMasked(() => listen(join(dir, 'masked.sock')))).toBe(0o770);
    expect(process.umask()).toBe(0);
  });

  it('keeps the umask’s own bits, and puts it back when overlapping binds are done or one fails', async () => {
    process.umask(0o027);
    const modes = await Promise.all([withOthersMasked(() => listen(join(dir, 'a.sock'))), withOthersMasked(() => listen(join(dir, 'b.sock')))]);
    expect(modes).toEqual([0o750, 0o750]);
    expect(process.umask()).toBe(0o027);
    await expect(withOthersMasked(() => listen(join(dir, 'missing', 'c.sock')))).rejects.toThrow(/^listen E/);
    expect(process.umask()).toBe(0o027);
  });
});
