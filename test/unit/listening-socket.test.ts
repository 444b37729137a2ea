/**
 * isListeningSocket (tensormemctl put -: stdin that is a server's socket is refused): which sockets it
 * finds listening, and which of Linux's /proc/net tables it reads to tell.
 */
import { fstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isListeningSocket } from '../../src/cli/stdin-pieces';

const dir = mkdtempSync(join(tmpdir(), 'listening-socket-'));
const servers: Server[] = [];
const sockets: Socket[] = [];
afterAll(() => {
  for (const socket of sockets) socket.destroy();
  for (const server of servers) server.close();
  rmSync(dir, { recursive: true, force: true });
});

function inodeOf(handle: Server | Socket): number {
  return fstatSync((handle as unknown as { _handle: { fd: number } })._handle.fd).ino;
}

/** A server listening at `where` (port 0: any free one), the accepted end and the client end of one connection to it. */
async function serverAndConnection(where: { port: 0; host: string } | { path: string }): Promise<{ server: Server; accepted: Socket; client: Socket }> {
  let accept!: (socket: Socket) => void;
  const acceptedOne = new Promise<Socket>((resolve) => (accept = resolve));
  const server = createServer(accept);
  await new Promise<void>((resolve) => server.listen(where, resolve));
  servers.push(server);
  const address = server.address();
  const client = connect(typeof address === 'string' ? { path: address } : { host: '127.0.0.1', port: address!.port });
  await new Promise((resolve) => client.once('connect', resolve));
  sockets.push(client);
  const accepted = await acceptedOne;
  sockets.push(accepted);
  return { server, accepted, client };
}

/** isListeningSocket with the /proc/net files it read. */
function readingTables(ino: number): { listening: boolean; read: string[] } {
  const read: string[] = [];
  const listening = isListeningSocket(ino, (file) => {
    read.push(file);
    return readFileSync(file, 'latin1');
  });
  return { listening, read };
}

describe.skipIf(process.platform !== 'linux')('isListeningSocket (Linux: /proc/net)', () => {
  it('finds a TCP server listening, and neither end of a connection to it', async () => {
    const { server, accepted, client } = await serverAndConnection({ port: 0, host: '127.0.0.1' });
    expect(isListeningSocket(inodeOf(server))).toBe(true);
    expect(isListeningSocket(inodeOf(accepted))).toBe(false);
    expect(isListeningSocket(inodeOf(client))).toBe(false);
  });

  it('finds a unix server listening, and neither end of a connection to it', async () => {
    const { server, accepted, client } = await serverAndConnection({ path: join(dir, 'server.sock') });
    expect(isListeningSocket(inodeOf(server))).toBe(true);
    expect(isListeningSocket(inodeOf(accepted))).toBe(false);
    expect(isListeningSocket(inodeOf(client))).toBe(false);
  });

  // A spawned process's 'pipe' stdin is a unix socket pair (Node's, and many supervisors'): /proc/net/tcp
  // and tcp6 walk every bucket of the kernel's TCP hash tables however few sockets there are (30-50 ms
  // each on a 2-core VM with a 262,144-entry table), which a unix socket needs none of.
  it('answers for a unix socket from /proc/net/unix alone, without reading the TCP tables', async () => {
    const { server, client } = await serverAndConnection({ path: join(dir, 'tables.sock') });
    expect(readingTables(inodeOf(client))).toEqual({ listening: false, read: ['/proc/net/unix'] });
    expect(readingTables(inodeOf(server))).toEqual({ listening: true, read: ['/proc/net/unix'] });
  });

  it('answers for an IPv4 TCP socket without reading /proc/net/tcp6', async () => {
    const { server, client } = await serverAndConnection({ port: 0, host: '127.0.0.1' });
    expect(readingTables(inodeOf(client))).toEqual({ listening: false, read: ['/proc/net/unix', '/proc/net/tcp'] });
    expect(readingTables(inodeOf(server))).toEqual({ listening: true, read: ['/proc/net/unix', '/proc/net/tcp'] });
  });
});
