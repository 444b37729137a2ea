/**
 * --profile: the seed's "Recommended Configurations" (seeds/: DL4J "Memory Configuration"), scaled to
 * this machine. Each seed line is written for one reference machine; a profile keeps the seed's
 * *shares* of that machine and applies them to this one's RAM and VRAM:
 *
 *   host-maxbytes    = RAM × seed maxbytes / reference RAM          (the off-heap share)
 *                      − emulated devices (host backend: they are off-heap memory of this process, so
 *                        they come out of the share; at least a quarter of the share is left)
 *   maxphysicalbytes = host-maxbytes + emulated devices (host backend: they live in this process's RAM)
 *                      + max(RAM × (seed maxphysicalbytes − seed maxbytes) / reference RAM, V8 heap limit)
 *                      (the seed: "Should be set to maxbytes + Xmx + overhead"; V8's heap limit is our -Xmx)
 *   device-reserve   = what is left to the CUDA runtime, driver and cuDNN; --maxbytes = VRAM − reserve
 *
 * Sizes are floored to whole MiB. Applied only to values that no flag, TENSORMEM_* variable or config
 * file sets (precedence: flags > env > config file > profile > defaults); each value it sets carries the
 * source `profile:NAME` in GetConfig.
 */
import { GiB, MiB } from '../units';
import { defaultDeviceReserve, workingDeviceReserve } from '../memory/limits';
import type { ConfigSource, DaemonConfig } from './config';
import { resolveSize } from './sizes';

export type ProfileName = NonNullable<DaemonConfig['profile']>;

export interface ProfileSpec {
  name: ProfileName;
  /** The seed's command line for its reference machine, quoted. */
  seedLine: string;
  referenceRamBytes: number;
  /** The seed's -Dorg.bytedeco.javacpp.maxbytes (off-heap) and maxphysicalbytes on that machine. */
  seedMaxBytes: number;
  seedMaxPhysicalBytes: number;
  /** gpu-training: host off-heap is also bounded by the device caps summed (it holds their mirrors). */
  hostFollowsDevices: boolean;
  /** Bytes of one device left to the CUDA runtime, driver and cuDNN. */
  deviceReserve(totalBytes: number): number;
}

/** gpu-training: the seed's three data points, 16G → 14G, 24G → 22G, 40G → 36G, are max(2 GiB, VRAM/10 floored to GiB). */
function trainingReserve(totalBytes: number): number {
  if (totalBytes < 16 * GiB) return defaultDeviceReserve(totalBytes);
  return Math.max(2 * GiB, Math.floor(totalBytes / 10 / GiB) * GiB);
}

