/**
 * The typed client refuses, before sending anything, what protobufjs or its own option mapping would
 * drop without a word: an enum name its proto does not have (sent as the enum's 0 value, so the
 * daemon's refusal named a value the caller never sent, or a workspace policy took its default), a
 * field a request message does not have (a camelCase workspace config: every policy at its default),
 * and an option a method does not take (a misspelled `placement`: a DEVICE array).
 */
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { LeaseSession, TensormemClient, TensormemClientError, type AllocateOptions, type ClientOptions, type WorkspaceConfig } from '../../src/client/tensormem-client';
import { daemonForTests } from '../helpers/daemon-for-tests';
import { failure, thrownBy } from '../helpers/thrown';

describe('typed client: unknown enum names', () => {
  const setup = daemonForTests([]);

  it('refuses them with INVALID_ARGUMENT naming the field and the value given, and sends nothing', async () => {
    const lease = await setup.client.openLease({ clientName: 'enum-names', ttlSeconds: 60 });
    try {
      // What a plain-JS caller writes: the short name.
      const error = await failure(lease.allocate({ shape: [4], dataType: 'FLOAT32' } as unknown as AllocateOptions));
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.reason).toBe('INVALID_ARGUMENT');
      expect(error.errorMetadata).toEqual({ field: 'data_type' });
      expect(error.message).toContain('for data_type but received "FLOAT32"');
      expect(error.message).toContain('one of DATA_TYPE_FLOAT16, DATA_TYPE_BFLOAT16, DATA_TYPE_FLOAT32');
      // A nested message's field: its path; the daemon would have taken the default policy.
      const workspaceError = await failure(lease.createWorkspace('ws', { initial_size: 1024, spill_policy: 'EXTERNAL' } as unknown as WorkspaceConfig));
      expect(workspaceError.errorMetadata).toEqual({ field: 'config.spill_policy' });
      expect(workspaceError.message).toContain('received "EXTERNAL"');
      expect(await lease.list()).toEqual([]);
      expect(await lease.listWorkspaces()).toEqual([]);
      // The proto's names and numbers go through.
      expect((await lease.allocate({ shape: [4], dataType: 'DATA_TYPE_FLOAT32' })).byte_size).toBe(16);
      expect((await lease.allocate({ shape: [4], dataType: 1 as unknown as AllocateOptions['dataType'] })).data_type).toBe('DATA_TYPE_FLOAT16');
      expect((await lease.createWorkspace('ws', { initial_size: 1024, spill_policy: 'SPILL_POLICY_FAIL' } as WorkspaceConfig)).name).toBe('ws');
    } finally {
      await lease.close();
    }
  });

  it('refuses a field a request message does not have, naming it and the proto spelling it meant, and sends nothing', async () => {
    const lease = await setup.client.openLease({ clientName: 'field-names', ttlSeconds: 60 });
    try {
      // What a plain-JS caller writes after allocate's camelCase options: protobufjs dropped every field.
      const error = await failure(lease.createWorkspace('ws', { initialSize: 1 << 20, learningPolicy: 'LEARNING_POLICY_NONE' } as unknown as WorkspaceConfig));
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.errorMetadata).toEqual({ field: 'config.initialSize' });
      expect(error.message).toContain('Expected a field of WorkspaceConfig, which has none of that name (did you mean initial_size?) for config.initialSize but received 1048576');
      const unrelated = await failure(lease.createWorkspace('ws', { initial_size: 1024, size: 5 } as unknown as WorkspaceConfig));
      expect(unrelated.message).toContain('for config.size but received 5');
      expect(unrelated.message).toContain('(its fields: initial_size, min_size, max_size, overallocation_limit, allocation_policy');
      const cudnn = await failure(lease.acquireCudnnWorkspace({ device: 0, requestedBytes: 4096 } as never));
      expect(cudnn.errorMetadata).toEqual({ field: 'requestedBytes' });
      expect(cudnn.message).toContain('did you mean requested_bytes?');
      expect(await lease.listWorkspaces()).toEqual([]);
      // A config read back from a workspace (its proto3 optional's virtual oneof included) goes through as it is.
      const first = await lease.createWorkspace('first', { initial_size: 1 << 20, learning_policy: 'LEARNING_POLICY_NONE' } as WorkspaceConfig);
      const copy = await lease.createWorkspace('copy', first.config as WorkspaceConfig);
      expect(copy.config).toEqual(first.config);
      expect(Number(copy.config!.initial_size)).toBe(1 << 20);
    } finally {
      await lease.close();
    }
  });

  it('refuses an option a typed-client method does not take, naming it (with the camelCase it meant), and sends nothing', async () => {
    const lease = await setup.client.openLease({ clientName: 'option-names', ttlSeconds: 60 });
    try {
      const misspelled = await failure(lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [4], placment: 'PLACEMENT_HOST_ONLY' } as unknown as AllocateOptions));
      expect(misspelled.code).toBe(status.INVALID_ARGUMENT);
      expect(misspelled.errorMetadata).toEqual({ field: 'allocate option placment' });
      expect(misspelled.message).toContain('(did you mean placement? it takes dataType, shape, placement, device');
      expect(misspelled.message).toContain('but received "PLACEMENT_HOST_ONLY"');
      const snake = await failure(lease.allocate({ data_type: 'DATA_TYPE_FLOAT32', dataType: 'DATA_TYPE_FLOAT32', shape: [4] } as unknown as AllocateOptions));
      expect(snake.message).toContain('(did you mean dataType?)');
      expect(await lease.list()).toEqual([]);
      const array = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [4], placement: 'PLACEMENT_HOST_ONLY', label: undefined });
      expect(array.placement).toBe('PLACEMENT_HOST_ONLY');
      expect((await failure(lease.duplicate(array.array_id, { detach: true } as never))).message).toContain('(did you mean detached? it takes placement, workspaceId, detached, label)');
      expect(() => lease.startKeepAlive(1000, { release_on_disconnect: true } as never)).toThrow('(did you mean releaseOnDisconnect?)');
      const far = await failure(setup.client.openLease({ ttl: 60 } as never));
      expect(far.errorMetadata).toEqual({ field: 'openLease option ttl' });
      // A name like none of the options gets the list alone.
      expect(far.message).toContain('(it takes tenant, clientName, ttlSeconds, labels, tenantToken)');
      expect(() => new TensormemClient('127.0.0.1:1', { deadline: 5 } as ClientOptions)).toThrow('for TensormemClient option deadline but received 5');
      // A value that holds itself (a stray back-reference) is shown, not a RangeError (Maximum call stack size exceeded) naming nothing.
      const circular: Record<string, unknown> = { name: 'run-1' };
      circular.self = circular;
      const selfHolding = await failure(lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [4], meta: circular } as unknown as AllocateOptions));
      expect(selfHolding.code).toBe(status.INVALID_ARGUMENT);
      expect(selfHolding.message).toContain('for allocate option meta but received {name: "run-1", self: [Circular]}');
      const inConfig = await failure(lease.createWorkspace('ws', { initial_size: 1024, extra: circular } as unknown as WorkspaceConfig));
      expect(inConfig.errorMetadata).toEqual({ field: 'config.extra' });
      expect(inConfig.message).toContain('but received {name: "run-1", self: [Circular]}');
    } finally {
      await lease.close();
    }
  });

  it('refuses a scalar of the wrong kind that protobufjs would have sent as another value, and sends nothing', async () => {
    const lease = await setup.client.openLease({ clientName: 'scalar-kinds', ttlSeconds: 60 });
    try {
      // The flags' size suffixes: Long.fromString read "4M" as 4, a workspace of 4 bytes that spilled everything.
      const size = await failure(lease.createWorkspace('ws', { initial_size: '4M', learning_policy: 'LEARNING_POLICY_NONE' } as unknown as WorkspaceConfig));
      expect(size.code).toBe(status.INVALID_ARGUMENT);
      expect(size.errorMetadata).toEqual({ field: 'config.initial_size' });
      expect(size.message).toContain('Expected a uint64 (an integer from 0 to 18446744073709551615');
      expect(size.message).toContain('for config.initial_size but received "4M"');
      expect(await lease.listWorkspaces()).toEqual([]);
      // A fraction was cut to 16 (an array smaller than asked); a bare number failed as INTERNAL.
      const fraction = await failure(lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [16.5] }));
      expect(fraction.errorMetadata).toEqual({ field: 'shape[0]' });
      expect(fraction.message).toContain('but received 16.5');
      const bare = await failure(lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: 16 as unknown as number[] }));
      expect(bare.code).toBe(status.INVALID_ARGUMENT);
      expect(bare.message).toContain('Expected an array of an int64');
      // A duration's suffix: "1m" went out as 0 (the default TTL).
      expect((await failure(setup.client.openLease({ ttlSeconds: '1m' as unknown as number }))).errorMetadata).toEqual({ field: 'ttl_seconds' });
      // A label's value went out as its String() ("null"), a Map as no labels, a string failed as INTERNAL.
      const label = await failure(setup.client.openLease({ labels: { team: null } as unknown as Record<string, string> }));
      expect(label.code).toBe(status.INVALID_ARGUMENT);
      expect(label.errorMetadata).toEqual({ field: 'labels["team"]' });
      expect(label.message).toContain('Expected a string for labels["team"] but received null');
      for (const labels of ['team=a', new Map([['team', 'a']])]) {
        expect((await failure(setup.client.openLease({ labels: labels as unknown as Record<string, string> }))).errorMetadata).toEqual({ field: 'labels' });
      }
      // The WorkspaceInfo or ArrayInfo instead of its id: "[object Object]" not found.
      const first = await lease.createWorkspace('first', { initial_size: 1 << 20, learning_policy: 'LEARNING_POLICY_NONE' } as WorkspaceConfig);
      const object = await failure(lease.enterWorkspace(first as unknown as string));
      expect(object.errorMetadata).toEqual({ field: 'workspace_id' });
      expect(object.message).toContain('Expected a string for workspace_id but received an object {workspace_id, name, current_size, …}');
      expect((await failure(lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [4], workspaceId: first as unknown as string }))).errorMetadata).toEqual({ field: 'workspace_id' });
      const array = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [4] });
      expect((await failure(lease.write(array as unknown as string, new Float32Array(4)))).errorMetadata).toEqual({ field: 'array_id' });
      expect((await failure(lease.read(array as unknown as string))).errorMetadata).toEqual({ field: 'array_id' });
      // "false" was true.
      expect((await failure(lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [4], zero: 'false' as unknown as boolean }))).errorMetadata).toEqual({ field: 'zero' });
      expect((await lease.list()).map((info) => info.array_id)).toEqual([array.array_id]);
      // What protobufjs reads exactly goes through: decimal strings (64-bit values past 2^53), Longs, whole Numbers.
      expect((await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: ['16', 2] })).byte_size).toBe(128);
      expect(Number((await lease.createWorkspace('strings', { initial_size: '1048576', learning_policy: 'LEARNING_POLICY_NONE' } as unknown as WorkspaceConfig)).config!.initial_size)).toBe(1 << 20);
      const thirty = await setup.client.openLease({ ttlSeconds: '30' as unknown as number });
      expect(thirty.lease.ttl_seconds).toBe(30);
      await thirty.close();
    } finally {
      await lease.close();
    }
  });

  it('startKeepAlive refuses an interval that is no whole number of ms, and without one renews every third of the TTL', async () => {
    const client = new TensormemClient(setup.daemon.tcpAddress);
    try {
      const lease = await client.openLease({ clientName: 'keepalive-interval', ttlSeconds: 3 });
      // Count the renewals the keep-alive writes.
      let renewals = 0;
      const open = client.leases.KeepAlive.bind(client.leases);
      client.leases.KeepAlive = ((...args: Parameters<typeof open>) => {
        const stream = open(...args);
        const write = stream.write.bind(stream);
        stream.write = ((...writeArgs: Parameters<typeof write>) => {
          renewals++;
          return write(...writeArgs);
        }) as typeof stream.write;
        return stream;
      }) as typeof client.leases.KeepAlive;
      // Node's setInterval took each of these as 1 ms: hundreds of renewals a second.
      for (const interval of ['10s', 0, -5, Number.NaN]) {
        expect(() => lease.startKeepAlive(interval as number)).toThrow(/INVALID_ARGUMENT.*Expected a whole number of milliseconds from 1 to 2147483647 for intervalMs/);
      }
      expect(renewals).toBe(0);
      lease.startKeepAlive();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      lease.stopKeepAlive();
      // One when the stream opens, one at 1 s (a third of 3 s), and the disarming write at stop.
      expect(renewals).toBeGreaterThanOrEqual(2);
      expect(renewals).toBeLessThanOrEqual(4);
      await lease.close();
    } finally {
      client.close();
    }
  });

  it('refuses a client-side option or argument of the wrong kind (a string for a bool, no function for a callback), naming it, and sends nothing', async () => {
    // None of these reach a request message, so nothing checked them: releaseOnDisconnect 'false' armed
    // the release (the lease closed when the process exited), writable 'false' mapped the array shared
    // and writable, and an onError or onInfo that is no function threw out of a stream event (the
    // process crashed at the first failure or update).
    const client = setup.client;
    const lease = await client.openLease({ clientName: 'option-kinds', ttlSeconds: 60 });
    try {
      for (const [options, field, received] of [
        [{ releaseOnDisconnect: 'false' }, 'startKeepAlive option releaseOnDisconnect', '"false"'],
        [{ onError: 'log' }, 'startKeepAlive option onError', '"log"'],
      ] as const) {
        const error = thrownBy(() => lease.startKeepAlive(1000, options as never), TensormemClientError);
        expect(error.code).toBe(status.INVALID_ARGUMENT);
        expect(error.errorMetadata).toEqual({ field });
        expect(error.message).toContain(`for ${field} but received ${received}`);
      }
      // No keep-alive started (it would have replaced stopKeepAlive), so no KeepAlive stream opened.
      expect(lease.stopKeepAlive).toBe(LeaseSession.prototype.stopKeepAlive);
      const array = await lease.allocate({ dataType: 'DATA_TYPE_FLOAT32', shape: [4], placement: 'PLACEMENT_HOST_ONLY' });
      for (const [options, field] of [
        [{ writable: 'false' }, 'exportArray option writable'],
        [{ map: 'no' }, 'exportArray option map'],
      ] as const) {
        const error = await failure(lease.exportArray(array.array_id, options as never));
        expect(error.code).toBe(status.INVALID_ARGUMENT);
        expect(error.errorMetadata).toEqual({ field });
      }
      // Nothing was exported: the first export is the one that moves the array into a region of its own.
      expect((await lease.exportArray(array.array_id, { map: false })).moved).toBe(true);
      for (const [call, field] of [
        [() => client.watchMemory(100, undefined as never), 'watchMemory onInfo'],
        [() => client.watchMemory(100, () => {}, 'log' as never), 'watchMemory onError'],
      ] as const) {
        expect(thrownBy(call, TensormemClientError).errorMetadata).toEqual({ field });
      }
      expect((await failure(lease.allocate(undefined as never))).errorMetadata).toEqual({ field: 'allocate options' });
      // The daemon's refusal named lease_id, which evictTenant does not take.
      for (const tenant of [undefined, '', 5]) {
        const error = await failure(client.evictTenant(tenant as never));
        expect(error.code).toBe(status.INVALID_ARGUMENT);
        expect(error.errorMetadata).toEqual({ field: 'tenant' });
      }
    } finally {
      await lease.close();
    }
  });

  it('refuses a deadlineMs or a size of the client that is not a number, naming it, instead of a call that fails with no code', async () => {
    for (const [options, field] of [
      [{ deadlineMs: '5000' }, 'deadlineMs'],
      [{ deadlineMs: Number.NaN }, 'deadlineMs'],
      [{ deadlineMs: -1 }, 'deadlineMs'],
      [{ chunkBytes: '1M' }, 'chunkBytes'],
      [{ maxMessageBytes: 0 }, 'maxMessageBytes'],
    ] as const) {
      expect(() => new TensormemClient(setup.client.address, options as unknown as ClientOptions), field).toThrow(expect.objectContaining({ code: status.INVALID_ARGUMENT, errorMetadata: { field } }));
    }
    const lease = await setup.client.openLease({ clientName: 'deadline-values', ttlSeconds: 60 });
    try {
      const refusal = await failure(lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4], deadlineMs: '100' as unknown as number }));
      expect(refusal.code).toBe(status.INVALID_ARGUMENT);
      expect(refusal.message).toContain('for deadlineMs but received "100"');
      expect(await lease.list()).toEqual([]);
      // Numbers, 0 and Infinity go through.
      for (const deadlineMs of [5000, 0, Infinity]) await lease.free((await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [4], deadlineMs })).array_id);
      new TensormemClient(setup.client.address, { deadlineMs: 0, chunkBytes: 65536, maxMessageBytes: 1 << 20 }).close();
      new TensormemClient(setup.client.address, { maxMessageBytes: -1 }).close();
    } finally {
      await lease.close();
    }
  });

  it('refuses a chunkBytes whose WriteArray message passes maxMessageBytes, naming both, and fits the default chunk to a smaller maxMessageBytes', async () => {
    // grpc-js refused each such chunk at the first write: RESOURCE_EXHAUSTED "Attempted to send message
    // with a size larger than 67108864", naming neither option.
    const MiB = 1024 * 1024;
    const tooLarge = thrownBy(() => new TensormemClient(setup.client.address, { chunkBytes: 64 * MiB }), TensormemClientError);
    expect([tooLarge.code, tooLarge.errorMetadata]).toEqual([status.INVALID_ARGUMENT, { field: 'chunkBytes' }]);
    expect(tooLarge.message).toBe(
      `INVALID_ARGUMENT: Expected a chunk size whose WriteArray message (the chunk and 5 bytes of framing) fits maxMessageBytes (${64 * MiB} bytes), at most ${64 * MiB - 5} for chunkBytes but received ${64 * MiB}`,
    );
    // The largest chunk that fits goes through, and -1 (no limit) takes any.
    new TensormemClient(setup.client.address, { chunkBytes: 64 * MiB - 5 }).close();
    new TensormemClient(setup.client.address, { chunkBytes: 128 * MiB, maxMessageBytes: -1 }).close();
    const small = new TensormemClient(setup.client.address, { maxMessageBytes: 256 * 1024, dataPlane: false });
    const lease = await small.openLease({ clientName: 'chunk-fit', ttlSeconds: 60 });
    try {
      expect(small.chunkBytes).toBe(256 * 1024 - 4);
      const array = await lease.allocate({ dataType: 'DATA_TYPE_UINT8', shape: [MiB], placement: 'PLACEMENT_HOST_ONLY' });
      expect(await lease.write(array.array_id, Buffer.alloc(MiB, 3))).toBe(MiB);
      // A write's own chunkBytes is checked the same way, before anything is sent.
      const perCall = await failure(lease.writeGrpc(array.array_id, Buffer.alloc(MiB, 4), 0, 512 * 1024));
      expect([perCall.code, perCall.errorMetadata]).toEqual([status.INVALID_ARGUMENT, { field: 'chunkBytes' }]);
      expect(perCall.message).toContain(`fits maxMessageBytes (${256 * 1024} bytes), at most ${256 * 1024 - 4} for chunkBytes but received ${512 * 1024}`);
      expect((await lease.readGrpc(array.array_id, 0, 16)).equals(Buffer.alloc(16, 3))).toBe(true);
    } finally {
      await lease.close();
      small.close();
    }
  });

  it('refuses a dataPlane or keepalive option the client does not take, or of the wrong kind, naming it, instead of ignoring it', () => {
    // Each was taken without a word: 'off' left the data plane on, a misspelled timeout kept the
    // default, and a stallTimeoutMs of '90s' gave up every transfer at once (NaN ms), so that every
    // lease went back to gRPC after its first large transfer.
    for (const [options, field, text] of [
      [{ dataPlane: 'off' }, 'dataPlane', "Expected false, or an object of the dataPlane options (thresholdBytes, connectTimeoutMs, stallTimeoutMs) for dataPlane but received \"off\""],
      [{ dataPlane: null }, 'dataPlane', 'but received null'],
      [{ dataPlane: { connectTimeoutMS: 100 } }, 'TensormemClient option dataPlane.connectTimeoutMS', '(did you mean connectTimeoutMs? it takes thresholdBytes, connectTimeoutMs, stallTimeoutMs)'],
      [{ dataPlane: { threshold_bytes: 4096 } }, 'TensormemClient option dataPlane.threshold_bytes', '(did you mean thresholdBytes?)'],
      [{ dataPlane: { thresholdBytes: '1M' } }, 'dataPlane.thresholdBytes', 'for dataPlane.thresholdBytes but received "1M"'],
      [{ dataPlane: { thresholdBytes: -1 } }, 'dataPlane.thresholdBytes', 'but received -1'],
      [{ dataPlane: { stallTimeoutMs: '90s' } }, 'dataPlane.stallTimeoutMs', 'Expected a number of milliseconds above 0 (Infinity: none) for dataPlane.stallTimeoutMs but received "90s"'],
      [{ dataPlane: { stallTimeoutMs: 0 } }, 'dataPlane.stallTimeoutMs', 'but received 0'],
      [{ dataPlane: { connectTimeoutMs: Number.NaN } }, 'dataPlane.connectTimeoutMs', 'but received NaN'],
      [{ keepalive: 'off' }, 'keepalive', 'for keepalive but received "off"'],
      [{ keepalive: { timeoutMS: 1000 } }, 'TensormemClient option keepalive.timeoutMS', '(did you mean timeoutMs? it takes timeMs, timeoutMs)'],
    ] as const) {
      expect(() => new TensormemClient(setup.client.address, options as unknown as ClientOptions), field).toThrow(expect.objectContaining({ code: status.INVALID_ARGUMENT, errorMetadata: { field } }));
      expect(() => new TensormemClient(setup.client.address, options as unknown as ClientOptions), field).toThrow(text);
    }
    for (const options of [{ dataPlane: false }, { dataPlane: {} }, { dataPlane: { thresholdBytes: 0, connectTimeoutMs: 250.5, stallTimeoutMs: Infinity } }, { keepalive: false }, { keepalive: {} }] as ClientOptions[]) {
      new TensormemClient(setup.client.address, options).close();
    }
  });
});

