/**
 * A grpc-js server interceptor that times every call (unary and streaming, our services, health and
 * reflection alike) from its start to the status the server sends, and hands the method, the status
 * code and the google.rpc.ErrorInfo reason to DaemonMetrics. A call the client cancels is recorded as
 * CANCELLED when it goes away.
 */
import { ServerInterceptingCall, status as Status } from '@grpc/grpc-js';
import type { ServerInterceptor } from '@grpc/grpc-js';
import { errorInfoOf } from '../rpc-status';
import type { DaemonMetrics } from './daemon-metrics';

const CODE_NAMES = new Map<number, string>(Object.entries(Status).filter(([, value]) => typeof value === 'number').map(([name, value]) => [value as number, name]));

export function codeName(code: number): string {
  return CODE_NAMES.get(code) ?? String(code);
}

export function rpcMetricsInterceptor(metrics: DaemonMetrics): ServerInterceptor {
  return (method, call) => {
    const started = process.hrtime.bigint();
    let recorded = false;
    const record = (code: number, reason?: string) => {
      if (recorded) return;
      recorded = true;
      metrics.observeRpc(method.path, codeName(code), Number(process.hrtime.bigint() - started) / 1e9, reason);
    };
    return new ServerInterceptingCall(call, {
      start: (next) => next({ onCancel: () => record(Status.CANCELLED) }),
      sendStatus: (status, next) => {
        // Decoding the details costs only on the error path.
        record(status.code, status.code === Status.OK ? undefined : errorInfoOf(status.metadata ?? undefined)?.reason);
        next(status);
      },
    });
  };
}
