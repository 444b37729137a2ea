/**
 * The data plane client (getArray, putArray) given answers that HTTP servers and proxies send and the
 * daemon never does: interim 1xx answers before the final one, framing the daemon never uses
 * (duplicate, folded or malformed Content-Length, Transfer-Encoding), a 200 to a PUT without
 * bytes_written, a range answer of another length. A scripted TCP server stands in for the data plane.
 */
import { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DataPlaneConnectionError, getArray, putArray } from '../../src/dataplane/data-plane-client';
import { DataPlaneConnections } from '../../src/dataplane/data-plane-connections';
import { answerWith, scriptedServer } from '../helpers/scripted-server';

type Server = Awaited<ReturnType<typeof scriptedServer>>;

describe('the data plane client given answers of other HTTP servers', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
  });
  async function serve(onConnection: (socket: Socket) => void): Promise<Server> {
    const server = await scriptedServer(onConnection);
    servers.push(server);
    return server;
  }

  it('skips interim answers other than 100 (103 Early Hints, 102 Processing) and reads the final one', async () => {
    for (const interim of ['HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n', 'HTTP/1.1 102 Processing\r\n\r\n']) {
      const server = await serve(answerWith(`${interim}HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd`));
      expect((await getArray(server.endpoint, 't', 'a')).toString(), interim).toBe('abcd');
      expect((await getArray(server.endpoint, 't', 'a', 0, 4)).toString(), interim).toBe('abcd');
    }
    // 101 switches the connection to another protocol, which no request here asked for.
    const upgraded = await serve(answerWith('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
    const error = await getArray(upgraded.endpoint, 't', 'a').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DataPlaneConnectionError);
    expect((error as Error).message).toMatch(/HTTP 101 Switching Protocols to a request that asked for no upgrade/);
  });

  it('a PUT sends its body after a 100 that follows a 103, and reads the final answer after it', async () => {
    let body = '';
    const server = await serve((socket) => {
      let head = '';
      socket.on('data', (chunk: Buffer) => {
        if (!head.includes('\r\n\r\n')) {
          head += chunk.toString('latin1');
          if (!head.includes('\r\n\r\n')) return;
          socket.write('HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n');
          body += head.slice(head.indexOf('\r\n\r\n') + 4);
        } else body += chunk.toString('latin1');
        if (body.length === 4) socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n{"bytes_written":4}');
      });
    });
    expect(await putArray(server.endpoint, 't', 'a', Buffer.from('wxyz'))).toBe(4);
    expect(body).toBe('wxyz');
  });

  it('keeps the connection of a keep-alive answer that came after a 103 for the next transfer', async () => {
    const server = await serve(answerWith('HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\nKeep-Alive: timeout=5\r\n\r\nabcd'));
    const connections = new DataPlaneConnections();
    try {
      await getArray(server.endpoint, 't', 'a', 0, 0, undefined, { connections });
      expect(connections.idleCount).toBe(1);
    } finally {
      connections.close();
    }
  });
});
