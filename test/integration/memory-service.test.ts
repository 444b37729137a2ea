/** MemoryService (GetConfig, WatchMemory, GetMemorySnapshot), grpc.health.v1, reflection and tensormemctl against a daemon process. */
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { credentials, loadPackageDefinition, status } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { FileDescriptorProto, type IDescriptorProto, type IFileDescriptorProto } from 'protobufjs/ext/descriptor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryInfo, TensormemClient, TensormemClientError } from '../../src/client/tensormem-client';
import { FLAGS } from '../../src/config/flags';
import { DaemonProcess, ROOT, startDaemon } from '../helpers/daemon-process';

const run = promisify(execFile);
const CTL = join(ROOT, 'dist', 'src', 'bin', 'tensormemctl.js');

describe('memory service, health, reflection and tensormemctl', () => {
  let daemon: DaemonProcess;
  let client: TensormemClient;

  beforeAll(async () => {
    daemon = await startDaemon(['--maxbytes', '1G', '--host-maxbytes', '512M', '--mirror', 'eager'], { TENSORMEM_LEASE_TTL: '45s' });
    client = new TensormemClient(daemon.tcpAddress);
  });

  afterAll(async () => {
    client?.close();
    expect(await daemon?.stop()).toBe(0);
  });

  it('GetConfig reports effective values and where each came from', async () => {
    const config = await client.config();
    const byName = Object.fromEntries(config.values.map((v) => [v.name, v]));
    expect(config.backend).toBe('host');
    expect(byName.maxbytes).toMatchObject({ value: String(1024 ** 3), source: 'flag', seed_name: 'org.bytedeco.javacpp.maxbytes' });
    expect(byName['host-maxbytes']).toMatchObject({ value: String(512 * 1024 ** 2), source: 'flag' });
    expect(byName['lease-ttl']).toMatchObject({ value: '45s', source: 'env' });
    expect(byName['reclaim-interval']).toMatchObject({ value: '1s', source: 'default' });
    expect(byName.maxphysicalbytes.source).toBe('derived');
    expect(byName.maxphysicalbytes.seed_name).toBe('org.bytedeco.javacpp.maxphysicalbytes');
  });

  it('GetConfig says "default" for a flag left at its default, one without a default included, and "derived" only for computed values', async () => {
    const byName = Object.fromEntries((await client.config()).values.map((v) => [v.name, v]));
    for (const name of ['profile', 'config', 'tenants', 'tls-cert', 'tls-key', 'tls-client-ca', 'health-listen', 'cudnn-library']) {
      expect(byName[name], name).toMatchObject({ value: '', source: 'default' });
    }
    // Sizes in bytes (ConfigValue.value), not as written: a client in any language parses them as integers.
    expect(byName['chunk-bytes']).toMatchObject({ value: String(1024 ** 2), source: 'default' });
    expect(byName['max-message-bytes']).toMatchObject({ value: String(64 * 1024 ** 2), source: 'default' });
    expect(byName['pool-chunk']).toMatchObject({ value: String(64 * 1024 ** 2), source: 'default' });
    expect(byName['async-copy-threshold']).toMatchObject({ value: String(256 * 1024), source: 'default' });
    expect(byName['emulated-device'].value).toBe(String(2 * 1024 ** 3)); // the helper's --emulated-device 2G
    for (const flag of FLAGS.filter((f) => f.type === 'size')) {
      expect(byName[flag.name].value, flag.name).toMatch(/^(\d+(,\d+)*)?$/);
    }
    // --maxbytes was given, so the reserve is the default for the device's size (computed from it).
    expect(byName['device-reserve'].source).toBe('derived');
    expect(byName.cudnn_version.source).toBe('derived');
    // --heap-reserve unset: the default resolved against this daemon's V8 heap limit, in bytes.
    expect(byName['heap-reserve'].source).toBe('derived');
    expect(Number(byName['heap-reserve'].value)).toBeGreaterThanOrEqual(32 * 1024 * 1024);
    // --mmap-dir unset: the folder the MMAP workspace files go to (README: tensormem-mmap in the OS temp
    // folder), not an empty value, which reads as "no folder".
    expect(byName['mmap-dir']).toMatchObject({ value: join(tmpdir(), 'tensormem-mmap'), source: 'default' });
    expect(new Set(Object.values(byName).map((v) => v.source))).toEqual(new Set(['flag', 'env', 'default', 'derived']));

    const small = await startDaemon(['--max-message-bytes', '256K']);
    const smallClient = new TensormemClient(small.tcpAddress);
    try {
      const values = Object.fromEntries((await smallClient.config()).values.map((v) => [v.name, v]));
      // The default --chunk-bytes shrank to fit --max-message-bytes: computed from it.
      expect(values['chunk-bytes']).toMatchObject({ value: String(256 * 1024 - 1024), source: 'derived' });
      expect(values['max-message-bytes']).toMatchObject({ value: String(256 * 1024), source: 'flag' });
      // No --maxbytes: the cap is the device's memory less the reserve.
      expect(values.maxbytes.source).toBe('derived');
      expect(values.profile).toMatchObject({ value: '', source: 'default' });
    } finally {
      smallClient.close();
      expect(await small.stop()).toBe(0);
    }
  });

  it('GetMemoryInfo fills every pool, process and tenant field', async () => {
    const lease = await client.openLease({ tenant: 'team-a' });
    await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [1024] });
    const info = await client.memoryInfo();
    const device = info.devices[0];
    expect(device).toMatchObject({ device: 0, name: 'tensormem emulated device', total_bytes: 2 * 1024 ** 3, max_bytes: 1024 ** 3, used_bytes: 4096, allocation_count: 1 });
    expect(device.free_bytes).toBe(device.total_bytes - device.reserved_bytes);
    expect(device.reserved_bytes).toBeGreaterThanOrEqual(4096);
    expect(device.largest_free_block_bytes).toBe(device.reserved_bytes - 4096);
    // --mirror eager: the mirror came with the array.
    expect(info.host).toMatchObject({ max_bytes: 512 * 1024 ** 2, used_bytes: 4096, mirror_bytes: 4096, host_only_bytes: 0, mmap_bytes: 0 });
    expect(info.process!.physical_bytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(info.process!.max_physical_bytes).toBeGreaterThan(info.process!.physical_bytes);
    expect(info.process!.heap_limit_bytes).toBeGreaterThan(info.process!.heap_used_bytes);
    expect(info.tenants.find((t) => t.tenant === 'team-a')).toMatchObject({ used_bytes: 8192, device_used_bytes: 4096, host_used_bytes: 4096, leases: 1 });
    await lease.close();
  });

  it('WatchMemory streams MemoryInfo at the interval and refuses a too-short one', async () => {
    const infos: MemoryInfo[] = [];
    await new Promise<void>((resolve, reject) => {
      const stop = client.watchMemory(
        60,
        (info) => {
          infos.push(info);
          if (infos.length === 3) {
            stop();
            resolve();
          }
        },
        reject,
      );
    });
    expect(infos.map((i) => i.backend)).toEqual(['host', 'host', 'host']);
    const error = await new Promise<TensormemClientError>((resolve) => client.watchMemory(10, () => {}, resolve));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toContain('interval_ms');
  });

  it('WatchMemory with an interval_ms past setInterval’s 2^31 - 1 ms sends the first message only, not one every millisecond', async () => {
    // interval_ms is a uint32 (tensormemctl top --interval takes up to 49 days); setInterval fires every
    // 1 ms past 2^31 - 1 ms (TimeoutOverflowWarning), which sent about 800 messages a second.
    for (const intervalMs of [2 ** 31, 0xffff_ffff]) {
      let messages = 0;
      const stop = client.watchMemory(intervalMs, () => messages++);
      await new Promise((resolve) => setTimeout(resolve, 400));
      stop();
      expect(messages, `interval_ms ${intervalMs}`).toBe(1);
    }
    expect(daemon.otherStderr.filter((line) => line.includes('TimeoutOverflowWarning'))).toEqual([]);
  });

  it('GetMemorySnapshot names the owner of every block', async () => {
    const lease = await client.openLease({ tenant: 'snap' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [1000], label: 'weights' });
    const snapshot = await client.memorySnapshot();
    const blocks = snapshot.pools.flatMap((pool) => pool.segments.flatMap((segment) => segment.blocks.map((block) => ({ pool: pool.pool, ...block }))));
    const mine = blocks.filter((block) => block.array_id === array.array_id);
    expect(mine.map((b) => [b.pool, b.purpose, b.bytes, b.label, b.tenant, b.lease_id])).toEqual([
      ['device:0', 'array', 1024, 'weights', 'snap', lease.leaseId],
      ['host', 'mirror', 1024, 'weights', 'snap', lease.leaseId],
    ]);
    expect(snapshot.info!.devices[0].used_bytes).toBe(blocks.filter((b) => b.pool === 'device:0' && !b.free).reduce((sum, b) => sum + b.bytes, 0));
    await lease.close();
  });

  it('serves grpc.health.v1 and server reflection', async () => {
    const healthProto = loadPackageDefinition(loadSync(join(ROOT, 'node_modules/grpc-health-check/proto/health/v1/health.proto'), { enums: String })) as any;
    const health = new healthProto.grpc.health.v1.Health(daemon.tcpAddress, credentials.createInsecure());
    for (const service of ['', 'tensormem.v1.ArrayService']) {
      const reply = await new Promise<{ status: string }>((resolve, reject) => health.Check({ service }, (e: Error | null, r: { status: string }) => (e ? reject(e) : resolve(r))));
      expect(reply.status).toBe('SERVING');
    }
    health.close();
    const reflectionProto = loadPackageDefinition(loadSync(join(ROOT, 'node_modules/@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto'), { keepCase: true })) as any;
    const reflection = new reflectionProto.grpc.reflection.v1alpha.ServerReflection(daemon.tcpAddress, credentials.createInsecure());
    const services = await new Promise<string[]>((resolve, reject) => {
      const call = reflection.ServerReflectionInfo();
      call.on('data', (response: { list_services_response?: { service: Array<{ name: string }> } }) => {
        resolve(response.list_services_response!.service.map((s) => s.name));
        call.end();
      });
      call.on('error', reject);
      call.write({ list_services: '*' });
    });
    expect(services).toEqual(expect.arrayContaining(['tensormem.v1.LeaseService', 'tensormem.v1.ArrayService', 'tensormem.v1.MemoryService']));
    reflection.close();
  });

  it('reflection serves each .proto file under its own name, with its dependencies, as protoc would (grpcurl, grpc_cli, Python descriptor pools)', async () => {
    // grpc.reflection.v1, as grpcurl asks: file_containing_symbol, then file_by_filename for each dependency.
    const reflectionProto = loadPackageDefinition(loadSync(join(ROOT, 'node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto'), { keepCase: true })) as any;
    const reflection = new reflectionProto.grpc.reflection.v1.ServerReflection(daemon.tcpAddress, credentials.createInsecure());
    type Reply = { list_services_response?: { service: Array<{ name: string }> }; file_descriptor_response?: { file_descriptor_proto: Buffer[] }; error_response?: { error_message: string } };
    const ask = (request: Record<string, string>) =>
      new Promise<Reply>((resolve, reject) => {
        const call = reflection.ServerReflectionInfo();
        call.on('data', (reply: Reply) => {
          resolve(reply);
          call.end();
        });
        call.on('error', reject);
        call.write(request);
      });
    const files = new Map<string, IFileDescriptorProto>();
    const fetch = async (request: Record<string, string>) => {
      const reply = await ask(request);
      expect(reply.error_response, JSON.stringify(request)).toBeUndefined();
      for (const bytes of reply.file_descriptor_response!.file_descriptor_proto) {
        const file = FileDescriptorProto.toObject(FileDescriptorProto.decode(bytes), { defaults: true }) as IFileDescriptorProto;
        files.set(file.name!, file);
      }
    };
    const services = (await ask({ list_services: '*' })).list_services_response!.service.map((s) => s.name);
    expect(services).toEqual(expect.arrayContaining(['tensormem.v1.ArrayService', 'tensormem.v1.WorkspaceService', 'grpc.health.v1.Health']));
    for (const service of services) await fetch({ file_containing_symbol: service });
    for (const name of [...files.keys()]) for (const dep of files.get(name)!.dependency ?? []) if (!files.has(dep)) await fetch({ file_by_filename: dep });
    reflection.close();

    expect([...files.keys()].sort()).toEqual([
      'google/protobuf/timestamp.proto',
      'grpc/health/v1/health.proto',
      'tensormem/v1/array.proto',
      'tensormem/v1/lease.proto',
      'tensormem/v1/memory.proto',
      'tensormem/v1/types.proto',
      'tensormem/v1/workspace.proto',
    ]);
    expect(files.get('tensormem/v1/array.proto')!.dependency!.sort()).toEqual(['google/protobuf/timestamp.proto', 'tensormem/v1/types.proto']);
    expect(files.get('tensormem/v1/workspace.proto')!.dependency!.sort()).toEqual(['tensormem/v1/array.proto', 'tensormem/v1/types.proto']);

    // Every type a file refers to is defined in the file or in one of its direct dependencies (what a
    // descriptor pool checks: '"google.protobuf.Timestamp" is not defined' otherwise).
    const definedIn = new Map<string, string>();
    const index = (file: string, prefix: string, messages: IDescriptorProto[], enums: Array<{ name?: string | null }>) => {
      for (const e of enums) definedIn.set(`${prefix}.${e.name}`, file);
      for (const m of messages) {
        definedIn.set(`${prefix}.${m.name}`, file);
        index(file, `${prefix}.${m.name}`, m.nestedType ?? [], m.enumType ?? []);
      }
    };
    for (const [name, file] of files) index(name, `.${file.package}`, file.messageType ?? [], file.enumType ?? []);
    const resolve = (scope: string, typeName: string): string | undefined => {
      if (typeName.startsWith('.')) return definedIn.has(typeName) ? typeName : undefined;
      for (let s = scope; ; s = s.slice(0, s.lastIndexOf('.'))) {
        if (definedIn.has(`${s}.${typeName}`)) return `${s}.${typeName}`;
        if (!s) return undefined;
      }
    };
    const problems: string[] = [];
    const check = (file: string, scope: string, typeName: string, where: string) => {
      const full = resolve(scope, typeName);
      if (!full) problems.push(`${file}: ${where}: ${typeName} is not defined`);
      else if (definedIn.get(full) !== file && !files.get(file)!.dependency!.includes(definedIn.get(full)!)) problems.push(`${file}: ${where}: ${full} is in ${definedIn.get(full)}, not a dependency`);
    };
    const checkMessage = (file: string, scope: string, message: IDescriptorProto) => {
      const own = `${scope}.${message.name}`;
      for (const field of message.field ?? []) {
        if (field.typeName) check(file, own, field.typeName, `${own}.${field.name}`);
        // protoc's rule for map fields: a repeated field of a nested map_entry type named <CamelCaseField>Entry.
        const entry = (message.nestedType ?? []).find((n) => n.options?.mapEntry && (field.typeName === n.name || field.typeName?.endsWith(`.${n.name}`)));
        if (entry) expect(entry.name, `${own}.${field.name}`).toBe(`${field.name!.replace(/(?:^|_)([a-z0-9])/g, (_m, c: string) => c.toUpperCase())}Entry`);
      }
      for (const nested of message.nestedType ?? []) checkMessage(file, own, nested);
    };
    for (const [name, file] of files) {
      for (const message of file.messageType ?? []) checkMessage(name, `.${file.package}`, message);
      for (const service of file.service ?? []) {
        for (const method of service.method ?? []) {
          check(name, `.${file.package}`, method.inputType!, `${service.name}.${method.name} input`);
          check(name, `.${file.package}`, method.outputType!, `${service.name}.${method.name} output`);
        }
      }
    }
    expect(problems).toEqual([]);
    const labels = files.get('tensormem/v1/lease.proto')!.messageType!.find((m) => m.name === 'OpenLeaseRequest')!;
    expect(labels.nestedType!.map((n) => n.name)).toEqual(['LabelsEntry']);
    // proto3 optional survives (WorkspaceConfig.overallocation_limit: unset means ND4J's 0.3).
    const config = files.get('tensormem/v1/workspace.proto')!.messageType!.find((m) => m.name === 'WorkspaceConfig')!;
    expect(config.field!.find((f) => f.name === 'overallocation_limit')).toMatchObject({ proto3Optional: true, oneofIndex: 0 });
  });

  it('tensormemctl shows info, leases, arrays and config as tables and JSON', async () => {
    const lease = await client.openLease({ tenant: 'cli', clientName: 'trainer-7' });
    const array = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT16', shape: [8, 8], label: 'grads' });
    const ctl = async (...args: string[]) => (await run(process.execPath, [CTL, '--address', daemon.unixAddress, ...args])).stdout;
    expect(await ctl('info')).toMatch(/backend: host[\s\S]*tensormem emulated device[\s\S]*cli/);
    const leases = JSON.parse(await ctl('leases', '-o', 'json')) as Array<{ lease_id: string; client_name: string; array_count: number }>;
    expect(leases.find((l) => l.lease_id === lease.leaseId)).toMatchObject({ client_name: 'trainer-7', array_count: 1 });
    expect(await ctl('leases')).toContain('trainer-7');
    const owned = JSON.parse(await ctl('arrays', '--token', lease.token, '-o', 'json')) as Array<{ array_id: string; byte_size: number }>;
    expect(owned).toEqual([expect.objectContaining({ array_id: array.array_id, byte_size: 128 })]);
    expect(await ctl('arrays')).toContain('grads');
    const config = await ctl('config');
    expect(config).toMatch(/maxbytes\s+1073741824\s+flag/);
    // VALUE wraps at 60 characters: cudnn_version's load errors (every library tried) made every line 190+ wide.
    expect(Math.max(...config.split('\n').map((line) => line.length))).toBeLessThanOrEqual(140);
    const failure = await run(process.execPath, [CTL, '--address', daemon.unixAddress, 'arrays', '--token', 'bogus']).catch((e: { code: number; stderr: string }) => e);
    expect((failure as { code: number }).code).toBe(1);
    expect((failure as { stderr: string }).stderr).toContain('UNAUTHENTICATED');
    await lease.close();
  });
});
