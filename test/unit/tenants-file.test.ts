import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTenants, readTenantsFile } from '../../src/leases/tenants-file';
import { TenantRegistry } from '../../src/leases/tenant-registry';
import { checkGuarantees } from '../../src/memory/guarantee-policy';
import { QuotaAdaptor } from '../../src/memory/quota-adaptor';
import { PoolResource } from '../../src/memory/pool-resource';
import { OutOfMemoryError, QuotaExceededError, TensormemError } from '../../src/errors';

const sha = (token: string) => createHash('sha256').update(token).digest('hex');
const MiB = 1024 * 1024;

const GOOD = `tenants:
  - name: team-a
    token_sha256: "${sha('token-a')}"
    quota: { device: 8G, host: 4G }
    guarantee: { device: 2G }
    max_leases: 16
  - name: admin
    token_sha256: "${sha('token-admin')}"
    admin: true
`;

function errorOf(fn: () => unknown): TensormemError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TensormemError);
    return error as TensormemError;
  }
  throw new Error('expected an error');
}

describe('tenants file', () => {
  it('reads tenants, sizes as powers of 1024, and defaults', () => {
    const [a, admin] = parseTenants(GOOD);
    expect(a).toEqual({ name: 'team-a', tokenSha256: sha('token-a'), deviceQuotaBytes: 8 * 1024 ** 3, hostQuotaBytes: 4 * 1024 ** 3, mmapQuotaBytes: 0, deviceGuaranteeBytes: 2 * 1024 ** 3, maxLeases: 16, maxArrays: 0, maxMappedRegions: 0, admin: false });
    expect(admin).toMatchObject({ name: 'admin', admin: true, deviceQuotaBytes: 0, maxLeases: 0 });
  });

  it('reads quota.mmap, the cap on the tenant\'s MMAP workspace files, and names the three quota keys when one is unknown', () => {
    expect(parseTenants(GOOD.replace('quota: { device: 8G, host: 4G }', 'quota: { device: 8G, mmap: 32G }'))[0]).toMatchObject({ deviceQuotaBytes: 8 * 1024 ** 3, hostQuotaBytes: 0, mmapQuotaBytes: 32 * 1024 ** 3 });
    const error = errorOf(() => parseTenants(GOOD.replace('host: 4G', 'disk: 4G'), 'tenants.yaml'));
    expect(error.message).toContain('tenants.yaml:4: unknown key "disk" in quota (expected device, host or mmap)');
  });

  it('reads max_arrays, the live arrays of all of a tenant\'s leases together', () => {
    expect(parseTenants(GOOD.replace('max_leases: 16', 'max_leases: 16\n    max_arrays: 5000'))[0].maxArrays).toBe(5000);
  });

  it('reads max_mapped_regions, its part of --max-mapped-regions', () => {
    expect(parseTenants(GOOD.replace('max_leases: 16', 'max_leases: 16\n    max_mapped_regions: 300'))[0].maxMappedRegions).toBe(300);
  });

  it('reads the JSON form', () => {
    const json = JSON.stringify({ tenants: [{ name: 'j', token_sha256: sha('t'), quota: { device: '1G' } }] });
    expect(parseTenants(json, 'tenants.json')[0].deviceQuotaBytes).toBe(1024 ** 3);
  });

  // YAML's flow syntax takes a trailing comma (the file was read as it stood), and refused other JSON
  // mistakes in YAML's words ("Unexpected double-quoted-scalar token"): a .json file is JSON.
  const JSON_FILE = `{
  "tenants": [
    { "name": "j", "token_sha256": "${sha('t')}", "max_leases": 2 }
  ]
}
`;
  // Columns: the '}' after the comma, the '"' where the comma is missing, the end after the last ']'.
  it.each([
    ['a trailing comma', JSON_FILE.replace('"max_leases": 2 }', '"max_leases": 2, }'), 3, 121],
    ['a trailing comma after the list', JSON_FILE.replace('  ]\n', '  ],\n'), 5, 1],
    ['a missing comma', JSON_FILE.replace('"j",', '"j"'), 3, 19],
    ['a comment', JSON_FILE.replace('{\n', '{\n  // the tenants\n'), 2, 3],
    ['single quotes', JSON_FILE.replace('"j"', "'j'"), 3, 15],
    ['an end too soon', JSON_FILE.slice(0, -3), 4, 4],
  ])('refuses a .json file with %s as JSON, naming the file, line and column', (_what, text, line, column) => {
    expect(() => JSON.parse(text)).toThrow();
    const error = errorOf(() => parseTenants(text, 'tenants.json'));
    expect(error.message).toMatch(new RegExp(`^tenants\\.json:${line}:${column}: not valid JSON \\(`));
    expect(error.message).not.toMatch(/YAML|token at line|position/);
    expect(error.metadata.field).toBe('--tenants');
  });

  it('reads a .json file with a byte order mark or tabs as JSON does, and a .yaml file with a trailing comma as YAML does', () => {
    expect(parseTenants(`\ufeff${JSON_FILE}`, 'tenants.json')[0].maxLeases).toBe(2);
    expect(parseTenants(JSON_FILE.replace(/^ +/gm, (spaces) => '\t'.repeat(spaces.length / 2)), 'tenants.json')[0].maxLeases).toBe(2);
    const yamlWithComma = JSON_FILE.replace('"max_leases": 2 }', '"max_leases": 2, }');
    expect(parseTenants(yamlWithComma, 'tenants.yaml')[0].maxLeases).toBe(2);
  });

  it('reads a .json file with lone CR line ends (valid JSON whitespace) as JSON does, and names lines as the JSON check does', () => {
    // YAML read a lone CR as part of the text: the key "\r\"tenants\"", a max_leases of "\r2".
    const crOnly = JSON_FILE.replace(/\n/g, '\r').replace('"max_leases": 2', '"max_leases":\r2');
    expect(JSON.parse(crOnly).tenants[0].max_leases).toBe(2);
    expect(parseTenants(crOnly, 'tenants.json')[0].maxLeases).toBe(2);
    // A YAML-side error on line 3 of a CR-only file says line 3, as the JSON check counts.
    const badName = crOnly.replace('"j"', '"j k"');
    expect(errorOf(() => parseTenants(badName, 'tenants.json')).message).toMatch(/^tenants\.json:3: /);
  });

  it('parses a .json file once, as JSON: a key given twice and a list nested past the stack are refused in its terms, with their place', () => {
    // Read again by the YAML parser, these were refused in its words: "Map keys must be unique at line
    // 3, column 45:", and "Maximum call stack size exceeded" for 100,000 levels.
    const twice = errorOf(() => parseTenants(JSON_FILE.replace('"max_leases": 2', '"max_leases": 2, "name": "k"'), 'tenants.json'));
    expect(twice.message).toBe('tenants.json:3:121: key "name" is given twice in one object');
    const depth = 100_000;
    const deep = errorOf(() => parseTenants(`{"tenants": [${'['.repeat(depth)}${']'.repeat(depth)}]}`, 'tenants.json'));
    expect(deep.message).toBe('tenants.json:1: expected a tenant (a mapping with name and token_sha256)');
  });

  it.each([
    [GOOD.replace('8G', '8Q'), 4, 'quota.device of tenant "team-a"'],
    // A quota of 0 is none: one under a byte but not 0 must not become none.
    [GOOD.replace('8G', '0.5'), 4, 'Expected 0 or a size of at least 1 byte for quota.device of tenant "team-a" but received "0.5"'],
    [GOOD.replace(`"${sha('token-admin')}"`, 'nothex'), 8, 'token_sha256 of tenant "admin"'],
    [GOOD.replace('max_leases: 16', 'max_leases: -1'), 6, 'max_leases'],
    [GOOD.replace('max_leases: 16', 'max_leases: 16\n    max_arrays: 1.5'), 7, 'max_arrays of tenant "team-a"'],
    [GOOD.replace('max_leases: 16', 'max_leases: 16\n    max_mapped_regions: "many"'), 7, 'expected a non-negative integer for max_mapped_regions of tenant "team-a" but received "many"'],
    // Numbers past a double (1e400, or .inf) and .nan: as written, where JSON.stringify said "received null".
    [GOOD.replace('max_leases: 16', 'max_leases: 1e400'), 6, 'expected a non-negative integer for max_leases of tenant "team-a" but received 1e400'],
    [GOOD.replace('max_leases: 16', 'max_leases: .nan'), 6, 'expected a non-negative integer for max_leases of tenant "team-a" but received .nan'],
    [GOOD.replace('admin: true', 'admin: yes please'), 9, 'expected true or false for admin of tenant "admin" but received "yes please"'],
    [GOOD.replace('guarantee:', 'guarantees:'), 5, 'unknown key "guarantees" (did you mean guarantee?; expected one of name, token_sha256, quota, guarantee,'],
    [GOOD.replace('max_leases: 16', 'max_lease: 16'), 6, 'unknown key "max_lease" (did you mean max_leases?; expected one of '],
    [GOOD.replace('max_leases: 16', 'storage: 16'), 6, 'unknown key "storage" (expected one of '],
    [GOOD.replace('name: admin', 'name: team-a'), 7, 'listed twice'],
    [GOOD.replace(sha('token-admin'), sha('token-a')), 8, 'same token'],
    [GOOD.replace('quota: { device: 8G, host: 4G }', 'quota: { device: 1G, host: 4G }'), 5, 'above its quota.device'],
    ['tenants:\n  - name: [oops\n', 3, 'Flow sequence'],
    ['teams: []\n', 1, '"tenants:"'],
    // A tenant's key indented as if at the top: its quota would be dropped, and the tenant left without one.
    [`${GOOD}quota: { device: 1G }\n`, 10, 'unknown key "quota" at the top of the file (expected only tenants, a list of tenants)'],
  ])('refuses a bad file naming the line (%#)', (text, line, mention) => {
    const error = errorOf(() => parseTenants(text, '/etc/tensormem/tenants.yaml'));
    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain(`/etc/tensormem/tenants.yaml:${line}: `);
    expect(error.message).toContain(mention);
  });
  it('names an unknown key of 1 MB by its start and length, not whole', () => {
    const key = 'k'.repeat(1_000_000);
    const error = errorOf(() => parseTenants(GOOD.replace('max_leases: 16', `? ${key}\n    : 16`), '/etc/tensormem/tenants.yaml'));
    expect(error.message).toContain('/etc/tensormem/tenants.yaml:6: unknown key "kkkk');
    expect(error.message).toContain('… (1000000 characters) (expected one of ');
    expect(error.message.length).toBeLessThan(1000);
  });
});

