/**
 * A daemon process for the tests of one describe: called at the top of a describe, it starts the
 * daemon with `flags` before the tests and stops it after them (expecting exit 0), with a
 * TensormemClient of it and the base URL of its status listener (--metrics-listen).
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from './daemon-process';

export interface DaemonForTests {
  readonly daemon: DaemonProcess;
  readonly client: TensormemClient;
  /** http://HOST:PORT of the status listener. */
  readonly statusBase: string;
}

export function daemonForTests(flags: string[]): DaemonForTests {
  let daemon: DaemonProcess | undefined;
  let client: TensormemClient | undefined;
  beforeAll(async () => {
    daemon = await startDaemon(flags);
    client = new TensormemClient(daemon.tcpAddress);
  });
  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });
  return {
    get daemon() {
      return daemon!;
    },
    get client() {
      return client!;
    },
    get statusBase() {
      return `http://${daemon!.logs.find((entry) => entry.event === 'listening')!.metricsAddress as string}`;
    },
  };
}
