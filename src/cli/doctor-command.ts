/**
 * `tensormemctl doctor`: gathers DoctorFacts from a running daemon (GetConfig + GetMemoryInfo) or from a
 * proposed tensormemd command line parsed offline by the daemon's own loadConfig, and prints the
 * findings of src/config/doctor.ts.
 */
import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { loadConfig } from '../config/config';
import { DoctorFacts, DoctorTenants, Finding, diagnose } from '../config/doctor';
import { FLAGS, envName } from '../config/flags';
import { applyProfile } from '../config/profiles';
import { parseSize, resolveSize } from '../config/sizes';
import { computeLimits, deviceCapOrigin, hostCapOrigin, refuseFlooredPercents } from '../memory/limits';
import { checkGuaranteesFit, checkOpenModeAddresses } from '../daemon';
import { readTenantsFile } from '../leases/tenants-file';
import { createBackend } from '../native/addon';
import type { DeviceMemoryInfo } from '../native/backend';
import type { TensormemClient } from '../client/tensormem-client';
import { isLocalAddress } from '../config/listen-address';
import { formatIec } from '../units';
import { counted } from '../counted';
import { UsageError, asUsage } from './usage-error';
import { invalidArgument } from '../errors';

export interface DoctorReport {
  /** "daemon at ADDRESS" or "proposed configuration". */
  subject: string;
  facts: DoctorFacts;
  findings: Finding[];
}

const isSet = (source: string | undefined) => source !== undefined && source !== 'derived' && source !== 'default';

/** Facts of the running daemon. RAM is this machine's when the address is local (unix socket or loopback). */
export async function daemonFacts(client: TensormemClient, token: string | undefined): Promise<DoctorFacts> {
  const [config, info] = await Promise.all([client.config(token), client.memoryInfo(token)]);
  const entry = (name: string) => {
    const value = config.values.find((v) => v.name === name);
    if (!value) throw new Error(`GetConfig has no "${name}": is the daemon older than this tensormemctl?`);
    return value;
  };
  const caps = entry('maxbytes').value.split(',').map(Number);
  const reserves = entry('device-reserve').value.split(',').map(Number);
  return {
    backend: info.backend === 'cuda' ? 'cuda' : 'host',
    devices: info.devices.map((device, index) => ({
      index: device.device,
      name: device.name,
      totalBytes: device.total_bytes,
      maxBytes: caps[index] ?? device.max_bytes,
      capOrigin: { maxbytesSource: entry('maxbytes').source, reserveBytes: reserves[index], reserveSource: entry('device-reserve').source },
    })),
    deviceCapSet: isSet(entry('maxbytes').source) || isSet(entry('device-reserve').source),
    hostMaxBytes: Number(entry('host-maxbytes').value),
    maxPhysicalBytes: Number(entry('maxphysicalbytes').value),
    maxPhysicalSet: isSet(entry('maxphysicalbytes').source),
    heapLimitBytes: info.process!.heap_limit_bytes,
    mirror: entry('mirror').value === 'eager' ? 'eager' : 'lazy',
    // An older daemon has no --scrub (nor scrubs).
    scrub: (config.values.find((v) => v.name === 'scrub')?.value ?? 'off') === 'on',
    allowSmallDevice: entry('allow-small-device').value === 'true',
    ramBytes: isLocalAddress(client.address) ? totalmem() : undefined,
    hostCapOrigin: { source: entry('host-maxbytes').source },
  };
}

export interface ProposedMachine {
  /** --vram: "24G" or "24G,24G": judge for CUDA devices of these sizes instead of this machine's. */
  vram?: string;
  /** --ram: the target machine's RAM (default this machine's). */
  ram?: string;
}

/** The devices the daemon would see here, without allocating anything. */
function localDevices(backend: 'auto' | 'cuda' | 'host', emulated: () => DeviceMemoryInfo[]): { backend: 'cuda' | 'host'; devices: DeviceMemoryInfo[] } {
  if (backend === 'host') return { backend: 'host', devices: emulated() };
  try {
    const cuda = createBackend('cuda', {});
    const devices = Array.from({ length: cuda.deviceCount() }, (_, index) => cuda.deviceInfo(index));
    if (devices.length > 0) return { backend: 'cuda', devices };
    throw new Error('no CUDA device is visible');
  } catch (error) {
    if (backend === 'cuda') throw new Error(`--backend cuda: ${(error as Error).message} on this machine; pass --vram SIZE to judge the configuration for a GPU host`);
    return { backend: 'host', devices: emulated() };
  }
}

