/**
 * `tensormemctl doctor`: the seed's "Summary of Common Pitfalls" (and its rules of thumb for GPU
 * memory) as rules over a resolved configuration and the facts of the machine. A pure function, so the
 * same rules judge a running daemon (GetConfig + GetMemoryInfo) and a proposed command line (parsed
 * offline by loadConfig); each finding says what, why in the seed's words, and the flag that fixes it.
 */
import {
  DeviceCapOrigin,
  HostCapOrigin,
  MIN_DEVICE_BYTES,
  sizeFlag,
  workingDeviceReserve,
  workingDeviceCapFlag,
  zeroDeviceCapProblem,
  zeroHostCapProblem,
} from '../memory/limits';
import { formatIec, GiB, MiB } from '../units';
import { profileDeviceReserve } from './profiles';

export { sizeFlag };

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  severity: Severity;
  /** Stable identifier of the rule, e.g. "maxbytes-above-vram". */
  rule: string;
  what: string;
  why: string;
  /** The daemon's flags with a suggested value. */
  fix: string;
}

export interface DoctorDevice {
  index: number;
  name: string;
  totalBytes: number;
  /** The pool cap (--maxbytes as resolved for this device). */
  maxBytes: number;
  /** Where the cap came from (flag, or derived from the device − --device-reserve), when known. */
  capOrigin?: DeviceCapOrigin;
}

/** A --tenants file of a proposed configuration, checked as tensormemd checks it at start. */
export interface DoctorTenants {
  file: string;
  /** The file could not be read or parsed (tensormemd's message). */
  readError?: string;
  /** tensormemd's refusal of the guarantees (checkGuaranteesFit): they add up to more than the smallest pool cap. */
  guaranteesError?: string;
  /** The device guarantees summed, when the file parsed. */
  guaranteeBytes?: number;
  /** Tenants (admins aside) with no quota.mmap, when the file parsed. */
  withoutMmapQuota?: string[];
  /** Its tenants (admins aside), when the file parsed: those with no max_mapped_regions, and the sum of those given. */
  mappedRegions?: { tenants: number; without: string[]; sum: number };
  /** When the file parsed: the tenants with a device guarantee, those (admins aside) with no quota.host, and the sum of those given. */
  hostQuotas?: { guaranteed: string[]; without: string[]; sum: number };
}

export interface DoctorFacts {
  backend: 'cuda' | 'host';
  devices: DoctorDevice[];
  /** Whether --maxbytes or --device-reserve was set (flag, env, file or profile) rather than derived. */
  deviceCapSet: boolean;
  hostMaxBytes: number;
  /** 0 = no process cap (JavaCPP's rule, and the daemon's). */
  maxPhysicalBytes: number;
  /** Whether --maxphysicalbytes was set rather than derived. */
  maxPhysicalSet: boolean;
  /** V8's heap limit: the daemon's -Xmx. */
  heapLimitBytes: number;
  mirror: 'lazy' | 'eager';
  /** --scrub: new memory zeroed before a lease sees it. Undefined when not known (an older daemon). */
  scrub?: boolean;
  allowSmallDevice: boolean;
  /** Physical RAM of the daemon's machine, when known. */
  ramBytes?: number;
  /** Where --host-maxbytes came from, when known. */
  hostCapOrigin?: HostCapOrigin;
  /** The --tenants file of a proposed configuration (offline doctor only). */
  tenants?: DoctorTenants;
  /** --mmap-maxbytes; 0 = no cap. Undefined when not known (an older daemon). */
  mmapMaxBytes?: number;
  /** --max-mapped-regions; 0 = no cap. Undefined when not known. */
  maxMappedRegions?: number;
  /**
   * Offline doctor only: tensormemd's refusal of an address that is not loopback or unix: in open mode
   * (no --tenants file) for --listen, --metrics-listen or --data-listen; undefined when it has none.
   */
  openModeAddressError?: string;
  /** Offline doctor only: tensormemd's refusal of a --maxphysicalbytes or --device-reserve share that comes to 0 bytes, or undefined. */
  percentToZeroError?: string;
  /** Offline doctor only: TENSORMEM_ variables the daemon ignores that look like one it reads (misspelledEnv). */
  misspelledEnv?: Array<{ name: string; meant: string }>;
}

