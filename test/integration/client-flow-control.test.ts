/**
 * The typed client's HTTP/2 receive window (DEFAULT_FLOW_CONTROL_WINDOW_BYTES). grpc-js left it at
 * HTTP/2's 65,535 bytes, so a ReadArray of 1 MiB chunks stopped for a WINDOW_UPDATE every 64 KiB
 * (measured in bench/README.md under Transfer paths of the typed client: 16 and 64 MiB reads 10–30 % slower). Checked from the
 * other end: a bare HTTP/2 server reads the client's SETTINGS and its connection window.
 */
import { createServer, Http2Server, ServerHttp2Session } from 'node:http2';
import { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_FLOW_CONTROL_WINDOW_BYTES, TensormemClient } from '../../src/client/tensormem-client';

describe('the typed client\'s HTTP/2 flow-control window', () => {
  let server: Http2Server | undefined;
  afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  it('announces DEFAULT_FLOW_CONTROL_WINDOW_BYTES per stream and opens the connection window as far', async () => {
    const seen = new Promise<{ initialWindowSize: number | undefined; connectionWindow: number | undefined }>((resolve) => {
      server = createServer();
      server.on('session', (session: ServerHttp2Session) => {
        let initialWindowSize: number | undefined;
        session.once('remoteSettings', (settings) => (initialWindowSize = settings.initialWindowSize));
        session.on('stream', (stream) => {
          // The client sends its WINDOW_UPDATE as soon as it has the server's SETTINGS, before the call's headers.
          resolve({ initialWindowSize, connectionWindow: session.state.remoteWindowSize });
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'no such method here' }, { endStream: true });
        });
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const client = new TensormemClient(`127.0.0.1:${(server!.address() as AddressInfo).port}`, { deadlineMs: 5000 });
    try {
      await client.memoryInfo().catch(() => undefined);
      expect(await seen).toEqual({ initialWindowSize: DEFAULT_FLOW_CONTROL_WINDOW_BYTES, connectionWindow: DEFAULT_FLOW_CONTROL_WINDOW_BYTES });
    } finally {
      client.close();
    }
  });
});