export const PROFILES: Record<ProfileName, ProfileSpec> = {
  // "Development workstation (16 GB RAM, CPU only)": a modest heap, most of RAM off-heap, a cap
  // below RAM that leaves the desktop room to live.
  workstation: {
    name: 'workstation',
    seedLine: '-Xms1G -Xmx4G -Dorg.bytedeco.javacpp.maxbytes=10G -Dorg.bytedeco.javacpp.maxphysicalbytes=14G (16 GB RAM)',
    referenceRamBytes: 16 * GiB,
    seedMaxBytes: 10 * GiB,
    seedMaxPhysicalBytes: 14 * GiB,
    hostFollowsDevices: false,
    deviceReserve: defaultDeviceReserve,
  },
  // "Server training (64 GB RAM, CPU only)": "Keep the JVM heap relatively small. DL4J's training data
  // and model parameters live in off-heap memory" — three quarters of RAM off-heap.
  server: {
    name: 'server',
    seedLine: '-Xms2G -Xmx8G -Dorg.bytedeco.javacpp.maxbytes=48G -Dorg.bytedeco.javacpp.maxphysicalbytes=58G (64 GB RAM)',
    referenceRamBytes: 64 * GiB,
    seedMaxBytes: 48 * GiB,
    seedMaxPhysicalBytes: 58 * GiB,
    hostFollowsDevices: false,
    deviceReserve: defaultDeviceReserve,
  },
  // "GPU training (24 GB VRAM, 64 GB system RAM)": "Set maxbytes slightly below VRAM capacity to leave
  // room for CUDA runtime overhead and cuDNN workspace allocations." The seed's maxbytes is shared by
  // the GPU and CPU pools ("The GPU and CPU off-heap pools share this limit") and every device array
  // has a host mirror, so host off-heap is the device caps summed, bounded by the seed's share of RAM.
  'gpu-training': {
    name: 'gpu-training',
    seedLine: '-Xms2G -Xmx6G -Dorg.bytedeco.javacpp.maxbytes=22G -Dorg.bytedeco.javacpp.maxphysicalbytes=30G (24 GB VRAM, 64 GB RAM)',
    referenceRamBytes: 64 * GiB,
    seedMaxBytes: 22 * GiB,
    seedMaxPhysicalBytes: 30 * GiB,
    hostFollowsDevices: true,
    deviceReserve: trainingReserve,
  },
  // "Inference server (low latency, 32 GB RAM, CPU)": the smallest heap (-Xmx2G), half of RAM
  // off-heap, the tightest cap.
  inference: {
    name: 'inference',
    seedLine: '-Xms512m -Xmx2G -Dorg.bytedeco.javacpp.maxbytes=16G -Dorg.bytedeco.javacpp.maxphysicalbytes=20G (32 GB RAM)',
    referenceRamBytes: 32 * GiB,
    seedMaxBytes: 16 * GiB,
    seedMaxPhysicalBytes: 20 * GiB,
    hostFollowsDevices: false,
    deviceReserve: defaultDeviceReserve,
  },
};

export interface MachineFacts {
  ramBytes: number;
  /** Total bytes of each device (VRAM, or the emulated device's capacity on the host backend). */
  deviceTotalBytes: number[];
  backend: 'cuda' | 'host';
  /** V8's heap limit (the analogue of -Xmx). */
  heapLimitBytes: number;
}

export interface ProfileValues {
  /** Each device's reserve, by the profile's rule for that device's size. */
  deviceReserveBytes: number[];
  /** One --maxbytes when every device has the same size (VRAM − reserve); undefined otherwise (derived per device from its reserve). */
  maxBytes?: number;
  hostMaxBytes: number;
  maxPhysicalBytes: number;
}

const floorMiB = (bytes: number) => Math.floor(bytes / MiB) * MiB;
const ceilMiB = (bytes: number) => Math.ceil(bytes / MiB) * MiB;

/** ramBytes × part / whole without overflowing 2^53 for any real RAM size. */
const share = (ramBytes: number, part: number, whole: number) => floorMiB(Number((BigInt(ramBytes) * BigInt(part)) / BigInt(whole)));

/**
 * The reserve profile `name` leaves on a device of `totalBytes`. One that would take the whole device
 * (1G of a card of 1 GiB or less, served with --allow-small-device) is a quarter of it instead, as the
 * daemon's own refusal suggests: a pool of 0 is refused at start, so the profile would give a
 * configuration the daemon does not run.
 */
export function profileDeviceReserve(name: ProfileName, totalBytes: number): number {
  const reserve = PROFILES[name].deviceReserve(totalBytes);
  return reserve < totalBytes ? reserve : workingDeviceReserve(totalBytes);
}

/**
 * The profile's values on this machine. `given` carries what a flag, variable or config file already
 * decides, so that the values derived from it (host mirrors of the device caps, the physical cap over
 * host-maxbytes) follow the effective setting rather than the profile's own.
 */
