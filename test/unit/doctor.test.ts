import { describe, expect, it } from 'vitest';
import { DoctorFacts, diagnose, sizeFlag } from '../../src/config/doctor';
import { proposedFacts } from '../../src/cli/doctor-command';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** The seed's GPU training line on its machine: 24 GB VRAM, 64 GB RAM, maxbytes 22G, 30G physical. */
function good(overrides: Partial<DoctorFacts> = {}): DoctorFacts {
  return {
    backend: 'cuda',
    devices: [{ index: 0, name: 'NVIDIA L4', totalBytes: 24 * GiB, maxBytes: 22 * GiB }],
    deviceCapSet: true,
    hostMaxBytes: 22 * GiB,
    maxPhysicalBytes: 30 * GiB,
    maxPhysicalSet: true,
    heapLimitBytes: 4 * GiB,
    mirror: 'lazy',
    allowSmallDevice: false,
    ramBytes: 64 * GiB,
    ...overrides,
  };
}

const device = (totalBytes: number, maxBytes: number) => [{ index: 0, name: 'gpu', totalBytes, maxBytes }];
const rules = (facts: DoctorFacts) => diagnose(facts).map((finding) => `${finding.severity} ${finding.rule}`);
const only = (facts: DoctorFacts) => {
  const findings = diagnose(facts);
  expect(findings).toHaveLength(1);
  return findings[0];
};

describe('doctor', () => {
  it('finds nothing in the seed\'s own GPU training configuration', () => {
    expect(diagnose(good())).toEqual([]);
  });

  it('maxbytes above VRAM is an error whose fix is VRAM minus the reserve', () => {
    const finding = only(good({ devices: device(24 * GiB, 30 * GiB) }));
    expect(finding).toMatchObject({ severity: 'error', rule: 'maxbytes-above-vram', fix: '--maxbytes 22G (VRAM − 2.00 GiB)' });
    expect(finding.why).toContain('`maxbytes` > GPU VRAM → CUDA OOM');
  });

  it.each([
    [24 * GiB, 23.5 * GiB, '--maxbytes 22G (or --device-reserve 2G without --maxbytes)'],
    [8 * GiB, 7.5 * GiB, '--maxbytes 7G (or --device-reserve 1G without --maxbytes)'],
  ])('maxbytes leaving less than the reserve of a %d-byte card warns, fix %s', (total, cap, fix) => {
    const finding = only(good({ devices: device(total, cap), hostMaxBytes: 7 * GiB }));
    expect(finding).toMatchObject({ severity: 'warning', rule: 'maxbytes-too-close-to-vram', fix });
    expect(finding.why).toContain('cuDNN workspace allocations');
  });

  it('does not ask an emulated device (host backend) to leave room for a CUDA runtime', () => {
    expect(rules(good({ backend: 'host', devices: device(4 * GiB, 4 * GiB), maxPhysicalBytes: 31 * GiB }))).toEqual([]);
  });

  it('no cap set warns and suggests the derived cap as an explicit --maxbytes', () => {
    const finding = only(good({ deviceCapSet: false }));
    expect(finding).toMatchObject({ severity: 'warning', rule: 'no-device-cap', fix: '--maxbytes 22G (or --profile gpu-training)' });
    expect(finding.why).toContain('No `maxbytes` set');
  });

  it('maxphysicalbytes below host-maxbytes + heap is an error; the fix adds a GiB of overhead', () => {
    const finding = only(good({ maxPhysicalBytes: 20 * GiB }));
    expect(finding).toMatchObject({ severity: 'error', rule: 'maxphysicalbytes-below-sum', fix: '--maxphysicalbytes 27G (or a smaller --host-maxbytes)' });
    expect(finding.what).toContain('host-maxbytes 22.00 GiB + V8 heap limit 4.00 GiB = 26.00 GiB');
    expect(finding.why).toContain('maxbytes + Xmx + overhead');
  });

  it('counts the emulated devices in the sum on the host backend', () => {
    const finding = only(good({ backend: 'host', devices: device(4 * GiB, 3 * GiB), hostMaxBytes: 8 * GiB, maxPhysicalBytes: 15 * GiB }));
    expect(finding).toMatchObject({ rule: 'maxphysicalbytes-below-sum', fix: '--maxphysicalbytes 17G (or a smaller --host-maxbytes)' });
    expect(finding.what).toContain('+ emulated devices 4.00 GiB');
  });

  it('an unset physical cap is information, with a suggested value', () => {
    expect(only(good({ maxPhysicalSet: false }))).toMatchObject({ severity: 'info', rule: 'no-physical-cap', fix: '--maxphysicalbytes 27G' });
  });

  it('eager mirrors that cannot fit in host-maxbytes warn, fix: host-maxbytes = the device caps summed, or lazy mirrors', () => {
    const finding = only(good({ mirror: 'eager', devices: [...device(24 * GiB, 22 * GiB), { index: 1, name: 'gpu', totalBytes: 24 * GiB, maxBytes: 22 * GiB }], hostMaxBytes: 22 * GiB }));
    expect(finding).toMatchObject({ severity: 'warning', rule: 'eager-mirrors-do-not-fit', fix: '--host-maxbytes 44G (or --mirror lazy)' });
    expect(rules(good({ mirror: 'eager' }))).toEqual([]);
  });

  it('a device under 2 GiB is an error, a warning when forced with --allow-small-device', () => {
    const small = device(1536 * MiB, 512 * MiB);
    expect(only(good({ devices: small }))).toMatchObject({ severity: 'error', rule: 'device-too-small' });
    expect(only(good({ devices: small, allowSmallDevice: true }))).toMatchObject({ severity: 'warning', rule: 'device-too-small' });
    expect(only(good({ devices: small })).why).toContain('GPUs with less than 2 GB VRAM are not suitable');
  });

  it('a GPU under 4 GiB is information (the seed: 4 GB minimum, 8 GB recommended)', () => {
    expect(only(good({ devices: device(3 * GiB, 2 * GiB) }))).toMatchObject({ severity: 'info', rule: 'device-below-recommended' });
  });

  it('caps that add up to more than RAM warn (no room for off-heap)', () => {
    const finding = only(good({ ramBytes: 24 * GiB, hostMaxBytes: 22 * GiB, maxPhysicalBytes: 30 * GiB }));
    expect(finding).toMatchObject({ severity: 'warning', rule: 'no-room-for-off-heap', fix: '--host-maxbytes 15G (or a smaller --emulated-device, or node --max-old-space-size)' });
    expect(finding.why).toContain('No room for off-heap');
  });

  it('a physical cap above RAM warns, fix: at most RAM', () => {
    expect(only(good({ ramBytes: 28 * GiB }))).toMatchObject({ severity: 'warning', rule: 'maxphysicalbytes-above-ram', fix: '--maxphysicalbytes 27G' });
    expect(only(good({ ramBytes: 26.5 * GiB }))).toMatchObject({ rule: 'maxphysicalbytes-above-ram', fix: '--maxphysicalbytes 27136M' });
  });

  it('skips the RAM rules when the RAM is unknown (a remote daemon)', () => {
    expect(diagnose(good({ ramBytes: undefined, maxPhysicalBytes: 300 * GiB }))).toEqual([]);
  });

  it('orders errors before warnings before information', () => {
    expect(rules(good({ devices: device(24 * GiB, 30 * GiB), deviceCapSet: false, maxPhysicalSet: false, maxPhysicalBytes: 60 * GiB }))).toEqual([
      'error maxbytes-above-vram',
      'warning no-device-cap',
      'info no-physical-cap',
    ]);
  });

  it('sizeFlag writes sizes as the daemon parses them', () => {
    expect([sizeFlag(22 * GiB), sizeFlag(1536 * MiB), sizeFlag(1000)]).toEqual(['22G', '1536M', '1000']);
  });
});

