/**
 * The caps, resolved once the backend is up (DESIGN.md §3): --maxbytes per device pool (default
 * VRAM − --device-reserve), --host-maxbytes, and --maxphysicalbytes (default host-maxbytes +
 * 3 × V8 heap limit, JavaCPP's rule since 1.5.6, plus the emulated devices on the host backend since
 * their memory is part of this process's resident set; 0 = no process cap, as in JavaCPP).
 *
 * A pool cap of 0 (a --device-reserve as large as the device, --maxbytes 0 or a percentage that floors
 * to 0, --host-maxbytes 0) would refuse every allocation of that pool, so the daemon refuses to start
 * with it; zeroDeviceCapProblem / zeroHostCapProblem word the refusal, and `tensormemctl doctor` reports
 * the same words as an error.
 */
import { getHeapStatistics } from 'node:v8';
import { totalmem } from 'node:os';
import { DaemonConfig } from '../config/config';
import { envName, findFlag } from '../config/flags';
import { resolveSize } from '../config/sizes';
import { GiB, MiB, formatBytes, formatIec } from '../units';
import { TensormemError, failedPrecondition, invalidArgument } from '../errors';
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

/**
 * Caps given directly, as flags would give them (no reserve, no derivation): for tests, the benchmark's
 * in-process rows and anything else that builds a MemoryManager without a DaemonConfig.
 */
export function givenLimits(maxBytes: number[], hostMaxBytes: number, maxPhysicalBytes = 0): ResolvedLimits {
  return { maxBytes, hostMaxBytes, maxPhysicalBytes, deviceReserveBytes: [], sources: { maxbytes: 'flag', 'device-reserve': 'derived', 'host-maxbytes': 'flag', maxphysicalbytes: 'flag' } };
}

export function defaultDeviceReserve(totalBytes: number): number {
  return totalBytes >= 16 * GiB ? 2 * GiB : 1 * GiB;
}

/**
 * A reserve that leaves the pool something: the default, or a quarter of a device too small for the
 * default (whole MiB when that is at least 1 MiB).
 */
export function workingDeviceReserve(totalBytes: number): number {
  const reserve = defaultDeviceReserve(totalBytes);
  if (reserve < totalBytes) return reserve;
  const quarter = Math.floor(totalBytes / 4);
  return quarter >= MiB ? Math.floor(quarter / MiB) * MiB : quarter;
}

/** Bytes as a flag value: "22G", "1536M", or plain bytes. */
export function sizeFlag(bytes: number): string {
  if (bytes % GiB === 0) return `${bytes / GiB}G`;
  if (bytes % MiB === 0) return `${bytes / MiB}M`;
  return String(bytes);
}

/** Where a configured value came from, in words: "set by --maxbytes", "from TENSORMEM_MAXBYTES", "from --profile server", … */
export function describeSource(flagName: string, source: string | undefined, configFile?: string): string {
  if (source === 'flag') return `set by --${flagName}`;
  if (source === 'env') return `from ${envName(findFlag(flagName)!)}`;
  if (source === 'file') return configFile ? `from the config file ${configFile}` : 'from the config file';
  if (source?.startsWith('profile:')) return `from --profile ${source.slice('profile:'.length)}`;
  if (source === 'derived') return 'derived';
  return 'the default';
}

/**
 * A flag as a refusal names it: with the variable, config file key or profile its value came from when
 * that was not a flag ("--maxbytes (from TENSORMEM_MAXBYTES)"), as loadConfig names a bad value.
 */
export function sourcedFlag(config: Pick<DaemonConfig, 'sources' | 'rawValues'>, flagName: string): string {
  const source = config.sources?.[flagName];
  if (source === 'env') return `--${flagName} (from ${envName(findFlag(flagName)!)})`;
  if (source === 'file') return `--${flagName} (from ${config.rawValues?.config ? `${config.rawValues.config}: ` : 'the config file: '}${flagName})`;
  if (source?.startsWith('profile:')) return `--${flagName} (from --profile ${source.slice('profile:'.length)})`;
  return `--${flagName}`;
}

