/**
 * The silent proxy test helper: refuse() and accept() stop and restart its listener on the same port,
 * each one harmless when it is already so (a test that accepts twice, or refuses a proxy that refuses).
 */
import { createConnection } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { answerWith, scriptedServer } from '../helpers/scripted-server';
import { SilentProxy, silentProxy } from '../helpers/silent-proxy';

/** Whether a connection to `address` is made (true) or refused (false). */
function connects(address: string): Promise<boolean> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('silentProxy', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  async function proxy(): Promise<SilentProxy> {
    const target = await scriptedServer(answerWith('HTTP/1.1 204 No Content\r\n\r\n'));
    const made = await silentProxy(`${target.endpoint.host}:${target.endpoint.port}`);
    cleanups.push(() => made.close(), () => target.close());
    return made;
  }

  it('accept() while listening, and refuse() while refusing, leave it as it is', async () => {
    const made = await proxy();
    await made.accept();
    expect(await connects(made.address)).toBe(true);
    await made.refuse();
    await made.refuse();
    expect(await connects(made.address)).toBe(false);
    await made.accept();
    await made.accept();
    expect(await connects(made.address)).toBe(true);
  });
});