describe('tenant registry', () => {
  const registry = new TenantRegistry(parseTenants(GOOD));

  it('matches tokens by hash and refuses unknown, missing or mismatched ones', () => {
    expect(registry.authorizeOpen('token-a', '').name).toBe('team-a');
    expect(registry.authorizeOpen('token-a', 'team-a').spec?.maxLeases).toBe(16);
    const otherTenant = errorOf(() => registry.authorizeOpen('token-a', 'admin'));
    expect(otherTenant.kind).toBe('UNAUTHENTICATED');
    // The field and the value: which tenant was asked for, and whose the token is (its holder may know: OpenLease without tenant answers it).
    expect(otherTenant.message).toBe('tenant: this token is tenant "team-a"\'s, not "admin"\'s: leave tenant empty, or send the token of tenant "admin"');
    expect(otherTenant.metadata).toEqual({ field: 'tenant', tenant: 'admin' });
    expect(errorOf(() => registry.authorizeOpen('nope', '')).message).toBe('unknown tenant token');
    // The typed client has no header to set: its way to send the tenant token is openLease's tenantToken.
    expect(errorOf(() => registry.authorizeOpen(undefined, '')).message).toBe(
      'missing tenant token: send "authorization: Bearer <tenant token>", or openLease({ tenantToken }) from the typed client (tensormemctl: --token or $TENSORMEM_TOKEN)',
    );
  });

  it('lets only admins evict', () => {
    registry.requireAdmin('token-admin');
    expect(errorOf(() => registry.requireAdmin('token-a')).kind).toBe('PERMISSION_DENIED');
    expect(errorOf(() => registry.requireAdmin('x')).kind).toBe('UNAUTHENTICATED');
  });

  it("keeps a dropped tenant's last quotas but not its guarantee, until a reload brings it back", () => {
    const reloaded = new TenantRegistry(parseTenants(GOOD));
    const before = reloaded.limitsOf('team-a');
    expect(before.deviceGuaranteeBytes).toBe(2 * 1024 * MiB);
    reloaded.replace(reloaded.list().filter((tenant) => tenant.name !== 'team-a'));
    // Its open leases stay bound by its quotas; its guarantee would keep reserving memory no one may use.
    expect(reloaded.limitsOf('team-a')).toEqual({ deviceQuotaBytes: before.deviceQuotaBytes, hostQuotaBytes: before.hostQuotaBytes, mmapQuotaBytes: before.mmapQuotaBytes, deviceGuaranteeBytes: 0, maxArrays: before.maxArrays, maxMappedRegions: before.maxMappedRegions });
    expect(errorOf(() => reloaded.authorizeOpen('token-a', '')).kind).toBe('UNAUTHENTICATED');
    reloaded.replace(parseTenants(GOOD));
    expect(reloaded.limitsOf('team-a')).toEqual(before);
  });

  it("forgets a dropped tenant's limits once it is no longer in use", () => {
    const reloaded = new TenantRegistry(parseTenants(GOOD));
    const before = reloaded.limitsOf('team-a');
    reloaded.replace(reloaded.list().filter((tenant) => tenant.name !== 'team-a'));
    reloaded.forgetUnusedDropped((name) => name === 'team-a');
    expect(reloaded.droppedCount).toBe(1);
    expect(reloaded.limitsOf('team-a').deviceQuotaBytes).toBe(before.deviceQuotaBytes);
    reloaded.forgetUnusedDropped(() => false);
    expect(reloaded.droppedCount).toBe(0);
    expect(reloaded.limitsOf('team-a')).toEqual({ deviceQuotaBytes: 0, hostQuotaBytes: 0, mmapQuotaBytes: 0, deviceGuaranteeBytes: 0, maxArrays: 0, maxMappedRegions: 0 });
  });

  it('takes any tenant name in open mode', () => {
    const open = new TenantRegistry(undefined);
    expect(open.authorizeOpen(undefined, '')).toEqual({ name: 'default' });
    expect(open.authorizeOpen(undefined, 'mine').name).toBe('mine');
    expect(open.isAdmin(undefined)).toBe(true);
  });
});