/**
 * What an offline doctor judges: the command line and the TENSORMEM_ variables of flags set in `env`, which
 * count as they would for the daemon ("defaults" only when there are neither).
 */
export function proposedSubject(daemonArgs: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  const variables = FLAGS.map(envName).filter((name) => env[name]);
  const parts = [...(daemonArgs.length > 0 ? [`tensormemd ${daemonArgs.join(' ')}`] : []), ...variables.map((name) => `${name}=${env[name]}`)];
  return `proposed configuration (${parts.length > 0 ? parts.join('; ') : 'defaults'})`;
}

/** Facts of a proposed tensormemd command line (and/or --config file), resolved as the daemon would resolve them. */
export function proposedFacts(daemonArgs: readonly string[], machine: ProposedMachine, env: NodeJS.ProcessEnv = process.env): DoctorFacts {
  // What tensormemd's flag parser refuses (a flag, a TENSORMEM_ variable, a --config value) stops tensormemd
  // with exit 2: doctor exits 2 for it too (README), so `doctor -- $FLAGS && tensormemd $FLAGS` tells them apart.
  // doctor's own --vram and --ram go before the --; after it tensormemd's parser refused them as flags it does not know.
  const misplaced = daemonArgs.map((arg) => /^--(vram|ram)(=|$)/.exec(arg)?.[1]).find((flag) => flag !== undefined);
  if (misplaced) throw new UsageError(`--${misplaced} is tensormemctl doctor's own flag, not tensormemd's: put it before the -- (tensormemctl doctor --vram 24G --ram 128G -- --profile gpu-training)`);
  const parsed = asUsage(() => loadConfig(daemonArgs, env));
  // Given empty (--vram= or --ram "$UNSET") they are refused, not read as "this machine's".
  const ramBytes = machine.ram !== undefined ? bytesOf(machine.ram, '--ram') : totalmem();
  const emulated = () =>
    Array.from({ length: parsed.emulatedDevices }, (_, index) => ({
      index,
      name: 'tensormem emulated device',
      totalBytes: resolveSize(parsed.emulatedDevice, ramBytes),
      freeBytes: resolveSize(parsed.emulatedDevice, ramBytes),
      computeCapability: 'emulated',
    }));
  const { backend, devices } = machine.vram !== undefined
    ? {
        backend: 'cuda' as const,
        devices: machine.vram.split(',').map((text, index) => {
          const totalBytes = bytesOf(text, '--vram');
          return { index, name: `proposed device ${index}`, totalBytes, freeBytes: totalBytes, computeCapability: 'proposed' };
        }),
      }
    : localDevices(parsed.backend, emulated);
  const config = applyProfile(parsed, { ramBytes, deviceTotalBytes: devices.map((device) => device.totalBytes), backend, heapLimitBytes: getHeapStatistics().heap_size_limit });
  // resolveLimits refuses what the doctor must report (a cap above VRAM or of 0, a small device):
  // computeLimits resolves the same caps and refuses nothing.
  const limits = computeLimits(config, backend, devices, ramBytes);
  return {
    backend,
    devices: devices.map((device, index) => ({
      index,
      name: device.name,
      totalBytes: device.totalBytes,
      maxBytes: limits.maxBytes[index],
      capOrigin: deviceCapOrigin(config, limits, index),
    })),
    deviceCapSet: isSet(config.sources.maxbytes) || isSet(config.sources['device-reserve']),
    hostMaxBytes: limits.hostMaxBytes,
    maxPhysicalBytes: limits.maxPhysicalBytes,
    maxPhysicalSet: isSet(config.sources.maxphysicalbytes),
    heapLimitBytes: getHeapStatistics().heap_size_limit,
    mirror: config.mirror,
    scrub: config.scrub,
    allowSmallDevice: config.allowSmallDevice,
    ramBytes,
    hostCapOrigin: hostCapOrigin(config, limits),
    tenants: config.tenantsFile === undefined ? undefined : tenantsFacts(config.tenantsFile, limits.maxBytes),
    mmapMaxBytes: config.mmapMaxBytes,
    maxMappedRegions: config.maxMappedRegions,
    openModeAddressError: config.tenantsFile === undefined ? openModeAddressError(config) : undefined,
    percentToZeroError: refusalOf(() => refuseFlooredPercents(config, devices, ramBytes)),
    misspelledEnv: parsed.misspelledEnv,
  };
}

