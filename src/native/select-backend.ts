/**
 * --backend: cuda when asked for (failing with the CUDA error when it cannot start), host when asked
 * for, and for auto cuda when a CUDA device is visible, else host, saying why.
 */
import { totalmem } from 'node:os';
import type { Logger } from 'pino';
import type { DaemonConfig } from '../config/config';
import { resolveSize } from '../config/sizes';
import { createBackend, loadAddon } from './addon';
import type { NativeBackend } from './backend';

export function selectBackend(config: DaemonConfig, log: Logger): NativeBackend {
  const host = () =>
    createBackend('host', {
      deviceCount: config.emulatedDevices,
      deviceCapacityBytes: resolveSize(config.emulatedDevice, totalmem()),
      deviceName: 'tensormem emulated device',
    });
  if (config.backend === 'host') return host();
  if (config.backend === 'cuda') return cudaOrThrow();
  // An addon that is missing or does not load is no reason to fall back: the host backend needs it too.
  loadAddon();
  try {
    const cuda = cudaOrThrow();
    log.info({ event: 'backend_selected', backend: 'cuda', devices: cuda.deviceCount() }, 'backend auto: using cuda');
    return cuda;
  } catch (error) {
    log.warn({ event: 'backend_selected', backend: 'host', reason: (error as Error).message }, 'backend auto: no usable CUDA device, using the host backend (an emulated device in host RAM)');
    return host();
  }
}

function cudaOrThrow(): NativeBackend {
  const cuda = createBackend('cuda', {});
  if (cuda.deviceCount() === 0) throw new Error('CUDA backend unavailable: no CUDA device is visible');
  return cuda;
}
