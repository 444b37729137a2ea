/**
 * `tensormemctl doctor`: the seed's "Summary of Common Pitfalls" (and its rules of thumb for GPU
 * memory) as rules over a resolved configuration and the facts of the machine. A pure function, so the
 * same rules judge a running daemon (GetConfig + GetMemoryInfo) and a proposed command line (parsed
 * offline by loadConfig); each finding says what, why in the seed's words, and the flag that fixes it.
 */
import { defaultDeviceReserve, MIN_DEVICE_BYTES } from '../memory/limits';
import { formatIec, GiB, MiB } from '../units';

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
}

export interface DoctorFacts {
  backend: 'cuda' | 'host';
  devices: DoctorDevice[];
  /** Whether --maxbytes or --device-reserve was set (flag, env, file or profile) rather than derived. */
  deviceCapSet: boolean;
  hostMaxBytes: number;
  maxPhysicalBytes: number;
  /** Whether --maxphysicalbytes was set rather than derived. */
  maxPhysicalSet: boolean;
  /** V8's heap limit: the daemon's -Xmx. */
  heapLimitBytes: number;
  mirror: 'lazy' | 'eager';
  allowSmallDevice: boolean;
  /** Physical RAM of the daemon's machine, when known. */
  ramBytes?: number;
}

/** Bytes as a flag value: "22G", "1536M", or plain bytes. */
export function sizeFlag(bytes: number): string {
  if (bytes % GiB === 0) return `${bytes / GiB}G`;
  if (bytes % MiB === 0) return `${bytes / MiB}M`;
  return String(bytes);
}

const ceilGiB = (bytes: number) => Math.ceil(bytes / GiB) * GiB;

const SEVERITY_ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