export function profileValues(name: ProfileName, machine: MachineFacts, given: { deviceCapsBytes?: number[]; hostMaxBytes?: number } = {}): ProfileValues {
  const profile = PROFILES[name];
  // Each device its own reserve: one computed on the largest and applied to all would leave a smaller
  // card less than the seed's share, or nothing (gpu-training's 4G of a 40G card takes all of a 4G one).
  const deviceReserveBytes = machine.deviceTotalBytes.map((total) => profileDeviceReserve(name, total));
  const caps = given.deviceCapsBytes ?? machine.deviceTotalBytes.map((total, index) => Math.max(0, total - deviceReserveBytes[index]));
  const sameSize = machine.deviceTotalBytes.length > 0 && machine.deviceTotalBytes.every((total) => total === machine.deviceTotalBytes[0]);
  const emulatedBytes = machine.backend === 'host' ? machine.deviceTotalBytes.reduce((sum, total) => sum + total, 0) : 0;
  // The seed's maxbytes is all of the process's off-heap memory; on the host backend the emulated devices
  // are part of it (added on top, workstation's physical cap came out above RAM with the default device).
  const offHeapShare = share(machine.ramBytes, profile.seedMaxBytes, profile.referenceRamBytes);
  let hostMaxBytes = Math.max(floorMiB(offHeapShare - emulatedBytes), floorMiB(offHeapShare / 4));
  if (profile.hostFollowsDevices) hostMaxBytes = Math.min(hostMaxBytes, floorMiB(caps.reduce((sum, cap) => sum + cap, 0)));
  const effectiveHostBytes = given.hostMaxBytes ?? hostMaxBytes;
  const overheadBytes = Math.max(share(machine.ramBytes, profile.seedMaxPhysicalBytes - profile.seedMaxBytes, profile.referenceRamBytes), machine.heapLimitBytes);
  return {
    deviceReserveBytes,
    maxBytes: sameSize ? caps[0] : undefined,
    hostMaxBytes,
    maxPhysicalBytes: ceilMiB(effectiveHostBytes + emulatedBytes + overheadBytes),
  };
}

/**
 * The configuration with the profile's values filled in where the value's source is a default (or it
 * has none); returns `config` itself when no --profile is set.
 */
export function applyProfile(config: DaemonConfig, machine: MachineFacts): DaemonConfig {
  if (!config.profile) return config;
  const source: ConfigSource = `profile:${config.profile}`;
  const unset = (name: string) => config.sources[name] === undefined || config.sources[name] === 'default';
  const devicesGiven = !unset('maxbytes') || !unset('device-reserve');
  const given = {
    deviceCapsBytes: devicesGiven
      ? machine.deviceTotalBytes.map((total) =>
          config.maxBytes ? resolveSize(config.maxBytes, total) : Math.max(0, total - (config.deviceReserve ? resolveSize(config.deviceReserve, total) : defaultDeviceReserve(total))),
        )
      : undefined,
    hostMaxBytes: unset('host-maxbytes') ? undefined : resolveSize(config.hostMaxBytes, machine.ramBytes),
  };
  const values = profileValues(config.profile, machine, given);
  const next: DaemonConfig = { ...config, sources: { ...config.sources }, rawValues: { ...config.rawValues } };
  const set = (name: string, bytes: number) => {
    next.sources[name] = source;
    next.rawValues[name] = String(bytes);
    return { kind: 'bytes' as const, bytes };
  };
  // A --maxbytes or --device-reserve given by the user decides the device caps; the profile's do not mix in.
  if (!devicesGiven && values.maxBytes !== undefined) {
    next.deviceReserve = set('device-reserve', values.deviceReserveBytes[0]);
    next.maxBytes = set('maxbytes', values.maxBytes);
  } else if (!devicesGiven && values.deviceReserveBytes.length > 0) {
    // Devices of different sizes: one reserve per device, which no single --device-reserve value says.
    next.deviceReserveByDevice = values.deviceReserveBytes;
    next.sources['device-reserve'] = source;
    next.rawValues['device-reserve'] = values.deviceReserveBytes.join(',');
  }
  if (given.hostMaxBytes === undefined) next.hostMaxBytes = set('host-maxbytes', values.hostMaxBytes);
  if (unset('maxphysicalbytes')) next.maxPhysicalBytes = set('maxphysicalbytes', values.maxPhysicalBytes);
  return next;
}
