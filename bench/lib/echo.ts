/** Starts bench/echo/echo-server as a child process and makes clients for it. */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChannelOptions, Client, credentials } from '@grpc/grpc-js';
import { loadEchoService } from '../echo/echo-proto';
import { startServerChild } from './server-child';
import { DEFAULT_FLOW_CONTROL_WINDOW_BYTES } from '../../src/client/client-options';

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
  const server = await startServerChild('echo server', ECHO_SERVER, [String(maxMessageBytes), socket, String(storeBytes)], dir);
  return {
    tcpAddress: server.addresses.find((a) => !a.startsWith('unix:'))!,
    unixAddress: server.addresses.find((a) => a.startsWith('unix:'))!,
    child: server.child,
    stop: server.stop,
  };
}

/** The channel options TensormemClient uses (max message size both ways, its HTTP/2 receive window). */
export function channelOptions(maxMessageBytes: number): ChannelOptions {
  return { 'grpc.max_receive_message_length': maxMessageBytes, 'grpc.max_send_message_length': maxMessageBytes, 'grpc-node.flow_control_window': DEFAULT_FLOW_CONTROL_WINDOW_BYTES };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EchoClient = Client & Record<string, any>;

export function echoClient(address: string, maxMessageBytes: number): EchoClient {
  const Echo = loadEchoService();
  return new Echo(address, credentials.createInsecure(), channelOptions(maxMessageBytes)) as EchoClient;
}