export function diagnose(facts: DoctorFacts): Finding[] {
  const findings: Finding[] = [];
  const add = (finding: Finding) => findings.push(finding);
  const cuda = facts.backend === 'cuda';
  const kind = cuda ? 'VRAM' : 'emulated device memory';

  for (const device of facts.devices) {
    const label = `device ${device.index} (${device.name}, ${formatIec(device.totalBytes)})`;
    const reserve = defaultDeviceReserve(device.totalBytes);
    const suggestedCap = Math.max(0, device.totalBytes - reserve);
    if (device.totalBytes < MIN_DEVICE_BYTES) {
      add({
        severity: facts.allowSmallDevice ? 'warning' : 'error',
        rule: 'device-too-small',
        what: `${label} has less than 2 GiB of ${kind}${facts.allowSmallDevice ? ' and is served because of --allow-small-device' : '; the daemon refuses it'}`,
        why: 'The seed: "GPUs with less than 2 GB VRAM are not suitable for DL4J training"; "4 GB VRAM minimum (small networks, small batches), 8 GB recommended".',
        fix: cuda ? 'Use a device with at least 4 GiB (8 GiB recommended), or --allow-small-device to serve it anyway' : '--emulated-device 4G (or --allow-small-device)',
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
    if (device.maxBytes > device.totalBytes) {
      add({
        severity: 'error',
        rule: 'maxbytes-above-vram',
        what: `--maxbytes ${formatIec(device.maxBytes)} is above ${label}'s ${kind}; the daemon refuses to start`,
        why: 'The seed\'s pitfall "`maxbytes` > GPU VRAM → CUDA OOM"; "Verify `maxbytes` is not set higher than available VRAM."',
        fix: `--maxbytes ${sizeFlag(suggestedCap)} (VRAM − ${formatIec(reserve)})`,
      });
    } else if (cuda && device.totalBytes - device.maxBytes < reserve) {
      add({
        severity: 'warning',
        rule: 'maxbytes-too-close-to-vram',
        what: `--maxbytes ${formatIec(device.maxBytes)} leaves ${formatIec(device.totalBytes - device.maxBytes)} of ${label}, less than the ${formatIec(reserve)} the CUDA runtime, driver and cuDNN need`,
        why: 'The seed: "Set maxbytes slightly below VRAM capacity to leave room for CUDA runtime overhead and cuDNN workspace allocations"; "Subtract approximately 1 GB to 2 GB".',
        fix: `--maxbytes ${sizeFlag(suggestedCap)} (or --device-reserve ${sizeFlag(reserve)} without --maxbytes)`,
      });
    }
  }

  if (!facts.deviceCapSet && facts.devices.length > 0) {
    const smallest = Math.min(...facts.devices.map((device) => device.maxBytes));
    add({
      severity: 'warning',
      rule: 'no-device-cap',
      what: `No --maxbytes (or --device-reserve) set: each device pool's cap is derived (${facts.devices.map((device) => formatIec(device.maxBytes)).join(', ')})`,
      why: 'The seed\'s pitfall "No `maxbytes` set → Off-heap defaults to `-Xmx` value, may be insufficient → Set `maxbytes` explicitly"; here the cap follows VRAM − the default device reserve, whatever the card.',
      fix: `--maxbytes ${sizeFlag(Math.floor(smallest / MiB) * MiB)} (or --profile gpu-training)`,
    });
  }

  const emulatedBytes = cuda ? 0 : facts.devices.reduce((sum, device) => sum + device.totalBytes, 0);
  const neededPhysical = facts.hostMaxBytes + emulatedBytes + facts.heapLimitBytes;
  const parts = `host-maxbytes ${formatIec(facts.hostMaxBytes)}${emulatedBytes > 0 ? ` + emulated devices ${formatIec(emulatedBytes)}` : ''} + V8 heap limit ${formatIec(facts.heapLimitBytes)} = ${formatIec(neededPhysical)}`;
  const suggestedPhysical = ceilGiB(neededPhysical) + GiB;
  if (facts.maxPhysicalBytes < neededPhysical) {
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
    add({
      severity: 'warning',
      rule: 'eager-mirrors-do-not-fit',
      what: `--mirror eager gives every device array a host mirror, but --host-maxbytes ${formatIec(facts.hostMaxBytes)} is below the device caps summed (${formatIec(deviceCapsBytes)}): device allocations fail with HOST_OUT_OF_MEMORY before the device pools fill`,
      why: 'The seed: "ND4J also allocates a CPU-side off-heap mirror buffer for each GPU array … This is why CPU RAM usage will always be higher than GPU VRAM usage in a CUDA setup."',
      fix: `--host-maxbytes ${sizeFlag(Math.ceil(deviceCapsBytes / MiB) * MiB)} (or --mirror lazy)`,
    });
  }

  if (facts.ramBytes !== undefined) {
    const committed = facts.hostMaxBytes + emulatedBytes + facts.heapLimitBytes;
    if (committed > facts.ramBytes) {
      const room = Math.max(0, facts.ramBytes - emulatedBytes - facts.heapLimitBytes);
      add({
        severity: 'warning',
        rule: 'no-room-for-off-heap',
        what: `${parts} is more than this machine's RAM (${formatIec(facts.ramBytes)}): the caps cannot all be honoured`,
        why: 'The seed\'s pitfall "High -Xms + large -Xmx on a constrained system → No room for off-heap"; "Setting Xmx too high leaves less room for off-heap memory."',
        fix: `--host-maxbytes ${sizeFlag(Math.floor((room * 3) / 4 / MiB) * MiB)} (or a smaller --emulated-device, or node --max-old-space-size)`,
      });
    } else if (facts.maxPhysicalBytes > facts.ramBytes) {
      add({
        severity: 'warning',
        rule: 'maxphysicalbytes-above-ram',
        what: `--maxphysicalbytes ${formatIec(facts.maxPhysicalBytes)} is above this machine's RAM (${formatIec(facts.ramBytes)}): the kernel's OOM killer acts before the cap does`,
        why: 'The seed: maxphysicalbytes is the "Maximum total process memory", "useful to prevent runaway allocation"; a cap above RAM prevents nothing.',
        fix: `--maxphysicalbytes ${sizeFlag(Math.min(suggestedPhysical, Math.floor(facts.ramBytes / MiB) * MiB))}`,
      });
    }
  }
  return findings.sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
}