const ceilGiB = (bytes: number) => Math.ceil(bytes / GiB) * GiB;
/** Whole MiB below `bytes`, or `bytes` itself under 1 MiB, so that a suggested size is never 0 unless `bytes` is. */
const floorMiBOrBytes = (bytes: number) => (bytes >= MiB ? Math.floor(bytes / MiB) * MiB : bytes);

const SEVERITY_ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

export function diagnose(facts: DoctorFacts): Finding[] {
  const findings: Finding[] = [];
  const add = (finding: Finding) => findings.push(finding);
  const cuda = facts.backend === 'cuda';
  const kind = cuda ? 'VRAM' : 'emulated device memory';
  // --maxbytes is one value for every device (a % of each one's memory aside): on devices of different
  // sizes, the cap that suits one device may be above another's memory. A fix that names a --maxbytes
  // then names one that fits them all, or a --device-reserve that leaves each device its own cap.
  const mixedSizes = new Set(facts.devices.map((device) => device.totalBytes)).size > 1;
  const commonReserve = Math.max(0, ...facts.devices.map((device) => workingDeviceReserve(device.totalBytes)));
  const smallestCap = floorMiBOrBytes(Math.min(...facts.devices.map((device) => device.totalBytes - workingDeviceReserve(device.totalBytes))));
  const everyDeviceFix = (): string | undefined => {
    if (smallestCap <= 0) return undefined;
    const maxbytes = `--maxbytes ${sizeFlag(smallestCap)} (one value for every device: the smallest one's cap)`;
    if (!facts.devices.every((device) => device.totalBytes > commonReserve)) return maxbytes;
    const caps = facts.devices.map((device) => sizeFlag(floorMiBOrBytes(device.totalBytes - commonReserve))).join(', ');
    return `--device-reserve ${sizeFlag(commonReserve)} without --maxbytes (each device's cap is then its own memory less that: ${caps}), or ${maxbytes}`;
  };

  for (const device of facts.devices) {
    const label = `device ${device.index} (${device.name}, ${formatIec(device.totalBytes)})`;
    // The default reserve, or less on a device too small to leave a pool after it.
    const reserve = workingDeviceReserve(device.totalBytes);
    const suggestedCap = device.totalBytes - reserve;
    if (device.totalBytes < MIN_DEVICE_BYTES) {
      // --allow-small-device alone serves the device with a pool of 0 when the reserve takes it all.
      const forced = ['--allow-small-device', device.maxBytes > 0 ? undefined : workingDeviceCapFlag(device, device.capOrigin)].filter(Boolean).join(' ');
      add({
        severity: facts.allowSmallDevice ? 'warning' : 'error',
        rule: 'device-too-small',
        what: `${label} has less than 2 GiB of ${kind}${facts.allowSmallDevice ? ' and is served because of --allow-small-device' : '; the daemon refuses it'}`,
        why: 'The seed: "GPUs with less than 2 GB VRAM are not suitable for DL4J training"; "4 GB VRAM minimum (small networks, small batches), 8 GB recommended".',
        fix: cuda ? `Use a device with at least 4 GiB (8 GiB recommended), or ${forced} to serve it anyway` : `--emulated-device 4G (or ${forced})`,
      });
    } else if (cuda && device.totalBytes < 4 * GiB) {
      add({
        severity: 'info',
        rule: 'device-below-recommended',
        what: `${label} has less than 4 GiB of VRAM`,
        why: 'The seed: "4 GB VRAM minimum (small networks, small batches); 8 GB recommended; 16 GB+ for large CNNs or transformers".',
        fix: 'Expect small batches only; a device of 8 GiB or more for training',
      });
    }
    if (device.maxBytes === 0) {
      const problem = zeroDeviceCapProblem(device, device.capOrigin, !cuda);
      add({
        severity: 'error',
        rule: 'maxbytes-zero',
        what: problem.what,
        why: 'The seed: "Set maxbytes slightly below VRAM capacity"; a cap of 0 leaves the pool nothing to lend, so tensormemd refuses it at start.',
        fix: (mixedSizes && problem.fix?.startsWith('--maxbytes') ? everyDeviceFix() : undefined) ?? problem.fix ?? `None: ${label} has no memory to lend`,
      });
    } else if (device.maxBytes > device.totalBytes) {
      add({
        severity: 'error',
        rule: 'maxbytes-above-vram',
        what: `--maxbytes ${formatIec(device.maxBytes)} is above ${label}'s ${kind}; the daemon refuses to start`,
        why: 'The seed\'s pitfall "`maxbytes` > GPU VRAM → CUDA OOM"; "Verify `maxbytes` is not set higher than available VRAM."',
        fix: suggestedCap <= 0 ? `None: ${label} has no memory to lend` : ((mixedSizes ? everyDeviceFix() : undefined) ?? `--maxbytes ${sizeFlag(floorMiBOrBytes(suggestedCap))} (VRAM − ${formatIec(reserve)})`),
      });
    } else if (cuda && device.totalBytes - device.maxBytes < reserve) {
      add({
        severity: 'warning',
        rule: 'maxbytes-too-close-to-vram',
        what: `--maxbytes ${formatIec(device.maxBytes)} leaves ${formatIec(device.totalBytes - device.maxBytes)} of ${label}, less than the ${formatIec(reserve)} the CUDA runtime, driver and cuDNN need`,
        why: 'The seed: "Set maxbytes slightly below VRAM capacity to leave room for CUDA runtime overhead and cuDNN workspace allocations"; "Subtract approximately 1 GB to 2 GB".',
        fix: (mixedSizes ? everyDeviceFix() : undefined) ?? `--maxbytes ${sizeFlag(floorMiBOrBytes(suggestedCap))} (or --device-reserve ${sizeFlag(reserve)} without --maxbytes)`,
      });
    }
  }

  if (!facts.deviceCapSet && facts.devices.length > 0) {
    // A cap of 0 is its own error (maxbytes-zero); suggest what would work there instead.
    const smallest = floorMiBOrBytes(Math.min(...facts.devices.map((device) => (device.maxBytes > 0 ? device.maxBytes : device.totalBytes - workingDeviceReserve(device.totalBytes)))));
    // The profile only where its reserve leaves every device a pool (a device without memory has none to lend).
    const profileFits = facts.devices.every((device) => profileDeviceReserve('gpu-training', device.totalBytes) < device.totalBytes);
    add({
      severity: 'warning',
      rule: 'no-device-cap',
      what: `No --maxbytes (or --device-reserve) set: each device pool's cap is derived (${facts.devices.map((device) => formatIec(device.maxBytes)).join(', ')})`,
      why: 'The seed\'s pitfall "No `maxbytes` set → Off-heap defaults to `-Xmx` value, may be insufficient → Set `maxbytes` explicitly"; here the cap follows VRAM − the default device reserve, whatever the card.',
      fix: smallest > 0 ? `--maxbytes ${sizeFlag(smallest)}${profileFits ? ' (or --profile gpu-training)' : ''}` : 'None: a device has no memory to lend',
    });
  }

  const emulatedBytes = cuda ? 0 : facts.devices.reduce((sum, device) => sum + device.totalBytes, 0);
  const neededPhysical = facts.hostMaxBytes + emulatedBytes + facts.heapLimitBytes;
  const parts = `host-maxbytes ${formatIec(facts.hostMaxBytes)}${emulatedBytes > 0 ? ` + emulated devices ${formatIec(emulatedBytes)}` : ''} + V8 heap limit ${formatIec(facts.heapLimitBytes)} = ${formatIec(neededPhysical)}`;
  // The machine's RAM in whole MiB, when known: no fix suggests a cap above it where the sum fits in it
  // (a physical cap above RAM is its own warning, maxphysicalbytes-above-ram).
  const ramCap = facts.ramBytes !== undefined ? Math.floor(facts.ramBytes / MiB) * MiB : undefined;
  const suggestedPhysical = ramCap !== undefined && neededPhysical <= ramCap ? Math.min(ceilGiB(neededPhysical) + GiB, ramCap) : ceilGiB(neededPhysical) + GiB;
  // The --host-maxbytes that leaves the emulated devices and the V8 heap room in RAM (3/4 of what is left), when RAM is known.
  const hostRoom = facts.ramBytes !== undefined ? floorMiBOrBytes(Math.floor((Math.max(0, facts.ramBytes - emulatedBytes - facts.heapLimitBytes) * 3) / 4)) : undefined;
  if (facts.hostMaxBytes === 0) {
    const problem = zeroHostCapProblem(facts.hostCapOrigin);
    add({
      severity: 'error',
      rule: 'host-maxbytes-zero',
      what: problem.what,
      why: 'The seed: "ND4J also allocates a CPU-side off-heap mirror buffer for each GPU array"; a host cap of 0 leaves no room for one, so tensormemd refuses it at start.',
      fix: problem.fix ?? '--host-maxbytes 25%',
    });
  }
  if (facts.maxPhysicalBytes === 0 && !facts.percentToZeroError?.includes('for --maxphysicalbytes')) {
    // (A share that came to 0 is reported as the daemon's refusal below, not as a cap turned off.)
    // 0 = no process cap, for the daemon as for JavaCPP: a choice, not a cap below everything.
    add({
      severity: 'warning',
      rule: 'physical-cap-off',
      what: '--maxphysicalbytes 0 turns the process cap off: nothing refuses host allocations before the machine runs out of RAM',
      why: 'The seed: maxphysicalbytes is "Optional but useful to prevent runaway allocation" and "Should be set to `maxbytes + Xmx + overhead`".',
      fix: `--maxphysicalbytes ${sizeFlag(suggestedPhysical)}`,
    });
  } else if (facts.maxPhysicalBytes < neededPhysical) {
    add({
      severity: 'error',
      rule: 'maxphysicalbytes-below-sum',
      what: `--maxphysicalbytes ${formatIec(facts.maxPhysicalBytes)} is below ${parts}: host allocations fail before --host-maxbytes is reached`,
      why: 'The seed: maxphysicalbytes "Should be set to `maxbytes + Xmx + overhead`" (V8\'s heap limit is the daemon\'s -Xmx).',
      fix: `--maxphysicalbytes ${sizeFlag(suggestedPhysical)} (or a smaller --host-maxbytes)`,
    });
  } else if (!facts.maxPhysicalSet) {
    add({
      severity: 'info',
      rule: 'no-physical-cap',
      what: `No --maxphysicalbytes set: the cap of the whole process is derived (${formatIec(facts.maxPhysicalBytes)})`,
      why: 'The seed: maxphysicalbytes is "Optional but useful to prevent runaway allocation" and "Should be set to `maxbytes + Xmx + overhead`".',
      fix: `--maxphysicalbytes ${sizeFlag(suggestedPhysical)}`,
    });
  }

  const deviceCapsBytes = facts.devices.reduce((sum, device) => sum + device.maxBytes, 0);
  if (facts.mirror === 'eager' && facts.hostMaxBytes < deviceCapsBytes) {
    const mirrorsBytes = Math.ceil(deviceCapsBytes / MiB) * MiB;
    // A --host-maxbytes of the device caps summed that this machine's RAM cannot hold beside the emulated
    // devices and the V8 heap would only trade this warning for no-room-for-off-heap.
    // --maxbytes is one value for every device: never above the smallest device's own cap (maxbytes-above-vram otherwise).
    const perDevice = hostRoom !== undefined ? Math.min(floorMiBOrBytes(Math.floor(hostRoom / facts.devices.length)), smallestCap) : 0;
    // A --maxphysicalbytes that was set, and would be below the new sum: raised with it (maxphysicalbytes-below-sum otherwise).
    const physicalToo = (hostBytes: number, joiner = 'with'): string => {
      const needed = hostBytes + emulatedBytes + facts.heapLimitBytes;
      if (!facts.maxPhysicalSet || facts.maxPhysicalBytes <= 0 || facts.maxPhysicalBytes >= needed) return '';
      return ` ${joiner} --maxphysicalbytes ${sizeFlag(ramCap !== undefined ? Math.min(ceilGiB(needed) + GiB, ramCap) : ceilGiB(needed) + GiB)}`;
    };
    const neededWithMirrors = mirrorsBytes + emulatedBytes + facts.heapLimitBytes;
    const fix =
      facts.ramBytes === undefined || neededWithMirrors <= facts.ramBytes
        ? `--host-maxbytes ${sizeFlag(mirrorsBytes)}${physicalToo(mirrorsBytes)} (or --mirror lazy)`
        : `--mirror lazy (the device caps summed, ${formatIec(deviceCapsBytes)}, do not fit in this machine's RAM, ${formatIec(facts.ramBytes)}, beside ${emulatedBytes > 0 ? 'the emulated devices and ' : ''}the V8 heap limit)` +
          (perDevice > 0
            ? `, or --maxbytes ${sizeFlag(perDevice)} with --host-maxbytes ${sizeFlag(perDevice * facts.devices.length)}${physicalToo(perDevice * facts.devices.length, 'and')}`
            : '');
    add({
      severity: 'warning',
      rule: 'eager-mirrors-do-not-fit',
      what: `--mirror eager gives every device array a host mirror, but --host-maxbytes ${formatIec(facts.hostMaxBytes)} is below the device caps summed (${formatIec(deviceCapsBytes)}): device allocations fail with HOST_OUT_OF_MEMORY before the device pools fill`,
      why: 'The seed: "ND4J also allocates a CPU-side off-heap mirror buffer for each GPU array … This is why CPU RAM usage will always be higher than GPU VRAM usage in a CUDA setup."',
      fix,
    });
  }

  if (facts.scrub === false) {
    add({
      severity: 'warning',
      rule: 'scrub-off',
      what: '--scrub off: a new array, cuDNN scratch or workspace buffer may hold the bytes another lease freed, of this tenant or any other (the pools reuse memory)',
      why: 'Several trainers share the daemon, and none may see another one\'s memory; with --scrub off only a daemon that serves one trusted tenant keeps that promise.',
      fix: '--scrub on (the default), unless this daemon serves a single trusted tenant',
    });
  }

  if (facts.ramBytes !== undefined) {
    const committed = facts.hostMaxBytes + emulatedBytes + facts.heapLimitBytes;
    if (committed > facts.ramBytes) {
      const room = hostRoom ?? 0;
      const emulated = emulatedBytes > 0;
      const others = `${emulated ? 'a smaller --emulated-device, or ' : ''}node --max-old-space-size (the ${emulated ? 'emulated devices and the ' : ''}V8 heap limit alone fill the RAM: no --host-maxbytes fits)`;
      add({
        severity: 'warning',
        rule: 'no-room-for-off-heap',
        what: `${parts} is more than this machine's RAM (${formatIec(facts.ramBytes)}): the caps cannot all be honoured`,
        why: 'The seed\'s pitfall "High -Xms + large -Xmx on a constrained system → No room for off-heap"; "Setting Xmx too high leaves less room for off-heap memory."',
        // No --host-maxbytes suggestion when the emulated devices and the heap alone take the RAM (it would be 0).
        fix: room > 0 ? `--host-maxbytes ${sizeFlag(room)} (or a smaller --emulated-device, or node --max-old-space-size)` : others,
      });
    } else if (facts.maxPhysicalBytes > facts.ramBytes) {
      add({
        severity: 'warning',
        rule: 'maxphysicalbytes-above-ram',
        what: `--maxphysicalbytes ${formatIec(facts.maxPhysicalBytes)} is above this machine's RAM (${formatIec(facts.ramBytes)}): the kernel's OOM killer acts before the cap does`,
        why: 'The seed: maxphysicalbytes is the "Maximum total process memory", "useful to prevent runaway allocation"; a cap above RAM prevents nothing.',
        fix: `--maxphysicalbytes ${sizeFlag(Math.min(suggestedPhysical, ramCap ?? suggestedPhysical))}`,
      });
    }
  }
  // The daemon's own refusals at start, run offline: the finding quotes its message.
  const refusedAtStart = (rule: string, refusal: string | undefined, why: string, fix: string) => {
    if (refusal !== undefined) add({ severity: 'error', rule, what: `${refusal}; the daemon refuses to start`, why, fix });
  };
  refusedAtStart(
    'open-mode-exposed-address',
    facts.openModeAddressError,
    'Without a tenants file the daemon runs in open mode: any client that reaches it may open leases and read every array, so it serves only loopback and unix: addresses.',
    '--tenants FILE (README, Operating a shared GPU host), or a loopback (127.0.0.1:PORT) or unix:PATH address',
  );
  refusedAtStart(
    'percent-comes-to-zero',
    facts.percentToZeroError,
    'A share that comes to 0 bytes would turn the process cap off (--maxphysicalbytes 0) or leave the CUDA runtime no reserve (--device-reserve 0), which the value did not ask for.',
    'a larger share, a size (20G), or 0 to ask for no cap or no reserve',
  );
  for (const { name, meant } of facts.misspelledEnv ?? []) {
    add({
      severity: 'warning',
      rule: 'env-misspelled',
      what: `${name} is not a tensormemd variable: the daemon ignores it (and logs env_misspelled at start)`,
      why: `tensormemd reads TENSORMEM_ and the flag's name in capitals, - as _; the setting ${name} was meant to make is left at what the other findings show.`,
      fix: `Rename ${name} to ${meant}`,
    });
  }
  if (facts.tenants?.readError !== undefined) {
    add({
      severity: 'error',
      rule: 'tenants-file-unreadable',
      what: `--tenants ${facts.tenants.file} cannot be used: ${facts.tenants.readError}; the daemon refuses to start`,
      why: 'tensormemd reads the tenants file at start (and on SIGHUP) and refuses one it cannot read or parse.',
      fix: `Correct ${facts.tenants.file} (README, Operating a shared GPU host: YAML, or JSON when the name ends in .json)`,
    });
  } else if (facts.tenants?.guaranteesError !== undefined) {
    const smallestCap = Math.min(...facts.devices.map((device) => device.maxBytes));
    const smallestDevice = Math.min(...facts.devices.map((device) => device.totalBytes));
    const neededCap = Math.ceil((facts.tenants.guaranteeBytes ?? 0) / MiB) * MiB;
    add({
      severity: 'error',
      rule: 'tenant-guarantees-above-maxbytes',
      what: `The device guarantees in --tenants ${facts.tenants.file} add up to more than the smallest pool cap; the daemon refuses to start: ${facts.tenants.guaranteesError}`,
      why: 'A guarantee is a share of the pool kept free for its tenant while others borrow; guarantees that add up to more than the pool could not all be honoured.',
      fix:
        (smallestCap > 0 ? `Guarantees in ${facts.tenants.file} that add up to at most ${formatIec(smallestCap)}` : `A pool cap above 0 (maxbytes-zero) and guarantees in ${facts.tenants.file} that fit it`) +
        (neededCap > 0 && neededCap <= smallestDevice ? `, or --maxbytes ${sizeFlag(neededCap)}` : ''),
    });
  }
  const uncapped = facts.tenants?.withoutMmapQuota ?? [];
  if (facts.mmapMaxBytes === 0 && uncapped.length > 0) {
    const names = uncapped.map((name) => `"${name}"`).join(', ');
    add({
      severity: 'warning',
      rule: 'mmap-files-uncapped',
      what: `No --mmap-maxbytes, and tenant${uncapped.length > 1 ? 's' : ''} ${names} of --tenants ${facts.tenants!.file} ha${uncapped.length > 1 ? 've' : 's'} no quota.mmap: ${uncapped.length > 1 ? 'each' : 'it'} may create MMAP workspace files until the file system of --mmap-dir is full`,
      why: 'MMAP workspace files live outside --host-maxbytes and the host quotas (their pages belong to the files); a full disk fails every other tenant\'s MMAP workspaces, and anything else that writes there. The caps count files while they are mapped: a file a tenant names (temp_file_path) stays on disk after its workspace, so give --mmap-dir a file system (or disk quota) of its own too.',
      fix: `--mmap-maxbytes SIZE (all tenants together), and quota: { mmap: SIZE } for each tenant in ${facts.tenants!.file}`,
    });
  }
  const regions = facts.tenants?.mappedRegions;
  const regionCap = facts.maxMappedRegions ?? 0;
  if (regions && regionCap > 0 && regions.tenants > 1 && (regions.without.length > 0 || regions.sum > regionCap)) {
    const file = facts.tenants!.file;
    const names = regions.without.map((name) => `"${name}"`).join(', ');
    add({
      severity: 'warning',
      rule: 'mapped-regions-unshared',
      what:
        regions.without.length > 0
          ? `Tenant${regions.without.length > 1 ? 's' : ''} ${names} of --tenants ${file} ha${regions.without.length > 1 ? 've' : 's'} no max_mapped_regions: ${regions.without.length > 1 ? 'each' : 'it'} may take all ${regionCap} of --max-mapped-regions`
          : `The max_mapped_regions of --tenants ${file} add up to ${regions.sum}, more than --max-mapped-regions ${regionCap}`,
      why: "--max-mapped-regions is one cap for all tenants (exportable arrays' regions of their own, MMAP workspaces' mappings): one tenant at it keeps every other tenant's exports and MMAP workspaces out until it frees some.",
      fix: `max_mapped_regions for each tenant in ${file}, adding up to at most ${regionCap}`,
    });
  }
  const host = facts.tenants?.hostQuotas;
  // A tenant cannot starve itself: one without quota.host matters when another tenant has a guarantee.
  // The quotas given count whether or not the guaranteed tenant has one: without its own, the others'
  // past --host-maxbytes take it all the same.
  const takers = host?.without.filter((name) => host.guaranteed.some((guaranteed) => guaranteed !== name)) ?? [];
  if (host && host.guaranteed.length > 0 && (takers.length > 0 || host.sum > facts.hostMaxBytes)) {
    const file = facts.tenants!.file;
    const quoted = (names: string[]) => names.map((name) => `"${name}"`).join(', ');
    const refused = `the reads of their device arrays (each needs a host mirror), their HOST_ONLY arrays and, with --mirror eager, their device allocations inside the guarantee are then refused (HOST_OUT_OF_MEMORY)`;
    add({
      severity: 'warning',
      rule: 'host-memory-unshared',
      what:
        takers.length > 0
          ? `Tenant${takers.length > 1 ? 's' : ''} ${quoted(takers)} of --tenants ${file} ha${takers.length > 1 ? 've' : 's'} no quota.host: ${takers.length > 1 ? 'each' : 'it'} may take all of --host-maxbytes (${formatIec(facts.hostMaxBytes)}) from ${quoted(host.guaranteed)}, whose device guarantee does not cover host memory: ${refused}`
          : `The quota.host of --tenants ${file} add up to ${formatIec(host.sum)}, more than --host-maxbytes ${formatIec(facts.hostMaxBytes)}: the others may take the host memory of ${quoted(host.guaranteed)}, whose device guarantee does not cover it: ${refused}`,
      why: "Guarantees are of device memory only. Host memory (HOST_ONLY arrays, workspaces' host sides, and the mirrors of device arrays that host-side reads and --mirror eager take) is shared first come, first served within each tenant's quota.host.",
      fix: `quota: { host: SIZE } for each tenant in ${file}, adding up to at most --host-maxbytes (${formatIec(facts.hostMaxBytes)})`,
    });
  }
  return findings.sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
}