/** How a device pool's cap was arrived at: what the messages about a cap of 0 say. */
export interface DeviceCapOrigin {
  /** "derived" (the device's memory − --device-reserve), or where --maxbytes came from ("flag", "env", "file", "profile:NAME"). */
  maxbytesSource: string;
  /** --maxbytes as given ("0%"), when known. */
  maxbytesText?: string;
  /** The reserve in bytes, when the cap is derived and the reserve is known. */
  reserveBytes?: number;
  /** Where --device-reserve came from ("derived" = the default for the device's size). */
  reserveSource?: string;
  /** --device-reserve as given ("100%"), when known. */
  reserveText?: string;
  /** The config file, when a value came from one. */
  configFile?: string;
}

/** How --host-maxbytes was arrived at. */
export interface HostCapOrigin {
  source: string;
  /** --host-maxbytes as given ("0", "0%"), when known. */
  text?: string;
  configFile?: string;
}

export interface CapProblem {
  flag: '--maxbytes' | '--host-maxbytes';
  /** What is wrong, where the value came from, and that the daemon refuses to start. */
  what: string;
  /** Flags that work instead (doctor's "fix"); undefined when none would. */
  fix?: string;
}

export interface CapDevice {
  index: number;
  name: string;
  totalBytes: number;
}

const isDerived = (source: string | undefined) => source === undefined || source === 'derived';
/** Whole MiB below `bytes`, or `bytes` itself under 1 MiB (never 0 unless `bytes` is). */
const floorMiB = (bytes: number) => (bytes >= MiB ? Math.floor(bytes / MiB) * MiB : bytes);

/**
 * One setting that gives `device` a pool above 0 in place of the 0 that `origin` gave it: a smaller
 * --device-reserve when the cap is derived, else a --maxbytes; undefined when none can (no memory).
 */
export function workingDeviceCapFlag(device: CapDevice, origin: DeviceCapOrigin | undefined): string | undefined {
  const reserve = workingDeviceReserve(device.totalBytes);
  const cap = device.totalBytes - reserve;
  if (cap <= 0) return undefined;
  return origin === undefined || isDerived(origin.maxbytesSource) ? `--device-reserve ${sizeFlag(reserve)}` : `--maxbytes ${sizeFlag(floorMiB(cap))}`;
}

/** What gives `device` a pool above 0 (doctor's "fix"), or undefined when nothing can (a device without memory). */
export function zeroDeviceCapFix(device: CapDevice, origin: DeviceCapOrigin | undefined, emulated: boolean): string | undefined {
  const flag = workingDeviceCapFlag(device, origin);
  if (flag === undefined) return emulated ? '--emulated-device 4G (the emulated device has no memory to lend)' : undefined;
  if (flag.startsWith('--maxbytes')) return flag;
  return `${flag} (a smaller reserve), or --maxbytes ${sizeFlag(floorMiB(device.totalBytes - workingDeviceReserve(device.totalBytes)))}`;
}

/** Why `device`'s pool cap of 0 is refused, where the 0 came from, and what works instead. */
export function zeroDeviceCapProblem(device: CapDevice, origin: DeviceCapOrigin | undefined, emulated: boolean): CapProblem {
  const label = `device ${device.index} (${device.name}, ${formatIec(device.totalBytes)})`;
  let from: string;
  if (origin === undefined) {
    from = '';
  } else if (isDerived(origin.maxbytesSource)) {
    const reserve = origin.reserveBytes !== undefined ? `${formatIec(origin.reserveBytes)} ` : '';
    const reserveFrom = isDerived(origin.reserveSource)
      ? `the default for a device ${device.totalBytes >= 16 * GiB ? 'of 16 GiB or more' : 'under 16 GiB'}`
      : `${origin.reserveText !== undefined ? `"${origin.reserveText}", ` : ''}${describeSource('device-reserve', origin.reserveSource, origin.configFile)}`;
    from = `, derived as the device's ${formatIec(device.totalBytes)} minus --device-reserve ${reserve}(${reserveFrom})`;
  } else {
    from = `, ${origin.maxbytesText !== undefined ? `"${origin.maxbytesText}" ` : ''}${describeSource('maxbytes', origin.maxbytesSource, origin.configFile)}`;
  }
  return {
    flag: '--maxbytes',
    what: `--maxbytes is 0 bytes on ${label}${from}: a pool capped at 0 refuses every device allocation; the daemon refuses to start`,
    fix: zeroDeviceCapFix(device, origin, emulated),
  };
}

