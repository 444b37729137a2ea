/**
 * logGrpcThrough: grpc-js's own messages go into the daemon's JSON log (event "grpc_js"). grpc-js
 * filters them by GRPC_VERBOSITY first, so a debug line (GRPC_TRACE output) that reaches the log was
 * asked for: the daemon's --log-level (default info) must not drop it again; "silent" still does.
 */
import { Writable } from 'node:stream';
import { experimental, logVerbosity, setLogVerbosity, setLogger } from '@grpc/grpc-js';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { logGrpcThrough } from '../../src/daemon';

function capturedLog(level: string): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n')) if (text !== '') lines.push(JSON.parse(text) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level }, sink), lines };
}

describe('grpc-js messages in the daemon log', () => {
  afterEach(() => {
    setLogger(console);
    setLogVerbosity(logVerbosity.ERROR);
  });

  it('keeps a GRPC_TRACE (debug) line at the default --log-level info, with its own level', () => {
    const { log, lines } = capturedLog('info');
    logGrpcThrough(log);
    setLogVerbosity(logVerbosity.DEBUG);
    experimental.log(logVerbosity.DEBUG, 'subchannel | connecting to 127.0.0.1:%d', 7450);
    experimental.log(logVerbosity.ERROR, 'No address added out of total 1 resolved');
    expect(lines.map(({ level, event, msg }) => ({ level, event, msg }))).toEqual([
      { level: 20, event: 'grpc_js', msg: 'subchannel | connecting to 127.0.0.1:7450' },
      { level: 50, event: 'grpc_js', msg: 'No address added out of total 1 resolved' },
    ]);
    // The daemon's own debug lines still follow --log-level.
    log.debug('daemon detail');
    expect(lines).toHaveLength(2);
  });

  it('drops every grpc-js line at --log-level silent', () => {
    const { log, lines } = capturedLog('silent');
    logGrpcThrough(log);
    setLogVerbosity(logVerbosity.DEBUG);
    experimental.log(logVerbosity.DEBUG, 'trace line');
    experimental.log(logVerbosity.ERROR, 'error line');
    expect(lines).toEqual([]);
  });
});