/** tensormemd's refusal of a non-local address in open mode (checkOpenModeAddresses), or undefined. */
function openModeAddressError(config: Parameters<typeof checkOpenModeAddresses>[0]): string | undefined {
  return refusalOf(() => checkOpenModeAddresses(config));
}

/** The message of what `check` throws (a refusal of tensormemd's, run here to report it), or undefined. */
function refusalOf(check: () => void): string | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** The --tenants file checked as tensormemd checks it at start: it must parse, and its guarantees fit the pools. */
function tenantsFacts(file: string, maxBytes: number[]): DoctorTenants {
  let specs;
  try {
    specs = readTenantsFile(file);
  } catch (error) {
    return { file, readError: (error as Error).message };
  }
  const guaranteeBytes = specs.reduce((sum, tenant) => sum + tenant.deviceGuaranteeBytes, 0);
  const users = specs.filter((tenant) => !tenant.admin);
  const withoutMmapQuota = users.filter((tenant) => tenant.mmapQuotaBytes === 0).map((tenant) => tenant.name);
  const mappedRegions = {
    tenants: users.length,
    without: users.filter((tenant) => tenant.maxMappedRegions === 0).map((tenant) => tenant.name),
    sum: users.reduce((sum, tenant) => sum + tenant.maxMappedRegions, 0),
  };
  const hostQuotas = {
    guaranteed: specs.filter((tenant) => tenant.deviceGuaranteeBytes > 0).map((tenant) => tenant.name),
    without: users.filter((tenant) => tenant.hostQuotaBytes === 0).map((tenant) => tenant.name),
    sum: users.reduce((sum, tenant) => sum + tenant.hostQuotaBytes, 0),
  };
  try {
    checkGuaranteesFit(specs, maxBytes, file);
  } catch (error) {
    return { file, guaranteeBytes, withoutMmapQuota, mappedRegions, hostQuotas, guaranteesError: (error as Error).message };
  }
  return { file, guaranteeBytes, withoutMmapQuota, mappedRegions, hostQuotas };
}

/** --ram / --vram: a bad value (a machine or device of 0 bytes included) is a usage error (exit 2). */
function bytesOf(text: string, field: string): number {
  const spec = asUsage(() => parseSize(text, field, false));
  const bytes = spec.kind === 'bytes' ? spec.bytes : 0;
  if (bytes <= 0) throw new UsageError(invalidArgument(field, 'a size above 0', text).message);
  return bytes;
}

export function report(subject: string, facts: DoctorFacts): DoctorReport {
  return { subject, facts, findings: diagnose(facts) };
}

export function renderReport({ subject, facts, findings }: DoctorReport): string {
  const lines = [
    `tensormemctl doctor: ${subject}`,
    `  backend ${facts.backend}; ${facts.devices.map((d) => `device ${d.index} ${formatIec(d.totalBytes)} (maxbytes ${formatIec(d.maxBytes)})`).join(', ') || 'no devices'}; ` +
      `host-maxbytes ${formatIec(facts.hostMaxBytes)}; maxphysicalbytes ${facts.maxPhysicalBytes > 0 ? formatIec(facts.maxPhysicalBytes) : '0 (no process cap)'}; V8 heap limit ${formatIec(facts.heapLimitBytes)}; mirror ${facts.mirror}` +
      (facts.ramBytes !== undefined ? `; RAM ${formatIec(facts.ramBytes)}` : ''),
    '',
  ];
  for (const finding of findings) {
    lines.push(`${finding.severity.toUpperCase()} ${finding.rule}`, `  what: ${finding.what}`, `  why:  ${finding.why}`, `  fix:  ${finding.fix}`, '');
  }
  const count = (severity: string) => findings.filter((f) => f.severity === severity).length;
  lines.push(findings.length === 0 ? 'No pitfalls found.' : `${counted(findings.length, 'finding')}: ${counted(count('error'), 'error')}, ${counted(count('warning'), 'warning')}, ${count('info')} info`);
  return lines.join('\n');
}

export const hasErrors = (findings: Finding[]) => findings.some((finding) => finding.severity === 'error');
