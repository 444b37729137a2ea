import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DoctorFacts, diagnose, sizeFlag } from '../../src/config/doctor';
import { hasErrors, proposedFacts, proposedSubject, renderReport } from '../../src/cli/doctor-command';
import { loadConfig } from '../../src/config/config';
import { checkGuaranteesFit } from '../../src/daemon';
import { readTenantsFile } from '../../src/leases/tenants-file';
import { resolveLimits } from '../../src/memory/limits';
import { applyProfile } from '../../src/config/profiles';
import { UsageError } from '../../src/cli/usage-error';

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

describe('tensormemctl doctor -- FLAGS', () => {
  // The systemd unit's environment file sets TENSORMEM_PROFILE: judged with it in the environment, the report said
  // "proposed configuration (defaults)" while it judged the gpu-training profile.
  it('names the TENSORMEM_ variables of flags it applied beside the command line, "defaults" only when there are neither', () => {
    expect(proposedSubject([], {})).toBe('proposed configuration (defaults)');
    expect(proposedSubject([], { TENSORMEM_PROFILE: 'gpu-training' })).toBe('proposed configuration (TENSORMEM_PROFILE=gpu-training)');
    // Only variables of flags, and an empty one is unset, as the daemon reads them.
    const env = { TENSORMEM_PROFILE: 'gpu-training', TENSORMEM_TOKEN: 'secret', TENSORMEM_ADDRESS: 'unix:/tmp/t.sock', TENSORMEM_MIRROR: '' };
    expect(proposedSubject(['--maxbytes', '1G'], env)).toBe('proposed configuration (tensormemd --maxbytes 1G; TENSORMEM_PROFILE=gpu-training)');
  });

  // README: "tensormemctl doctor --vram 24G,24G --ram 128G -- --profile gpu-training". After the --, tensormemd's
  // parser refused --vram as an unknown tensormemd flag, which did not say that it is doctor's own.
  it('refuses --vram or --ram after the --, saying to put it before', () => {
    for (const args of [['--vram', '24G'], ['--maxbytes', '22G', '--ram=128G']]) {
      expect(() => proposedFacts(args, {}, {}), args.join(' ')).toThrow(UsageError);
      expect(() => proposedFacts(args, {}, {}), args.join(' ')).toThrow(/^--(vram|ram) is tensormemctl doctor's own flag, not tensormemd's: put it before the -- \(tensormemctl doctor --vram 24G --ram 128G -- --profile gpu-training\)$/);
    }
  });
});

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
    // The physical cap set (30G) is raised with it: maxphysicalbytes-below-sum (an error) otherwise.
    expect(finding).toMatchObject({ severity: 'warning', rule: 'eager-mirrors-do-not-fit', fix: '--host-maxbytes 44G with --maxphysicalbytes 49G (or --mirror lazy)' });
    expect(rules(good({ mirror: 'eager' }))).toEqual([]);
  });

  it('eager mirrors whose device caps summed do not fit in RAM: the fix is lazy mirrors (or caps that fit), not a --host-maxbytes past the RAM', () => {
    // 22G of mirrors on a 16 GiB machine: --host-maxbytes 22G would only trade this warning for
    // no-room-for-off-heap (and a derived physical cap below the sum).
    const facts = good({ mirror: 'eager', hostMaxBytes: 4 * GiB, maxPhysicalSet: true, maxPhysicalBytes: 10 * GiB, ramBytes: 16 * GiB });
    const finding = only(facts);
    expect(finding).toMatchObject({ rule: 'eager-mirrors-do-not-fit' });
    // The physical cap set (10G) is raised with them: 9G of mirrors + 4G of heap, maxphysicalbytes-below-sum (an error) otherwise.
    expect(finding.fix).toBe("--mirror lazy (the device caps summed, 22.00 GiB, do not fit in this machine's RAM, 16.00 GiB, beside the V8 heap limit), or --maxbytes 9G with --host-maxbytes 9G and --maxphysicalbytes 14G");
    // Either way the doctor is then content.
    expect(diagnose({ ...facts, mirror: 'lazy' })).toEqual([]);
    expect(diagnose({ ...facts, devices: device(24 * GiB, 9 * GiB), hostMaxBytes: 9 * GiB, maxPhysicalBytes: 14 * GiB })).toEqual([]);
  });

  it('eager mirrors under a --maxphysicalbytes that was set: the fix raises it with --host-maxbytes (else maxphysicalbytes-below-sum, an error)', () => {
    const twoCards = [...device(24 * GiB, 22 * GiB), { index: 1, name: 'gpu', totalBytes: 24 * GiB, maxBytes: 22 * GiB }];
    const facts = good({ mirror: 'eager', devices: twoCards });
    expect(only(facts).fix).toBe('--host-maxbytes 44G with --maxphysicalbytes 49G (or --mirror lazy)');
    expect(diagnose({ ...facts, hostMaxBytes: 44 * GiB, maxPhysicalBytes: 49 * GiB })).toEqual([]);
    // A derived cap follows --host-maxbytes by itself: nothing to add.
    expect(diagnose({ ...facts, maxPhysicalSet: false, maxPhysicalBytes: 64 * GiB }).find((f) => f.rule === 'eager-mirrors-do-not-fit')!.fix).toBe('--host-maxbytes 44G (or --mirror lazy)');
  });

  it('eager mirrors that do not fit in RAM, on devices of different sizes: the --maxbytes of the caps that fit fits the smallest device too', () => {
    const machine = { vram: '24G,2G', ram: '16G' };
    const finding = diagnose(proposedFacts(['--mirror', 'eager'], machine, {})).find((f) => f.rule === 'eager-mirrors-do-not-fit')!;
    const [, maxbytes, hostMaxbytes] = /--maxbytes (\S+) with --host-maxbytes (\S+)/.exec(finding.fix)!;
    // (A --maxbytes of half the room, 4590M, was above the 2 GiB device: maxbytes-above-vram, the daemon refusing to start.)
    expect(maxbytes).toBe('1G');
    const applied = diagnose(proposedFacts(['--mirror', 'eager', '--maxbytes', maxbytes, '--host-maxbytes', hostMaxbytes], machine, {}));
    expect(applied.filter((f) => f.severity !== 'info')).toEqual([]);
  });

  it('a suggested --maxphysicalbytes is never above a RAM that holds the sum (that would be maxphysicalbytes-above-ram)', () => {
    // host-maxbytes 11.5G + heap 4G = 15.5G on 16 GiB: the sum and a GiB of overhead (17G) is past the RAM.
    const base = { hostMaxBytes: 11.5 * GiB, ramBytes: 16 * GiB };
    for (const overrides of [{ maxPhysicalBytes: 0 }, { maxPhysicalBytes: 12 * GiB }, { maxPhysicalBytes: 16 * GiB, maxPhysicalSet: false }]) {
      const finding = only(good({ ...base, ...overrides }));
      const suggested = /--maxphysicalbytes (\S+)/.exec(finding.fix)![1];
      expect(suggested, `${finding.rule}: ${finding.fix}`).toBe('16G');
      expect(diagnose(good({ ...base, maxPhysicalBytes: 16 * GiB }))).toEqual([]);
    }
    // Where the RAM has room, the GiB of overhead stays.
    expect(only(good({ maxPhysicalBytes: 0 })).fix).toBe('--maxphysicalbytes 27G');
  });

  it.each([['--maxbytes', '70G'], ['--maxbytes', '38G'], ['--maxbytes', '100%'], ['--maxbytes', '0']])(
    'on devices of different sizes (16G and 40G), the --maxbytes fix of %s %s fits every device (--maxbytes is one value for all)',
    (flag, value) => {
      const machine = { vram: '16G,40G', ram: '128G' };
      const findings = diagnose(proposedFacts([flag, value], machine, {})).filter((f) => f.rule.startsWith('maxbytes-'));
      expect(findings.length).toBeGreaterThan(0);
      for (const finding of findings) {
        expect(finding.fix).toBe("--device-reserve 2G without --maxbytes (each device's cap is then its own memory less that: 14G, 38G), or --maxbytes 14G (one value for every device: the smallest one's cap)");
      }
      // Either alternative, applied, leaves no finding about a device cap (38G, the 40G card's own, was an error on the 16G card).
      for (const fix of [['--device-reserve', '2G'], [flag, value, '--maxbytes', '14G']]) {
        expect(diagnose(proposedFacts(fix, machine, {})).filter((f) => f.rule.startsWith('maxbytes-') || f.rule === 'no-device-cap'), fix.join(' ')).toEqual([]);
      }
    },
  );

  it('--scrub off warns that new memory may hold what another lease freed; on (or unknown) says nothing', () => {
    expect(only(good({ scrub: false }))).toMatchObject({ severity: 'warning', rule: 'scrub-off', fix: '--scrub on (the default), unless this daemon serves a single trusted tenant' });
    expect(rules(good({ scrub: true }))).toEqual([]);
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

  it('a pool cap of 0 is an error whose fix is a reserve that leaves a pool, and the other fixes never suggest 0', () => {
    const derived = { maxbytesSource: 'derived', reserveBytes: GiB, reserveSource: 'derived' };
    const facts = good({ backend: 'host', devices: [{ ...device(GiB, 0)[0], capOrigin: derived }], deviceCapSet: false, allowSmallDevice: true, maxPhysicalBytes: 40 * GiB });
    const findings = diagnose(facts);
    expect(findings.map((f) => `${f.severity} ${f.rule}`)).toEqual(['error maxbytes-zero', 'warning device-too-small', 'warning no-device-cap']);
    expect(findings[0].what).toContain("--maxbytes is 0 bytes on device 0 (gpu, 1.00 GiB), derived as the device's 1.00 GiB minus --device-reserve 1.00 GiB (the default for a device under 16 GiB)");
    expect(findings[0].fix).toBe('--device-reserve 256M (a smaller reserve), or --maxbytes 768M');
    // --profile gpu-training too: on a device its 1G reserve would take whole, it keeps a quarter (768M pool).
    expect(findings[2].fix).toBe('--maxbytes 768M (or --profile gpu-training)');
    // An explicit --maxbytes 0 is fixed with a --maxbytes.
    const set = only(good({ backend: 'host', devices: [{ ...device(4 * GiB, 0)[0], capOrigin: { maxbytesSource: 'flag', maxbytesText: '0%' } }], maxPhysicalBytes: 40 * GiB }));
    expect(set).toMatchObject({ severity: 'error', rule: 'maxbytes-zero', fix: '--maxbytes 3G' });
    expect(set.what).toContain('"0%" set by --maxbytes');
  });

  it('suggests --profile gpu-training for an unset cap only where the daemon starts with it', () => {
    const daemonStarts = (totalBytes: number) => {
      const devices = [{ index: 0, name: 'tensormem emulated device', totalBytes, freeBytes: totalBytes, computeCapability: 'emulated' }];
      const config = applyProfile(loadConfig(['--profile', 'gpu-training', '--allow-small-device'], {}), { ramBytes: 64 * GiB, deviceTotalBytes: [totalBytes], backend: 'host', heapLimitBytes: 4 * GiB });
      try {
        resolveLimits(config, 'host', devices, 64 * GiB);
        return true;
      } catch {
        return false;
      }
    };
    for (const totalBytes of [GiB, 1536 * MiB, 4 * GiB]) {
      const facts = proposedFacts(['--backend', 'host', '--emulated-device', String(totalBytes), '--allow-small-device'], { ram: '64G' }, {});
      const fix = diagnose(facts).find((f) => f.rule === 'no-device-cap')!.fix;
      expect(fix.includes('--profile gpu-training'), `${totalBytes} bytes: ${fix}`).toBe(daemonStarts(totalBytes));
    }
    expect(daemonStarts(4 * GiB)).toBe(true);
  });

  it('suggests --allow-small-device with a reserve that leaves a pool when the default reserve takes the whole device', () => {
    const small = only(good({ backend: 'host', devices: device(1536 * MiB, 512 * MiB), maxPhysicalBytes: 40 * GiB }));
    expect(small.fix).toBe('--emulated-device 4G (or --allow-small-device)');
    const tiny = diagnose(good({ backend: 'host', devices: device(GiB, 0), maxPhysicalBytes: 40 * GiB })).find((f) => f.rule === 'device-too-small')!;
    expect(tiny.fix).toBe('--emulated-device 4G (or --allow-small-device --device-reserve 256M)');
    const gpu = diagnose(good({ devices: device(GiB, 0) })).find((f) => f.rule === 'device-too-small')!;
    expect(gpu.fix).toBe('Use a device with at least 4 GiB (8 GiB recommended), or --allow-small-device --device-reserve 256M to serve it anyway');
  });

  it('a --host-maxbytes of 0 is an error naming where it came from', () => {
    const finding = only(good({ hostMaxBytes: 0, maxPhysicalBytes: 8 * GiB, hostCapOrigin: { source: 'flag', text: '0' } }));
    expect(finding).toMatchObject({ severity: 'error', rule: 'host-maxbytes-zero', fix: '--host-maxbytes 25% (the default share of RAM)' });
    expect(finding.what).toContain('--host-maxbytes is 0 bytes ("0", set by --host-maxbytes)');
  });

  it('a --maxphysicalbytes of 0 is no process cap (as in the daemon and JavaCPP): a warning, not an error', () => {
    const finding = only(good({ maxPhysicalBytes: 0 }));
    expect(finding).toMatchObject({ severity: 'warning', rule: 'physical-cap-off', fix: '--maxphysicalbytes 27G' });
    expect(diagnose(good({ maxPhysicalBytes: 0, maxPhysicalSet: true, ramBytes: 8 * GiB })).filter((f) => f.severity === 'error')).toEqual([]);
  });

  it('no fix ever suggests a size of 0', () => {
    const zeroFix = /--[a-z-]+ 0(?:[KMGT%]|\b)(?!\.)/;
    const cases: Array<Partial<DoctorFacts>> = [
      { devices: device(GiB, 0), deviceCapSet: false },
      { devices: device(GiB, 0), allowSmallDevice: true },
      { backend: 'host', devices: device(GiB, 0), deviceCapSet: false },
      { devices: device(512 * 1024, 2 * GiB), deviceCapSet: false },
      { devices: device(GiB, 2 * GiB) },
      { devices: device(0, 0), deviceCapSet: false },
      { backend: 'host', devices: device(0, 0) },
      { hostMaxBytes: 0 },
      { maxPhysicalBytes: 0 },
      { ramBytes: 2 * GiB, heapLimitBytes: 4 * GiB },
      { backend: 'host', devices: device(64 * GiB, 32 * GiB), ramBytes: 32 * GiB },
      { backend: 'host', devices: device(4 * GiB, 0), tenants: { file: 't.yaml', guaranteesError: 'too much', guaranteeBytes: GiB } },
    ];
    for (const overrides of cases) {
      for (const finding of diagnose(good(overrides))) {
        expect(finding.fix, `${finding.rule} for ${JSON.stringify(overrides)}`).not.toMatch(zeroFix);
        expect(finding.fix, `${finding.rule} for ${JSON.stringify(overrides)}`).not.toContain('at most 0 B');
      }
    }
  });

  it('no room for off-heap at all: the fix is a smaller heap or emulated device, not --host-maxbytes 0', () => {
    const finding = diagnose(good({ backend: 'host', devices: device(32 * GiB, 31 * GiB), hostMaxBytes: 4 * GiB, maxPhysicalBytes: 60 * GiB, ramBytes: 32 * GiB })).find((f) => f.rule === 'no-room-for-off-heap')!;
    expect(finding.fix).toBe('a smaller --emulated-device, or node --max-old-space-size (the emulated devices and the V8 heap limit alone fill the RAM: no --host-maxbytes fits)');
  });

  it('sizeFlag writes sizes as the daemon parses them', () => {
    expect([sizeFlag(22 * GiB), sizeFlag(1536 * MiB), sizeFlag(1000)]).toEqual(['22G', '1536M', '1000']);
  });
});