describe('quotas and guarantees', () => {
  const pool = () =>
    new PoolResource({ source: { allocateChunk: (() => { let n = 1; return () => n++; })(), freeChunk: () => {} }, memory: 'DEVICE', device: 0, maxReservedBytes: 64 * MiB, chunkBytes: 8 * MiB });

  it('refuses past the quota before touching the pool, with the numbers', () => {
    const upstream = pool();
    const quota = new QuotaAdaptor(upstream, 'team-a', 4 * MiB, 'DEVICE', 0);
    const block = quota.allocate(3 * MiB, {});
    const error = errorOf(() => quota.allocate(MiB + 1, {})) as QuotaExceededError;
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(error.reason).toBe('QUOTA_EXCEEDED');
    expect(error.message).toContain('for tenant "team-a": quota 4194304 bytes (4.00 MiB), used 3145728 bytes (3.00 MiB)');
    // What the request takes of the quota (its 256-byte-aligned block) is said when it is more than asked.
    expect(error.message).toContain('1048577 bytes (1.00 MiB) (it takes 1048832 bytes (1.00 MiB) of the quota: blocks are rounded up)');
    expect(error.metadata.takes_bytes).toBe('1048832');
    expect(errorOf(() => quota.allocate(2 * MiB, {})).message).not.toContain('it takes');
    expect(upstream.usedBytes).toBe(3 * MiB);
    quota.allocate(MiB, {});
    expect(quota.usedBytes).toBe(4 * MiB);
    quota.deallocate(block);
    expect(quota.usedBytes).toBe(MiB);
  });

  it('checks the aligned block against a quota that is not a multiple of the alignment, not the bytes asked', () => {
    const upstream = pool();
    // quota.device: 1000 (bytes): a 1000-byte request fits as asked, but its block takes 1024.
    const quota = new QuotaAdaptor(upstream, 'team-a', 1000, 'DEVICE', 0);
    const error = errorOf(() => quota.allocate(1000, {})) as QuotaExceededError;
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect(error.message).toContain('1000 bytes (1000 B) (it takes 1024 bytes (1.00 KiB) of the quota: blocks are rounded up) for tenant "team-a": quota 1000 bytes (1000 B), used 0 bytes (0 B)');
    expect(error.metadata).toMatchObject({ requested_bytes: '1000', takes_bytes: '1024', quota_bytes: '1000', used_bytes: '0' });
    expect(upstream.usedBytes).toBe(0);
    expect(quota.usedBytes).toBe(0);
    // 768 (three 256-byte units) fits; past it, even one byte takes another unit and is refused.
    quota.allocate(700, {});
    expect(quota.usedBytes).toBe(768);
    expect(errorOf(() => quota.allocate(1, {})).reason).toBe('QUOTA_EXCEEDED');
    expect(quota.usedBytes).toBe(768);
  });

  it('lets a tenant borrow only while others keep their unused guarantees', () => {
    const pool = { usedBytes: 10 * MiB, capBytes: 32 * MiB, largestFreeBlockBytes: 0 };
    // b's guarantee 16 MiB, 4 used; c's 2 MiB, 6 used (none unused). Others' unused guarantees (the sum
    // TenantAccounts.othersUnusedGuaranteeBytes keeps; tenant-guarantee-holders.test.ts): 12 MiB for a, 0 for b.
    const othersOfA = 12 * MiB;
    const othersOfB = 0;
    // a: 10 used + 10 asked + b's 12 unused = 32: exactly at the cap.
    checkGuarantees(0, 'a', 10 * MiB, 10 * MiB, pool, othersOfA);
    const error = errorOf(() => checkGuarantees(0, 'a', 10 * MiB + 256, 10 * MiB + 256, pool, othersOfA)) as OutOfMemoryError;
    expect(error.reason).toBe('DEVICE_OUT_OF_MEMORY');
    expect(error.message).toContain("pool cap (maxbytes) less other tenants' unused guarantees (12.00 MiB) 20971520 bytes (20.00 MiB)");
    // b inside its own guarantee is not held back by it.
    checkGuarantees(0, 'b', 12 * MiB, 12 * MiB, pool, othersOfB);
  });
});

