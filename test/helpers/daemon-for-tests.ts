/**
 * A daemon process for the tests of one describe: called at the top of a describe, it starts the
 * daemon with `flags` before the tests and stops it after them (expecting exit 0), with a
 * TensormemClient of it and the base URL of its status listener (--metrics-listen). `options` are
 * startDaemon's environment and command prefix, and the client's options.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import type { ClientOptions } from '../../src/client/client-options';
import { TensormemClient } from '../../src/client/tensormem-client';
import { DaemonProcess, startDaemon } from './daemon-process';

export interface DaemonForTests {
  readonly daemon: DaemonProcess;
  readonly client: TensormemClient;
  /** http://HOST:PORT of the status listener. */
  readonly statusBase: string;
}

export interface DaemonForTestsOptions {
  env?: NodeJS.ProcessEnv;
  prefix?: string[];
  client?: ClientOptions;
}

export function daemonForTests(flags: string[], options: DaemonForTestsOptions = {}): DaemonForTests {
  let daemon: DaemonProcess | undefined;
  let client: TensormemClient | undefined;
  beforeAll(async () => {
    daemon = await startDaemon(flags, options.env, options.prefix);
    client = new TensormemClient(daemon.tcpAddress, options.client);
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