describe('doctor on a proposed command line (parsed by the daemon\'s loadConfig)', () => {
  it('resolves a cap above VRAM instead of refusing it, so it can be reported', () => {
    const facts = proposedFacts(['--maxbytes', '30G', '--maxphysicalbytes', '40G', '--host-maxbytes', '8G'], { vram: '24G', ram: '64G' }, {});
    expect(facts.devices).toEqual([{ index: 0, name: 'proposed device 0', totalBytes: 24 * GiB, maxBytes: 30 * GiB }]);
    expect(rules(facts)).toEqual(['error maxbytes-above-vram']);
  });

  it('resolves % sizes against the given RAM and VRAM', () => {
    const facts = proposedFacts(['--maxbytes', '50%', '--host-maxbytes', '25%', '--maxphysicalbytes', '50%'], { vram: '16G', ram: '64G' }, {});
    expect(facts).toMatchObject({ devices: [{ maxBytes: 8 * GiB }], hostMaxBytes: 16 * GiB, maxPhysicalBytes: 32 * GiB, deviceCapSet: true, maxPhysicalSet: true });
  });

  it('the host backend: its emulated devices, and the derived caps marked as unset', () => {
    const facts = proposedFacts(['--backend', 'host', '--emulated-device', '4G', '--emulated-devices', '2'], { ram: '32G' }, {});
    expect(facts).toMatchObject({ backend: 'host', deviceCapSet: false, maxPhysicalSet: false, hostMaxBytes: 8 * GiB });
    expect(facts.devices.map((d) => [d.totalBytes, d.maxBytes])).toEqual([
      [4 * GiB, 3 * GiB],
      [4 * GiB, 3 * GiB],
    ]);
  });

  it('bad flags fail as they would in tensormemd, naming the flag', () => {
    expect(() => proposedFacts(['--maxbytes', 'lots'], { vram: '24G' }, {})).toThrowError(/--maxbytes but received "lots"/);
  });
});
