/** logTlsRefusals: a burst of refused handshakes on one listener is said in full when the 10 s are up, not only with a later refusal. */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { logTlsRefusals } from '../../src/config/tls-server-options';

function refusedSocket(remoteAddress: string): Socket {
  const socket = new EventEmitter() as unknown as Socket & { authorizationError: string };
  Object.assign(socket, { remoteAddress, authorizationError: 'CERT_HAS_EXPIRED', destroy: () => undefined });
  return socket;
}

describe('tls_handshake_refused', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('logs the first refusal at once and the rest of a burst when the 10 s are up, counted', () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = { warn: (fields: Record<string, unknown>) => lines.push(fields) };
    const server = new EventEmitter();
    logTlsRefusals(server as never, '--listen', log as never);
    for (const address of ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']) {
      const socket = refusedSocket(address);
      server.emit('connection', socket);
      server.emit('tlsClientError', Object.assign(new Error('refused'), { code: 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED' }), socket);
    }
    expect(lines).toEqual([expect.objectContaining({ event: 'tls_handshake_refused', refused: 1, remoteAddress: '10.0.0.1' })]);
    // Before, the three after the first were said only with a fifth refusal, which may never come.
    vi.advanceTimersByTime(10_000);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ event: 'tls_handshake_refused', listener: '--listen', reason: 'CERT_HAS_EXPIRED', refused: 3, remoteAddress: '10.0.0.4' });
    expect(lines.reduce((sum, line) => sum + (line.refused as number), 0)).toBe(4);
  });
});
