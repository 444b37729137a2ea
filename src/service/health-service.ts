/**
 * grpc.health.v1 (Check, Watch, List) from grpc-health-check, with one change: a Watch stream ends once the
 * daemon drains, right after the NOT_SERVING the drain writes to it, so that a health watcher left open
 * does not hold SIGTERM for the whole --shutdown-timeout.
 */
import type { Server, ServerWritableStream, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { toServiceError } from './errors';
import { endWhenDraining, shuttingDownError, type ServiceContext } from './service-context';

export function addHealthService(server: Server, context: ServiceContext, serviceNames: string[]): HealthImplementation {
  const health = new HealthImplementation(Object.fromEntries([['', 'SERVING'], ...serviceNames.map((name) => [name, 'SERVING'])]));
  const endingWatches = {
    addService(service: ServiceDefinition, implementation: UntypedServiceImplementation): void {
      const watch = implementation.watch as (call: ServerWritableStream<unknown, unknown>) => void;
      server.addService(service, {
        ...implementation,
        watch: (call: ServerWritableStream<unknown, unknown>) => {
          watch(call);
          endWhenDraining(context, call, () => call.emit('error', toServiceError(shuttingDownError())));
        },
      });
    },
  };
  health.addToServer(endingWatches as unknown as Server);
  return health;
}