describe('doctor on a proposed command line (parsed by the daemon\'s loadConfig)', () => {
  it('resolves a cap above VRAM instead of refusing it, so it can be reported', () => {
    const facts = proposedFacts(['--maxbytes', '30G', '--maxphysicalbytes', '40G', '--host-maxbytes', '8G'], { vram: '24G', ram: '64G' }, {});
    expect(facts.devices).toMatchObject([{ index: 0, name: 'proposed device 0', totalBytes: 24 * GiB, maxBytes: 30 * GiB }]);
    expect(rules(facts)).toEqual(['error maxbytes-above-vram']);
  });

  it('names a misspelled TENSORMEM_ variable, which the daemon ignores, and the one meant (no-device-cap alone hid why the cap was not set)', () => {
    const findings = diagnose(proposedFacts([], { vram: '24G', ram: '64G' }, { TENSORMEM_MAX_BYTES: '8G', TENSORMEM_ADDRESS: 'unix:/tmp/t.sock' }));
    expect(findings.find((f) => f.rule === 'env-misspelled')).toMatchObject({
      severity: 'warning',
      what: 'TENSORMEM_MAX_BYTES is not a tensormemd variable: the daemon ignores it (and logs env_misspelled at start)',
      fix: 'Rename TENSORMEM_MAX_BYTES to TENSORMEM_MAXBYTES',
    });
    expect(findings.filter((f) => f.rule === 'env-misspelled')).toHaveLength(1);
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

  it.each([
    [['--device-reserve', '100%'], 'maxbytes-zero', '("100%", set by --device-reserve)'],
    [['--maxbytes', '0%'], 'maxbytes-zero', '"0%" set by --maxbytes'],
    [['--host-maxbytes', '0'], 'host-maxbytes-zero', '("0", set by --host-maxbytes)'],
  ])('reports %j as the error the daemon stops with', (args, rule, from) => {
    const config = loadConfig(['--backend', 'host', '--emulated-device', '4G', ...args], {});
    const devices = [{ index: 0, name: 'tensormem emulated device', totalBytes: 4 * GiB, freeBytes: 4 * GiB, computeCapability: 'emulated' }];
    const refusal = (() => {
      try {
        resolveLimits(config, 'host', devices, 32 * GiB);
      } catch (error) {
        return (error as Error).message;
      }
      return 'started';
    })();
    const facts = proposedFacts(['--backend', 'host', '--emulated-device', '4G', ...args], { ram: '32G' }, {});
    const finding = diagnose(facts).find((f) => f.rule === rule)!;
    expect(finding.severity).toBe('error');
    expect(finding.what).toContain(from);
    expect(refusal).toBe(`${finding.what}. Fix: ${finding.fix}.`);
  });

  it('an emulated 1 GiB device with --allow-small-device (the device-too-small fix) and the default reserve: error, and a fix that works', () => {
    const facts = proposedFacts(['--backend', 'host', '--emulated-device', '1G', '--allow-small-device'], { ram: '32G' }, {});
    const finding = diagnose(facts).find((f) => f.rule === 'maxbytes-zero')!;
    expect(finding).toMatchObject({ severity: 'error', fix: '--device-reserve 256M (a smaller reserve), or --maxbytes 768M' });
    const fixed = proposedFacts(['--backend', 'host', '--emulated-device', '1G', '--allow-small-device', '--device-reserve', '256M'], { ram: '32G' }, {});
    expect(fixed.devices[0].maxBytes).toBe(768 * MiB);
    expect(diagnose(fixed).filter((f) => f.severity === 'error')).toEqual([]);
  });

  it('--maxphysicalbytes 0 is no process cap: no error, exit status 0', () => {
    const facts = proposedFacts(['--backend', 'host', '--emulated-device', '4G', '--maxphysicalbytes', '0'], { ram: '32G' }, {});
    expect(facts.maxPhysicalBytes).toBe(0);
    expect(rules(facts)).toContain('warning physical-cap-off');
    expect(hasErrors(diagnose(facts))).toBe(false);
  });

  describe('--tenants, checked as tensormemd checks it at start', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tensormem-doctor-'));
    const tenant = (name: string, guarantee: string) => `  - name: ${name}\n    token_sha256: "${createHash('sha256').update(name).digest('hex')}"\n    guarantee: { device: ${guarantee} }\n`;
    const file = (name: string, text: string) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    };
    const base = ['--backend', 'host', '--emulated-device', '4G', '--maxbytes', '3G', '--maxphysicalbytes', '20G'];

    it('guarantees above the smallest pool cap are an error naming the file, with the daemon\'s own words', () => {
      const over = file('over.yaml', `tenants:\n${tenant('a', '2G')}${tenant('b', '2G')}`);
      const findings = diagnose(proposedFacts([...base, '--tenants', over], { ram: '32G' }, {}));
      const finding = findings.find((f) => f.rule === 'tenant-guarantees-above-maxbytes')!;
      expect(finding.severity).toBe('error');
      expect(finding.what).toContain(`--tenants ${over}`);
      const daemonWords = (() => {
        try {
          checkGuaranteesFit(readTenantsFile(over), [3 * GiB], over);
        } catch (error) {
          return (error as Error).message;
        }
      })();
      expect(finding.what).toContain(daemonWords);
      expect(finding.fix).toBe(`Guarantees in ${over} that add up to at most 3.00 GiB, or --maxbytes 4G`);
      expect(hasErrors(findings)).toBe(true);
    });

    it("README's tenants file example, under its own command line (--maxbytes 14G on a 16 GiB card), draws no tenants finding", () => {
      // Operating a shared GPU host, step 2: the file a reader copies. Its admin's token_sha256 is a "…" to fill in.
      const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
      const example = readme.match(/^ {3}```yaml\n([\s\S]*?)^ {3}```$/m);
      expect(example, 'the tenants file example of README "Operating a shared GPU host"').not.toBeNull();
      const text = example![1].replace(/^ {3}/gm, '').replace('"…"', `"${createHash('sha256').update('ops').digest('hex')}"`);
      const path = file('readme-tenants.yaml', text);
      const findings = diagnose(proposedFacts(['--tenants', path, '--maxbytes', '14G', '--maxphysicalbytes', '40G'], { vram: '16G', ram: '64G' }, {}));
      const tenantRules = ['tenants-file-unreadable', 'tenant-guarantees-above-maxbytes', 'mmap-files-uncapped', 'mapped-regions-unshared', 'host-memory-unshared'];
      expect(findings.filter((finding) => tenantRules.includes(finding.rule)).map((finding) => `${finding.rule}: ${finding.what}`)).toEqual([]);
    });

    it('guarantees that fit pass', () => {
      const fits = file('fits.yaml', `tenants:\n${tenant('a', '1G')}${tenant('b', '2G')}`);
      expect(diagnose(proposedFacts([...base, '--tenants', fits], { ram: '32G' }, {})).filter((f) => f.severity === 'error')).toEqual([]);
    });

    it('warns when tenants may fill the --mmap-dir file system: no --mmap-maxbytes and a tenant without quota.mmap', () => {
      const quota = (name: string, mmap: string) => `  - name: ${name}\n    token_sha256: "${createHash('sha256').update(name).digest('hex')}"\n    quota: { mmap: ${mmap} }\n`;
      const admin = `  - name: ops\n    token_sha256: "${createHash('sha256').update('ops').digest('hex')}"\n    admin: true\n`;
      const mixed = file('mmap-mixed.yaml', `tenants:\n${quota('a', '8G')}${tenant('b', '1G')}${tenant('c', '1G')}${admin}`);
      const finding = diagnose(proposedFacts([...base, '--tenants', mixed], { ram: '32G' }, {})).find((f) => f.rule === 'mmap-files-uncapped')!;
      expect(finding.severity).toBe('warning');
      expect(finding.what).toBe(`No --mmap-maxbytes, and tenants "b", "c" of --tenants ${mixed} have no quota.mmap: each may create MMAP workspace files until the file system of --mmap-dir is full`);
      expect(finding.fix).toBe(`--mmap-maxbytes SIZE (all tenants together), and quota: { mmap: SIZE } for each tenant in ${mixed}`);
      // A daemon-wide cap, or a quota.mmap for every tenant (admins need none), answers it.
      expect(rules(proposedFacts([...base, '--tenants', mixed, '--mmap-maxbytes', '100G'], { ram: '32G' }, {}))).not.toContain('warning mmap-files-uncapped');
      const all = file('mmap-all.yaml', `tenants:\n${quota('a', '8G')}${quota('b', '8G')}${admin}`);
      expect(rules(proposedFacts([...base, '--tenants', all], { ram: '32G' }, {}))).not.toContain('warning mmap-files-uncapped');
    });

    it('warns when one tenant may take every mapped region: a tenant without max_mapped_regions, or theirs past --max-mapped-regions', () => {
      const regions = (name: string, count: number) => `  - name: ${name}\n    token_sha256: "${createHash('sha256').update(name).digest('hex')}"\n    max_mapped_regions: ${count}\n`;
      const admin = `  - name: ops\n    token_sha256: "${createHash('sha256').update('ops').digest('hex')}"\n    admin: true\n`;
      const mixed = file('regions-mixed.yaml', `tenants:\n${regions('a', 100)}${tenant('b', '1G')}${admin}`);
      const finding = diagnose(proposedFacts([...base, '--tenants', mixed, '--max-mapped-regions', '1000'], { ram: '32G' }, {})).find((f) => f.rule === 'mapped-regions-unshared')!;
      expect(finding.severity).toBe('warning');
      expect(finding.what).toBe(`Tenant "b" of --tenants ${mixed} has no max_mapped_regions: it may take all 1000 of --max-mapped-regions`);
      expect(finding.fix).toBe(`max_mapped_regions for each tenant in ${mixed}, adding up to at most 1000`);
      const over = file('regions-over.yaml', `tenants:\n${regions('a', 600)}${regions('b', 600)}${admin}`);
      expect(diagnose(proposedFacts([...base, '--tenants', over, '--max-mapped-regions', '1000'], { ram: '32G' }, {})).find((f) => f.rule === 'mapped-regions-unshared')!.what).toBe(
        `The max_mapped_regions of --tenants ${over} add up to 1200, more than --max-mapped-regions 1000`,
      );
      // Shares within the cap, no cap at all, or one tenant (admins aside): nothing to split.
      const split = file('regions-split.yaml', `tenants:\n${regions('a', 500)}${regions('b', 500)}${admin}`);
      expect(rules(proposedFacts([...base, '--tenants', split, '--max-mapped-regions', '1000'], { ram: '32G' }, {}))).not.toContain('warning mapped-regions-unshared');
      expect(rules(proposedFacts([...base, '--tenants', mixed, '--max-mapped-regions', '0'], { ram: '32G' }, {}))).not.toContain('warning mapped-regions-unshared');
      const one = file('regions-one.yaml', `tenants:\n${tenant('b', '1G')}${admin}`);
      expect(rules(proposedFacts([...base, '--tenants', one, '--max-mapped-regions', '1000'], { ram: '32G' }, {}))).not.toContain('warning mapped-regions-unshared');
    });

    it("warns when a tenant may take the host memory of one with a device guarantee: a tenant without quota.host, or theirs past --host-maxbytes", () => {
      const entry = (name: string, lines: string) => `  - name: ${name}\n    token_sha256: "${createHash('sha256').update(name).digest('hex')}"\n${lines}`;
      const host = (name: string, size: string, guarantee?: string) => entry(name, `    quota: { host: ${size} }\n${guarantee ? `    guarantee: { device: ${guarantee} }\n` : ''}`);
      const admin = entry('ops', '    admin: true\n');
      const flags = [...base, '--host-maxbytes', '8G'];
      const mixed = file('host-mixed.yaml', `tenants:\n${host('a', '2G', '1G')}${entry('b', '')}${admin}`);
      const finding = diagnose(proposedFacts([...flags, '--tenants', mixed], { ram: '32G' }, {})).find((f) => f.rule === 'host-memory-unshared')!;
      expect(finding.severity).toBe('warning');
      expect(finding.what).toBe(
        `Tenant "b" of --tenants ${mixed} has no quota.host: it may take all of --host-maxbytes (8.00 GiB) from "a", whose device guarantee does not cover host memory: the reads of their device arrays (each needs a host mirror), their HOST_ONLY arrays and, with --mirror eager, their device allocations inside the guarantee are then refused (HOST_OUT_OF_MEMORY)`,
      );
      expect(finding.fix).toBe(`quota: { host: SIZE } for each tenant in ${mixed}, adding up to at most --host-maxbytes (8.00 GiB)`);
      const over = file('host-over.yaml', `tenants:\n${host('a', '6G', '1G')}${host('b', '6G')}${admin}`);
      expect(diagnose(proposedFacts([...flags, '--tenants', over], { ram: '32G' }, {})).find((f) => f.rule === 'host-memory-unshared')!.what).toMatch(
        new RegExp(`^The quota.host of --tenants ${over} add up to 12.00 GiB, more than --host-maxbytes 8.00 GiB: the others may take the host memory of "a", `),
      );
      // The guaranteed tenant without quota.host of its own: another's quota.host past the cap still takes it all.
      const unquotedGuaranteed = file('host-unquoted-guaranteed.yaml', `tenants:\n${tenant('a', '1G')}${host('b', '12G')}${admin}`);
      expect(diagnose(proposedFacts([...flags, '--tenants', unquotedGuaranteed], { ram: '32G' }, {})).find((f) => f.rule === 'host-memory-unshared')?.what).toMatch(
        new RegExp(`^The quota.host of --tenants ${unquotedGuaranteed} add up to 12.00 GiB, more than --host-maxbytes 8.00 GiB: the others may take the host memory of "a", `),
      );
      // Host quotas within the cap, no guarantee to protect, or a guaranteed tenant alone without quota.host (it cannot starve itself).
      const split = file('host-split.yaml', `tenants:\n${host('a', '4G', '1G')}${host('b', '4G')}${admin}`);
      const noGuarantee = file('host-no-guarantee.yaml', `tenants:\n${entry('a', '')}${entry('b', '')}${admin}`);
      const alone = file('host-alone.yaml', `tenants:\n${tenant('a', '1G')}${admin}`);
      for (const path of [split, noGuarantee, alone]) expect(rules(proposedFacts([...flags, '--tenants', path], { ram: '32G' }, {}))).not.toContain('warning host-memory-unshared');
    });

    it('a file that does not parse, or is missing, is an error naming the file', () => {
      const bad = file('bad.yaml', 'maxbytes: 12Q\n');
      const finding = diagnose(proposedFacts([...base, '--tenants', bad], { ram: '32G' }, {})).find((f) => f.rule === 'tenants-file-unreadable')!;
      expect(finding.severity).toBe('error');
      expect(finding.what).toContain(`--tenants ${bad} cannot be used: ${bad}`);
      const missing = join(dir, 'missing.yaml');
      expect(rules(proposedFacts([...base, '--tenants', missing], { ram: '32G' }, {}))).toContain('error tenants-file-unreadable');
    });
  });

  it('bad flags fail as they would in tensormemd, naming the flag', () => {
    expect(() => proposedFacts(['--maxbytes', 'lots'], { vram: '24G' }, {})).toThrowError(/--maxbytes but received "lots"/);
  });
});

describe('doctor report', () => {
  const finding = (severity: 'error' | 'warning' | 'info', rule: string) => ({ severity, rule, what: 'what', why: 'why', fix: 'fix' });
  const closing = (findings: ReturnType<typeof finding>[]) => renderReport({ subject: 'proposed configuration', facts: good(), findings }).split('\n').at(-1);

  it('counts its findings in its last line, a count of 1 in the singular', () => {
    expect(closing([])).toBe('No pitfalls found.');
    expect(closing([finding('error', 'a')])).toBe('1 finding: 1 error, 0 warnings, 0 info');
    expect(closing([finding('warning', 'a')])).toBe('1 finding: 0 errors, 1 warning, 0 info');
    expect(closing([finding('error', 'a'), finding('error', 'b')])).toBe('2 findings: 2 errors, 0 warnings, 0 info');
    expect(closing([finding('warning', 'a'), finding('warning', 'b'), finding('info', 'c')])).toBe('3 findings: 0 errors, 2 warnings, 1 info');
  });
});
