import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config';
import { applyProfile, MachineFacts, profileValues } from '../../src/config/profiles';
import { diagnose } from '../../src/config/doctor';
import { proposedFacts } from '../../src/cli/doctor-command';
import { resolveLimits } from '../../src/memory/limits';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

const gpuBox = (vram: number[], ram: number, heap = 4 * GiB): MachineFacts => ({ ramBytes: ram, deviceTotalBytes: vram, backend: 'cuda', heapLimitBytes: heap });

describe('profileValues: the seed reproduced on its own reference machines', () => {
  it('gpu-training on 24 GB VRAM, 64 GB RAM gives the seed line maxbytes=22G, maxphysicalbytes=30G', () => {
    expect(profileValues('gpu-training', gpuBox([24 * GiB], 64 * GiB))).toEqual({ deviceReserveBytes: [2 * GiB], maxBytes: 22 * GiB, hostMaxBytes: 22 * GiB, maxPhysicalBytes: 30 * GiB });
  });

  it.each([
    [16, 14],
    [24, 22],
    [40, 36],
    [80, 72],
  ])('gpu-training on %i GiB VRAM caps the device at %i GiB (the seed: 16G → 14G, 40G → 36G)', (vram, cap) => {
    expect(profileValues('gpu-training', gpuBox([vram * GiB], 64 * GiB)).maxBytes).toBe(cap * GiB);
  });

  it('gpu-training on a card under 16 GiB leaves the daemon default reserve of 1 GiB', () => {
    expect(profileValues('gpu-training', gpuBox([8 * GiB], 64 * GiB))).toMatchObject({ deviceReserveBytes: [GiB], maxBytes: 7 * GiB, hostMaxBytes: 7 * GiB, maxPhysicalBytes: 15 * GiB });
  });

  it('workstation on 16 GB RAM: maxbytes=10G off-heap, maxphysicalbytes=14G', () => {
    expect(profileValues('workstation', gpuBox([8 * GiB], 16 * GiB))).toEqual({ deviceReserveBytes: [GiB], maxBytes: 7 * GiB, hostMaxBytes: 10 * GiB, maxPhysicalBytes: 14 * GiB });
  });

  it('server on 64 GB RAM: 48G off-heap, 58G physical', () => {
    expect(profileValues('server', gpuBox([16 * GiB], 64 * GiB))).toEqual({ deviceReserveBytes: [2 * GiB], maxBytes: 14 * GiB, hostMaxBytes: 48 * GiB, maxPhysicalBytes: 58 * GiB });
  });

  it('inference on 32 GB RAM: 16G off-heap, 20G physical (heap limit 2 GiB)', () => {
    expect(profileValues('inference', gpuBox([16 * GiB], 32 * GiB, 2 * GiB))).toMatchObject({ hostMaxBytes: 16 * GiB, maxPhysicalBytes: 20 * GiB });
  });

  it("under node's default heap limit (4144 MiB) workstation and inference come out 48 MiB above the seed's maxphysicalbytes (README, Profiles)", () => {
    const nodeDefaultHeap = 4144 * MiB;
    expect(profileValues('workstation', gpuBox([8 * GiB], 16 * GiB, nodeDefaultHeap))).toMatchObject({ hostMaxBytes: 10 * GiB, maxPhysicalBytes: 14 * GiB + 48 * MiB });
    expect(profileValues('inference', gpuBox([16 * GiB], 32 * GiB, nodeDefaultHeap))).toMatchObject({ hostMaxBytes: 16 * GiB, maxPhysicalBytes: 20 * GiB + 48 * MiB });
    // The seed's overhead share is above the heap limit for these two: exactly the seed's numbers.
    expect(profileValues('gpu-training', gpuBox([24 * GiB], 64 * GiB, nodeDefaultHeap))).toMatchObject({ maxBytes: 22 * GiB, hostMaxBytes: 22 * GiB, maxPhysicalBytes: 30 * GiB });
    expect(profileValues('server', gpuBox([16 * GiB], 64 * GiB, nodeDefaultHeap))).toMatchObject({ hostMaxBytes: 48 * GiB, maxPhysicalBytes: 58 * GiB });
  });
});

