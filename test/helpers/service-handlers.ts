/**
 * The gRPC handlers of an in-process daemon's services, called directly by the model tests: no
 * sockets, each call a plain object as grpc-js would hand it, answered through its callback.
 */
import { EventEmitter } from 'node:events';
import { Metadata, type Server } from '@grpc/grpc-js';
import type { ServiceContext } from '../../src/service/service-context';

/** What a handler answers a refused call with. */
export interface HandlerFailure {
  code: number;
  details: string;
  metadata: Metadata;
}

export type Handler = (call: unknown, callback: (error: HandlerFailure | null, response?: unknown) => void) => void;

/** Every handler of `services`, by method name, as they would be added to a server. */
export function serviceHandlers(context: ServiceContext, services: Array<new (context: ServiceContext) => { addToServer(server: Server): void }>): Record<string, Handler> {
  const handlers: Record<string, Handler> = {};
  const server = { addService: (_service: unknown, implementation: Record<string, Handler>) => Object.assign(handlers, implementation) };
  for (const Service of services) new Service(context).addToServer(server as never);
  return handlers;
}

/** A call's metadata with the token as `authorization: Bearer`; none without a token. */
export function bearerMetadata(token: string | undefined): Metadata {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

/** A unary call as grpc-js hands it to a handler; a test cancels it by setting `cancelled` and emitting 'cancelled'. */
export function unaryCallOf(request: object, token: string | undefined, deadline: Date | number = Infinity): EventEmitter & { request: object; metadata: Metadata; cancelled: boolean; getDeadline: () => Date | number } {
  return Object.assign(new EventEmitter(), { request, metadata: bearerMetadata(token), cancelled: false, getDeadline: () => deadline });
}
