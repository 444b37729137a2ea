/**
 * The caps, resolved once the backend is up (DESIGN.md §3): --maxbytes per device pool (default
 * VRAM − --device-reserve), --host-maxbytes, and --maxphysicalbytes (default host-maxbytes +
 * 3 × V8 heap limit, JavaCPP's rule since 1.5.6, plus the emulated devices on the host backend since
 * their memory is part of this process's resident set).
 */
import { getHeapStatistics } from 'node:v8';
import { totalmem } from 'node:os';
import { DaemonConfig } from '../config/config';
import { resolveSize } from '../config/sizes';
import { GiB, formatBytes } from '../units';
import { failedPrecondition, invalidArgument } from '../errors';
import type { BackendName, DeviceMemoryInfo } from '../native/backend';

/** Devices smaller than this are refused unless --allow-small-device (the seed: "less than 2 GB VRAM are not suitable"). */
export const MIN_DEVICE_BYTES = 2 * GiB;

export interface ResolvedLimits {
  /** Pool cap per device index. */
  maxBytes: number[];
  hostMaxBytes: number;
  maxPhysicalBytes: number;
  /** "flag" | "env" | "file" | "default" | "derived", per limit name. */
  sources: Record<'maxbytes' | 'device-reserve' | 'host-maxbytes' | 'maxphysicalbytes', string>;
  deviceReserveBytes: number[];
}

export function defaultDeviceReserve(totalBytes: number): number {
  return totalBytes >= 16 * GiB ? 2 * GiB : 1 * GiB;
}

export function resolveLimits(config: DaemonConfig, backend: BackendName, devices: DeviceMemoryInfo[], physicalRamBytes = totalmem()): ResolvedLimits {
  const heapLimitBytes = getHeapStatistics().heap_size_limit;
  const deviceReserveBytes = devices.map((device) =>
    config.deviceReserve ? resolveSize(config.deviceReserve, device.totalBytes) : defaultDeviceReserve(device.totalBytes),
  );
  const maxBytes = devices.map((device, index) => {
    if (device.totalBytes < MIN_DEVICE_BYTES && !config.allowSmallDevice) {
      throw failedPrecondition(
        `Device ${index} (${device.name}) has ${formatBytes(device.totalBytes)}, under the 2 GiB minimum ` +
          `("GPUs with less than 2 GB VRAM are not suitable"); pass --allow-small-device to serve it anyway.`,
      );
    }
    const cap = config.maxBytes ? resolveSize(config.maxBytes, device.totalBytes) : Math.max(0, device.totalBytes - deviceReserveBytes[index]);
    if (cap > device.totalBytes) {
      throw invalidArgument('--maxbytes', `at most device ${index}'s memory, ${formatBytes(device.totalBytes)}`, formatBytes(cap));
    }
    return cap;
  });
  const hostMaxBytes = resolveSize(config.hostMaxBytes, physicalRamBytes);
  const emulatedBytes = backend === 'host' ? devices.reduce((sum, device) => sum + device.totalBytes, 0) : 0;
  const maxPhysicalBytes = config.maxPhysicalBytes
    ? resolveSize(config.maxPhysicalBytes, physicalRamBytes)
    : hostMaxBytes + emulatedBytes + 3 * heapLimitBytes;
  const source = (name: string) => config.sources[name] ?? 'derived';
  return {
    maxBytes,
    hostMaxBytes,
    maxPhysicalBytes,
    deviceReserveBytes,
    sources: {
      maxbytes: config.maxBytes ? source('maxbytes') : 'derived',
      'device-reserve': config.deviceReserve ? source('device-reserve') : 'derived',
      'host-maxbytes': source('host-maxbytes'),
      maxphysicalbytes: config.maxPhysicalBytes ? source('maxphysicalbytes') : 'derived',
    },
  };
}