describe('profileValues: scaled to other machines', () => {
  it('scales the RAM shares: server on 128 GiB gives 96 GiB off-heap and 116 GiB physical', () => {
    expect(profileValues('server', gpuBox([24 * GiB], 128 * GiB))).toMatchObject({ hostMaxBytes: 96 * GiB, maxPhysicalBytes: 116 * GiB });
  });

  it('floors the off-heap share to whole MiB on odd RAM sizes', () => {
    // 23.5 GiB + 12345 bytes × 10/16 = 15040 MiB + 7715.6 bytes → 15040 MiB.
    const values = profileValues('workstation', gpuBox([8 * GiB], 23.5 * GiB + 12345));
    expect(values.hostMaxBytes).toBe(15040 * MiB);
    expect(values.maxPhysicalBytes).toBe(15040 * MiB + 6016 * MiB);
  });

  it('uses the V8 heap limit when it is above the seed overhead share (the seed: maxbytes + Xmx + overhead)', () => {
    expect(profileValues('inference', gpuBox([16 * GiB], 32 * GiB, 6 * GiB)).maxPhysicalBytes).toBe(22 * GiB);
  });

  it('gpu-training with two 24 GiB cards on 128 GiB: host off-heap holds both caps (44 GiB)', () => {
    expect(profileValues('gpu-training', gpuBox([24 * GiB, 24 * GiB], 128 * GiB))).toEqual({ deviceReserveBytes: [2 * GiB, 2 * GiB], maxBytes: 22 * GiB, hostMaxBytes: 44 * GiB, maxPhysicalBytes: 60 * GiB });
  });

  it('gpu-training bounds host off-heap by the seed share of RAM when the caps are larger', () => {
    expect(profileValues('gpu-training', gpuBox([80 * GiB, 80 * GiB], 64 * GiB)).hostMaxBytes).toBe(22 * GiB);
  });

  it('gives each device its own reserve when the devices differ in size, and leaves --maxbytes to them', () => {
    // The seed's 40G → 36G and 24G → 22G on one machine; host off-heap holds both caps (58 GiB).
    expect(profileValues('gpu-training', gpuBox([40 * GiB, 24 * GiB], 256 * GiB))).toMatchObject({ deviceReserveBytes: [4 * GiB, 2 * GiB], maxBytes: undefined, hostMaxBytes: 58 * GiB });
  });

  it('leaves every device of a mixed machine a pool the daemon starts with (a 40G card\'s 4G reserve took all of a 4G one)', () => {
    const machine = gpuBox([40 * GiB, 4 * GiB], 128 * GiB);
    const devices = machine.deviceTotalBytes.map((totalBytes, index) => ({ index, name: `card ${index}`, totalBytes, freeBytes: totalBytes, computeCapability: '8.0' }));
    for (const name of ['gpu-training', 'workstation'] as const) {
      const config = applyProfile(loadConfig(['--profile', name], {}), machine);
      const limits = resolveLimits(config, 'cuda', devices, machine.ramBytes);
      expect(limits.deviceReserveBytes).toEqual([name === 'gpu-training' ? 4 * GiB : 2 * GiB, GiB]);
      expect(limits.maxBytes).toEqual([name === 'gpu-training' ? 36 * GiB : 38 * GiB, 3 * GiB]);
      expect(limits.sources['device-reserve']).toBe(`profile:${name}`);
      expect(config.rawValues['device-reserve']).toBe(limits.deviceReserveBytes.join(','));
    }
  });

  it('leaves a device of 1 GiB or less served with --allow-small-device a pool the daemon starts with (the 1G reserve took all of it)', () => {
    for (const [total, reserve] of [[GiB, 256 * MiB], [768 * MiB, 192 * MiB]]) {
      const machine = gpuBox([total], 16 * GiB);
      const devices = [{ index: 0, name: 'small card', totalBytes: total, freeBytes: total, computeCapability: '8.0' }];
      for (const name of ['gpu-training', 'workstation', 'server', 'inference'] as const) {
        const config = applyProfile(loadConfig(['--profile', name, '--allow-small-device'], {}), machine);
        const limits = resolveLimits(config, 'cuda', devices, machine.ramBytes);
        expect([limits.deviceReserveBytes, limits.maxBytes]).toEqual([[reserve], [total - reserve]]);
        expect(limits.hostMaxBytes).toBeGreaterThan(0);
      }
    }
  });

  it('takes the emulated devices out of the off-heap share on the host backend, so the physical cap stays the seed\'s', () => {
    const values = profileValues('workstation', { ramBytes: 16 * GiB, deviceTotalBytes: [2 * GiB], backend: 'host', heapLimitBytes: 4 * GiB });
    expect(values).toEqual({ deviceReserveBytes: [GiB], maxBytes: GiB, hostMaxBytes: 8 * GiB, maxPhysicalBytes: 14 * GiB });
  });

  it.each(['workstation', 'server', 'inference', 'gpu-training'] as const)('%s on the host backend with the default emulated device (a quarter of RAM) keeps the caps within RAM', (name) => {
    // The project's VM: 24105 MiB of RAM, node's default heap limit; the workstation profile's physical
    // cap came out at 26.48 GiB there and doctor flagged its own profile (no-room-for-off-heap).
    const ram = 24105 * MiB;
    const values = profileValues(name, { ramBytes: ram, deviceTotalBytes: [ram / 4], backend: 'host', heapLimitBytes: 4144 * MiB });
    expect(values.maxPhysicalBytes).toBeLessThan(ram);
    const findings = diagnose(proposedFacts(['--profile', name, '--backend', 'host'], { ram: '24105M' }, {}));
    expect(findings.map((finding) => finding.rule)).not.toContain('no-room-for-off-heap');
  });

  it('leaves at least a quarter of the off-heap share to host memory when the emulated devices take more than the share', () => {
    const values = profileValues('inference', { ramBytes: 32 * GiB, deviceTotalBytes: [24 * GiB], backend: 'host', heapLimitBytes: 2 * GiB });
    expect(values.hostMaxBytes).toBe(4 * GiB);
    expect(values.maxPhysicalBytes).toBe(4 * GiB + 24 * GiB + 4 * GiB);
  });
});