/** Why a --host-maxbytes of 0 is refused, where it came from, and what works instead. */
export function zeroHostCapProblem(origin: HostCapOrigin | undefined): CapProblem {
  const from = origin === undefined ? '' : ` (${origin.text !== undefined ? `"${origin.text}", ` : ''}${describeSource('host-maxbytes', origin.source, origin.configFile)})`;
  return {
    flag: '--host-maxbytes',
    what: `--host-maxbytes is 0 bytes${from}: host mirrors (every ReadArray of a device array goes through one), HOST_ONLY arrays and host-side workspace buffers would all be refused; the daemon refuses to start`,
    fix: '--host-maxbytes 25% (the default share of RAM)',
  };
}

/** The error the daemon stops with for a cap of 0. */
export function capProblemError(problem: CapProblem): TensormemError {
  return new TensormemError('INVALID_ARGUMENT', 'INVALID_ARGUMENT', `${problem.what}. ${problem.fix ? `Fix: ${problem.fix}.` : 'No setting gives this device a pool.'}`, { field: problem.flag });
}

/** Where each device cap of `config` came from (for the messages about a cap of 0). */
export function deviceCapOrigin(config: DaemonConfig, limits: ResolvedLimits, index: number): DeviceCapOrigin {
  return {
    maxbytesSource: limits.sources.maxbytes,
    maxbytesText: config.maxBytes ? config.rawValues?.maxbytes : undefined,
    reserveBytes: limits.deviceReserveBytes[index],
    reserveSource: limits.sources['device-reserve'],
    reserveText: config.deviceReserve ? config.rawValues?.['device-reserve'] : undefined,
    configFile: config.rawValues?.config || undefined,
  };
}

export function hostCapOrigin(config: DaemonConfig, limits: ResolvedLimits): HostCapOrigin {
  return { source: limits.sources['host-maxbytes'], text: config.rawValues?.['host-maxbytes'], configFile: config.rawValues?.config || undefined };
}

/**
 * The caps as `config` gives them, refusing nothing: a cap above the device, a small device and caps of
 * 0 come back as they are (`tensormemctl doctor` reports them). The daemon uses resolveLimits.
 */
export function computeLimits(config: DaemonConfig, backend: BackendName, devices: DeviceMemoryInfo[], physicalRamBytes = totalmem()): ResolvedLimits {
  const heapLimitBytes = getHeapStatistics().heap_size_limit;
  const deviceReserveBytes = devices.map(
    (device, index) =>
      config.deviceReserveByDevice?.[index] ?? (config.deviceReserve ? resolveSize(config.deviceReserve, device.totalBytes) : defaultDeviceReserve(device.totalBytes)),
  );
  const maxBytes = devices.map((device, index) =>
    config.maxBytes ? resolveSize(config.maxBytes, device.totalBytes) : Math.max(0, device.totalBytes - deviceReserveBytes[index]),
  );
  const hostMaxBytes = resolveSize(config.hostMaxBytes, physicalRamBytes);
  const emulatedBytes = backend === 'host' ? devices.reduce((sum, device) => sum + device.totalBytes, 0) : 0;
  // Derived: JavaCPP's rule, at most the machine's RAM (a cap above RAM prevents nothing: the kernel's
  // OOM killer acts first, and doctor warned on the defaults of small machines).
  const maxPhysicalBytes = config.maxPhysicalBytes
    ? resolveSize(config.maxPhysicalBytes, physicalRamBytes)
    : Math.min(hostMaxBytes + emulatedBytes + 3 * heapLimitBytes, physicalRamBytes);
  const source = (name: string) => config.sources[name] ?? 'derived';
  return {
    maxBytes,
    hostMaxBytes,
    maxPhysicalBytes,
    deviceReserveBytes,
    sources: {
      maxbytes: config.maxBytes ? source('maxbytes') : 'derived',
      'device-reserve': config.deviceReserve || config.deviceReserveByDevice ? source('device-reserve') : 'derived',
      'host-maxbytes': source('host-maxbytes'),
      maxphysicalbytes: config.maxPhysicalBytes ? source('maxphysicalbytes') : 'derived',
    },
  };
}