describe('typed client: the address', () => {
  // A URL (the data plane's data_address, the status page's) or a bare socket path failed every call with
  // grpc-js's "Name resolution failed for target dns:http://127.0.0.1:7070", which named neither form.
  it('refuses a URL or a bare socket path, naming the forms it takes, and takes every gRPC target form', () => {
    for (const [address, text] of [
      ['http://127.0.0.1:7070', 'Expected tensormemd\'s gRPC address, HOST:PORT or unix:PATH as its "listening" log line names it (not a URL: the data plane and the status page are HTTP, on other ports) for address but received "http://127.0.0.1:7070"'],
      ['https://gpu-host:7070', 'not a URL'],
      ['/tmp/tensormemd.sock', 'Expected tensormemd\'s gRPC address, HOST:PORT or unix:PATH as its "listening" log line names it (a socket path: unix:/tmp/tensormemd.sock) for address but received "/tmp/tensormemd.sock"'],
    ] as const) {
      expect(() => new TensormemClient(address), address).toThrow(expect.objectContaining({ code: status.INVALID_ARGUMENT, errorMetadata: { field: 'address' } }));
      expect(() => new TensormemClient(address), address).toThrow(text);
    }
    for (const address of ['127.0.0.1:7070', 'localhost:7070', '[::1]:7070', 'unix:/tmp/tensormemd.sock', 'unix:///tmp/tensormemd.sock', 'dns:///localhost:7070', 'ipv4:127.0.0.1:7070', 'unix-abstract:tensormemd']) {
      new TensormemClient(address).close();
    }
  });
});
