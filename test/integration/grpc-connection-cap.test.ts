/**
 * --max-connections: past the cap a gRPC listener closes a new connection as soon as it is accepted;
 * connections already open are served, the unix socket listener still takes new clients, and once the
 * flood goes the flooded address does too. A connection needs no token, so without the cap anyone
 * reaching the port took every file descriptor (a new trainer then got UNAVAILABLE "No connection
 * established" on every address).
 */
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { daemonForTests } from '../helpers/daemon-for-tests';

const CAP = 20;
/** The HTTP/2 client preface and an empty SETTINGS frame: a connection grpc-js takes for a client's. */
const PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);

/** A raw connection that sends the preface and then nothing; `closed` settles when the daemon closes it. */
function rawConnection(address: string): { socket: Socket; closed: Promise<void> } {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const socket = connect(port, host);
  socket.on('error', () => undefined);
  socket.on('connect', () => socket.write(PREFACE));
  socket.on('data', () => undefined);
  return { socket, closed: new Promise((resolve) => socket.once('close', () => resolve())) };
}

describe('--max-connections', () => {
  const setup = daemonForTests(['--max-connections', String(CAP)]);

  it('closes connections past the cap at once, keeps serving open ones, and takes new ones when the flood goes', async () => {
    const trainer = await setup.client.openLease({ clientName: 'before-the-flood', ttlSeconds: 60 });
    const flood: { socket: Socket; closed: Promise<void> }[] = [];
    try {
      // The trainer's client holds one connection; the flood takes the rest, then one more.
      for (let i = 0; i < CAP - 1; i++) flood.push(rawConnection(setup.daemon.tcpAddress));
      await new Promise((resolve) => setTimeout(resolve, 500));
      const extra = rawConnection(setup.daemon.tcpAddress);
      const closedAtOnce = await Promise.race([extra.closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000))]);
      expect(closedAtOnce).toBe(true);
      // The flood's own connections are still open; so is the trainer's, which is served.
      expect(flood.every(({ socket }) => !socket.destroyed)).toBe(true);
      const array = await trainer.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [16] });
      await trainer.free(array.array_id);

      const metrics = await (await fetch(`${setup.statusBase}/metrics`)).text();
      expect(Number(/^tensormem_grpc_connections_refused_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
      expect(Number(/^tensormem_grpc_connections (\d+)/m.exec(metrics)?.[1])).toBe(CAP);
      expect(setup.daemon.logs.some((entry) => entry.event === 'grpc_connections_refused')).toBe(true);
      // The other listener takes a new client meanwhile.
      const local = new TensormemClient(setup.daemon.unixAddress);
      try {
        await (await local.openLease({ clientName: 'unix-during-the-flood', ttlSeconds: 60 })).close();
      } finally {
        local.close();
      }
    } finally {
      for (const { socket } of flood) socket.destroy();
      await trainer.close();
    }
    // The flood gone, a new client connects.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const late = new TensormemClient(setup.daemon.tcpAddress);
    try {
      const lease = await late.openLease({ clientName: 'after-the-flood', ttlSeconds: 60 });
      await lease.close();
    } finally {
      late.close();
    }
  });
});
