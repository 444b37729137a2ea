/**
 * A lost CUDA context. Some CUDA errors are sticky: after an illegal address, a launch failure or an
 * uncorrectable ECC error "the process is left in an inconsistent state and any further CUDA work will
 * return the same error. To continue using CUDA, the process must be terminated and relaunched"
 * (driver_types.h). Until then every copy, fill and allocation of every tenant failed as an internal
 * error while health, /readyz and /healthz still said SERVING, so nothing restarted the daemon.
 *
 * watchDeviceFaults wraps the backend: the first sticky error any of its calls (or async copies) meets
 * is reported once to `onLost`, and from then on each failing call is UNAVAILABLE / DEVICE_LOST,
 * saying so and naming the CUDA error. The daemon drains and exits with status 1 (src/daemon.ts), so
 * that its supervisor (systemd's Restart=on-failure, Kubernetes) starts a new process.
 */
import { TensormemError } from '../errors';
import { isNativeError, type NativeError } from './backend';

/** The CUDA errors that leave the context unusable for the rest of the process (driver_types.h). */
export const STICKY_CUDA_ERRORS: ReadonlySet<string> = new Set([
  'cudaErrorIllegalAddress',
  'cudaErrorLaunchFailure',
  'cudaErrorLaunchTimeout',
  'cudaErrorHardwareStackError',
  'cudaErrorIllegalInstruction',
  'cudaErrorMisalignedAddress',
  'cudaErrorInvalidAddressSpace',
  'cudaErrorInvalidPc',
  'cudaErrorContained',
  'cudaErrorExternalDevice',
  'cudaErrorECCUncorrectable',
]);

export function isStickyCudaError(error: unknown): error is NativeError {
  return isNativeError(error) && error.cudaError !== undefined && STICKY_CUDA_ERRORS.has(error.cudaError);
}

export function deviceLostError(cause: NativeError): TensormemError {
  return new TensormemError(
    'UNAVAILABLE',
    'DEVICE_LOST',
    `The GPU's CUDA context is lost (${cause.message}): every CUDA call of this process fails from now on. ` +
      'tensormemd drains and exits with status 1 so that its supervisor restarts it; reopen your lease then.',
    { cuda_error: cause.cudaError ?? '' },
  );
}

/**
 * `backend` with each method's sticky CUDA errors (thrown, or rejecting an async copy) reported to
 * `onLost` (the first only) and turned into DEVICE_LOST. Other errors pass as they are.
 */
export function watchDeviceFaults<B extends object>(backend: B, onLost: (cause: NativeError) => void): B {
  let lost = false;
  const fault = (error: unknown): unknown => {
    if (!isStickyCudaError(error)) return error;
    if (!lost) {
      lost = true;
      onLost(error);
    }
    return deviceLostError(error);
  };
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(backend, {
    get(target, property) {
      // The native object's own accessors and methods, called on it (not on the proxy: node-addon-api
      // unwraps `this`, and a proxy is no wrapped object: "Invalid argument").
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function') return value;
      let wrapper = wrapped.get(property);
      if (wrapper === undefined) {
        const method = value as (...args: unknown[]) => unknown;
        wrapper = function (this: unknown, ...args: unknown[]): unknown {
          let result: unknown;
          try {
            result = method.apply(target, args);
          } catch (error) {
            throw fault(error);
          }
          return result instanceof Promise ? result.catch((error: unknown) => Promise.reject(fault(error))) : result;
        };
        wrapped.set(property, wrapper);
      }
      return wrapper;
    },
  });
}