describe('readTenantsFile: only the daemon\'s user or root may write it', () => {
  /** GOOD written as tenants.yaml in a new folder of mode `folderMode`, the file of mode `fileMode`. */
  function fileWith(fileMode: number, folderMode = 0o700): { path: string; folder: string } {
    const folder = mkdtempSync(join(tmpdir(), 'tensormem-tenants-mode-'));
    const path = join(folder, 'tenants.yaml');
    writeFileSync(path, GOOD);
    chmodSync(path, fileMode);
    chmodSync(folder, folderMode);
    return { path, folder };
  }

  it('reads a file of mode 0600 or 0644 in a folder only its owner writes, or a sticky shared one (/tmp)', () => {
    for (const [fileMode, folderMode] of [[0o600, 0o700], [0o644, 0o755], [0o640, 0o1777]]) {
      const { path, folder } = fileWith(fileMode, folderMode);
      try {
        expect(readTenantsFile(path).map((tenant) => tenant.name)).toEqual(['team-a', 'admin']);
      } finally {
        rmSync(folder, { recursive: true, force: true });
      }
    }
  });

  it('refuses a file that group or others may write, naming the file and its mode: they could add an admin tenant', () => {
    for (const mode of [0o666, 0o620, 0o602]) {
      const { path, folder } = fileWith(mode);
      try {
        const error = errorOf(() => readTenantsFile(path));
        expect(error.kind).toBe('INVALID_ARGUMENT');
        expect(error.message).toContain(path);
        expect(error.message).toContain(`may be written by group or others (mode ${mode.toString(8)})`);
      } finally {
        rmSync(folder, { recursive: true, force: true });
      }
    }
  });

  it('refuses a file in a folder that others may write without the sticky bit (they could replace it)', () => {
    const { path, folder } = fileWith(0o600, 0o777);
    try {
      expect(errorOf(() => readTenantsFile(path)).message).toContain(`its folder ${folder} (user ${process.getuid!()}, mode 777) lets another user replace the file`);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('refuses a file reached through a link when a folder along the link (the target\'s) lets others replace it, as if named there', () => {
    const { path: target, folder: shared } = fileWith(0o600, 0o777);
    const folder = mkdtempSync(join(tmpdir(), 'tensormem-tenants-link-'));
    try {
      const link = join(folder, 'tenants.yaml');
      // Two hops: the link in a folder only its owner writes, to a link beside it, to the file in the shared folder.
      symlinkSync(target, join(folder, 'hop.yaml'));
      symlinkSync('hop.yaml', link);
      expect(errorOf(() => readTenantsFile(link)).message).toContain(`${link}: its folder ${shared} (user ${process.getuid!()}, mode 777) lets another user replace the file`);
      // A link to a file in a folder only its owner writes is read.
      chmodSync(shared, 0o700);
      expect(readTenantsFile(link).map((tenant) => tenant.name)).toEqual(['team-a', 'admin']);
    } finally {
      rmSync(folder, { recursive: true, force: true });
      rmSync(shared, { recursive: true, force: true });
    }
  });

  it('reads a file in a folder that others may write when the folder is a read-only mount (a Kubernetes ConfigMap volume: 0777, no sticky bit, files linked through ..data)', (context) => {
    const mountPoint = mkdtempSync(join(tmpdir(), 'tensormem-tenants-ro-'));
    try {
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0777', 'tmpfs', mountPoint], { stdio: 'ignore' });
      } catch {
        context.skip('needs mount(8) with CAP_SYS_ADMIN to make a read-only mount');
      }
      try {
        // The kubelet's layout: the key a link into ..data, a link to the current timestamped folder.
        mkdirSync(join(mountPoint, '..2026_01_01_00_00_00.1'), { mode: 0o755 });
        writeFileSync(join(mountPoint, '..2026_01_01_00_00_00.1', 'tenants.yaml'), GOOD, { mode: 0o644 });
        symlinkSync('..2026_01_01_00_00_00.1', join(mountPoint, '..data'));
        symlinkSync('..data/tenants.yaml', join(mountPoint, 'tenants.yaml'));
        const path = join(mountPoint, 'tenants.yaml');
        // Writable, the folder lets anyone replace the file.
        expect(errorOf(() => readTenantsFile(path)).message).toContain(`its folder ${mountPoint} (user 0, mode 777) lets another user replace the file`);
        execFileSync('mount', ['-o', 'remount,ro', mountPoint], { stdio: 'ignore' });
        expect(readTenantsFile(path).map((tenant) => tenant.name)).toEqual(['team-a', 'admin']);
      } finally {
        execFileSync('umount', [mountPoint], { stdio: 'ignore' });
      }
    } finally {
      rmSync(mountPoint, { recursive: true, force: true });
    }
  });

  it.skipIf(process.getuid?.() !== 0)('refuses a file another user owns (run as root, which may chown)', () => {
    const { path, folder } = fileWith(0o600);
    try {
      chownSync(path, 65534, 65534);
      expect(errorOf(() => readTenantsFile(path)).message).toContain('belongs to user 65534');
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