describe('applyProfile: flags > env > config file > profile > defaults', () => {
  const machine = gpuBox([24 * GiB], 64 * GiB);

  it('fills the unset caps and marks them profile:NAME', () => {
    const config = applyProfile(loadConfig(['--profile', 'gpu-training'], {}), machine);
    expect(config.maxBytes).toEqual({ kind: 'bytes', bytes: 22 * GiB });
    expect(config.deviceReserve).toEqual({ kind: 'bytes', bytes: 2 * GiB });
    expect(config.hostMaxBytes).toEqual({ kind: 'bytes', bytes: 22 * GiB });
    expect(config.maxPhysicalBytes).toEqual({ kind: 'bytes', bytes: 30 * GiB });
    expect(config.sources).toMatchObject({ profile: 'flag', maxbytes: 'profile:gpu-training', 'device-reserve': 'profile:gpu-training', 'host-maxbytes': 'profile:gpu-training', maxphysicalbytes: 'profile:gpu-training' });
    expect(config.rawValues['maxphysicalbytes']).toBe(String(30 * GiB));
  });

  it('a flag, a variable and a config file each win over the profile', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-profile-'));
    const file = join(dir, 'tensormemd.yaml');
    writeFileSync(file, 'maxphysicalbytes: 40G\nprofile: server\n');
    const config = applyProfile(loadConfig(['--config', file, '--host-maxbytes', '8G'], { TENSORMEM_PROFILE: 'gpu-training', TENSORMEM_MAXBYTES: '20G' }), machine);
    expect(config.profile).toBe('gpu-training');
    expect(config.sources).toMatchObject({ profile: 'env', 'host-maxbytes': 'flag', maxbytes: 'env', maxphysicalbytes: 'file' });
    expect(config.hostMaxBytes).toEqual({ kind: 'bytes', bytes: 8 * GiB });
    expect(config.maxBytes).toEqual({ kind: 'bytes', bytes: 20 * GiB });
    expect(config.maxPhysicalBytes).toEqual({ kind: 'bytes', bytes: 40 * GiB });
    // A user's --maxbytes decides the device caps: the profile sets no reserve beside it.
    expect(config.deviceReserve).toBeUndefined();
  });

  it('derives the physical cap from the effective host-maxbytes, not the profile one', () => {
    const config = applyProfile(loadConfig(['--profile', 'gpu-training', '--host-maxbytes', '40G'], {}), machine);
    expect(config.maxPhysicalBytes).toEqual({ kind: 'bytes', bytes: 48 * GiB });
  });

  it('a --device-reserve from the user leaves both device settings to it', () => {
    const config = applyProfile(loadConfig(['--profile', 'gpu-training', '--device-reserve', '3G'], {}), machine);
    expect(config.sources.maxbytes).toBeUndefined();
    expect(config.deviceReserve).toEqual({ kind: 'bytes', bytes: 3 * GiB });
    expect(config.hostMaxBytes).toEqual({ kind: 'bytes', bytes: 21 * GiB });
  });

  it('returns the configuration untouched without --profile', () => {
    const config = loadConfig([], {});
    expect(applyProfile(config, machine)).toBe(config);
  });

  it('refuses an unknown profile naming the flag and the choices', () => {
    expect(() => loadConfig(['--profile', 'laptop'], {})).toThrowError('Expected one of workstation, server, gpu-training, inference for --profile but received "laptop"');
  });
});

describe('profiles pass the doctor on the seed reference machines', () => {
  it.each([
    ['workstation', '8G', '16G'],
    ['server', '16G', '64G'],
    ['gpu-training', '24G', '64G'],
    ['gpu-training', '40G,40G', '256G'],
    ['inference', '16G', '32G'],
  ])('%s (VRAM %s, RAM %s) has no error or warning', (profile, vram, ram) => {
    const findings = diagnose(proposedFacts(['--profile', profile], { vram, ram }, {}));
    expect(findings.filter((finding) => finding.severity !== 'info')).toEqual([]);
  });
});