/**
 * A percentage of `name` that is not 0 but comes to 0 bytes of `baseBytes`, refused as a size under a
 * byte is (sizes.ts): 0 turns --maxphysicalbytes off, and leaves the CUDA runtime no --device-reserve.
 * (A --maxbytes or --host-maxbytes of 0 is refused however it came, in words of its own.)
 */
function refuseFlooredPercent(config: DaemonConfig, name: 'maxphysicalbytes' | 'device-reserve', baseBytes: number, base: string, expected: string): void {
  const spec = name === 'maxphysicalbytes' ? config.maxPhysicalBytes : config.deviceReserve;
  if (spec?.kind !== 'percent' || spec.percent === 0 || resolveSize(spec, baseBytes) > 0) return;
  throw invalidArgument(sourcedFlag(config, name), expected, `${config.rawValues?.[name] ?? `${spec.percent}%`} (0 bytes of ${base}, ${formatBytes(baseBytes)})`);
}

/** refuseFlooredPercent of --maxphysicalbytes (against RAM) and of --device-reserve (against each device); tensormemctl doctor reports its refusal. */
export function refuseFlooredPercents(config: DaemonConfig, devices: DeviceMemoryInfo[], physicalRamBytes: number): void {
  refuseFlooredPercent(config, 'maxphysicalbytes', physicalRamBytes, "the machine's RAM", 'a share of RAM that comes to at least 1 byte, or 0 (no cap)');
  devices.forEach((device, index) => refuseFlooredPercent(config, 'device-reserve', device.totalBytes, `device ${index}`, 'a share of device memory that comes to at least 1 byte, or 0'));
}

/**
 * The caps the daemon runs with. Refuses a device under 2 GiB (unless --allow-small-device), a pool cap
 * above its device, a pool or host cap of 0, and a --maxphysicalbytes or --device-reserve percentage
 * that comes to 0 bytes. A --maxphysicalbytes of 0 is no process cap.
 */
export function resolveLimits(config: DaemonConfig, backend: BackendName, devices: DeviceMemoryInfo[], physicalRamBytes = totalmem()): ResolvedLimits {
  devices.forEach((device, index) => {
    if (device.totalBytes < MIN_DEVICE_BYTES && !config.allowSmallDevice) {
      // On the host backend the size is a setting: name where it came from, so the fix can be a larger one.
      const sizedBy = backend === 'host' ? `, set by ${sourcedFlag(config, 'emulated-device')} ${config.rawValues?.['emulated-device'] ?? ''}`.trimEnd() : '';
      const larger = backend === 'host' ? ' or give the emulated device 2G or more' : '';
      throw failedPrecondition(
        `Device ${index} (${device.name}) has ${formatBytes(device.totalBytes)}${sizedBy}, under the 2 GiB minimum ` +
          `("GPUs with less than 2 GB VRAM are not suitable"); pass --allow-small-device to serve it anyway${larger}.`,
      );
    }
  });
  refuseFlooredPercents(config, devices, physicalRamBytes);
  const limits = computeLimits(config, backend, devices, physicalRamBytes);
  limits.maxBytes.forEach((cap, index) => {
    const device = devices[index];
    if (cap > device.totalBytes) {
      const given = config.rawValues?.maxbytes;
      throw invalidArgument(sourcedFlag(config, 'maxbytes'), `at most device ${index}'s memory, ${formatBytes(device.totalBytes)}`, given ? `${given} (${cap} bytes, ${formatIec(cap)})` : formatBytes(cap));
    }
    if (cap === 0) {
      throw capProblemError(zeroDeviceCapProblem({ index, name: device.name, totalBytes: device.totalBytes }, deviceCapOrigin(config, limits, index), backend === 'host'));
    }
  });
  if (limits.hostMaxBytes === 0) throw capProblemError(zeroHostCapProblem(hostCapOrigin(config, limits)));
  return limits;
}
