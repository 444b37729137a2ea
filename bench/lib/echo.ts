/** Starts bench/echo/echo-server as a child process and makes clients for it. */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ChannelOptions, Client, credentials } from '@grpc/grpc-js';
import { loadEchoService } from '../echo/echo-proto';
import { removeWithChild, spawnTracked, stopChild } from './processes';

const ECHO_SERVER = join(__dirname, '..', 'echo', 'echo-server.js');

export interface EchoServer {
  tcpAddress: string;
  unixAddress: string;
  child: ChildProcess;
  stop(): Promise<number | string | null>;
}

export async function startEchoServer(maxMessageBytes: number, storeBytes = 0): Promise<EchoServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tensormem-bench-echo-'));
  const socket = join(dir, 'echo.sock');
  // stdin is a pipe: the server exits when it closes, so it cannot outlive the runner.
  const child = spawnTracked(process.execPath, [ECHO_SERVER, String(maxMessageBytes), socket, String(storeBytes)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  removeWithChild(dir, child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  let timer: NodeJS.Timeout | undefined;
  try {
    const addresses = await new Promise<string[]>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        try {
          const entry = JSON.parse(line) as { event?: string; addresses?: string[] };
          if (entry.event === 'listening' && entry.addresses) resolve(entry.addresses);
        } catch {
          // ignore
        }
      });
      void exited.then((code) => reject(new Error(`echo server exited with ${code}: ${stderr}`)));
      timer = setTimeout(() => reject(new Error(`echo server did not start in 20 s: ${stderr}`)), 20_000);
    });
    return {
      tcpAddress: addresses.find((a) => !a.startsWith('unix:'))!,
      unixAddress: addresses.find((a) => a.startsWith('unix:'))!,
      child,
      stop: () => {
        child.stdin!.end();
        return stopChild(child, 'SIGTERM', 5_000);
      },
    };
  } catch (error) {
    await stopChild(child, 'SIGKILL');
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** The channel options TensormemClient uses (max message size both ways). */
export function channelOptions(maxMessageBytes: number): ChannelOptions {
  return { 'grpc.max_receive_message_length': maxMessageBytes, 'grpc.max_send_message_length': maxMessageBytes };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EchoClient = Client & Record<string, any>;

export function echoClient(address: string, maxMessageBytes: number): EchoClient {
  const Echo = loadEchoService();
  return new Echo(address, credentials.createInsecure(), channelOptions(maxMessageBytes)) as EchoClient;
}
