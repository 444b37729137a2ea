/**
 * Model-based check of host mirrors and array placement, over the host backend in-process: random
 * sequences of AllocateArray (device arrays under --mirror lazy and eager, HOST_ONLY, zeroed or not,
 * exportable or not), WriteArray (device side, partial ranges, inline and queued), writes through an
 * exported host mapping (the host side), ReadArray and data plane GETs (partial ranges), SyncArray
 * both ways, DuplicateArray, ExportArray and FreeArray, against a reference model written from the
 * README ("Memory model", "Same-host zero copy", "Differences from ND4J") and proto/tensormem/v1/array.proto,
 * not from the implementation. Per array the model tracks its placement, whether a mirror exists and is
 * current (host_valid), the bytes each side must hold (where they are known), and the pools' used
 * bytes (device, host, mirror and HOST_ONLY bytes, regions rounded to pages); a request the host or
 * device cap cannot take must be refused, RESOURCE_EXHAUSTED with the numbers, and change nothing.
 * Bursts of operations issued together on one array (FreeArray among them) must answer as some order
 * of them one at a time would.
 */
import { createHash } from 'node:crypto';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { TensormemError } from '../../src/errors';
import type { Lease } from '../../src/leases/lease';
import { LeaseRegistry } from '../../src/leases/lease-registry';
import { exportArray } from '../../src/memory/array-export';
import { givenLimits } from '../../src/memory/limits';
import { MemoryManager } from '../../src/memory/memory-manager';
import type { Block } from '../../src/memory/memory-resource';
import { PhysicalMemoryGuard } from '../../src/memory/physical-memory-guard';
import type { TensorArray } from '../../src/memory/tensor-array';
import { createBackend, loadAddon } from '../../src/native/addon';
import { arrayInfo } from '../../src/service/array-service';
import { KiB, MiB } from '../../src/units';
import { rng } from '../helpers/rng';
import { permutations } from '../helpers/permutations';
import { totalsOverSeeds } from '../helpers/seeded-totals';

const DEVICE_CAP = 48 * KiB;
const HOST_CAP = 40 * KiB;
const SIZES = [16, 100, 255, 256, 1000, 1024, 2000, 3000, 4095, 4096];
const align = (bytes: number) => Math.ceil(Math.max(bytes, 1) / 256) * 256;
const page = (bytes: number) => Math.ceil(Math.max(bytes, 1) / 4096) * 4096;

/** One side's bytes as the model knows them: `known[i]` is 0 where the bytes are unspecified (an allocation not zeroed). */
interface Side {
  bytes: Uint8Array;
  known: Uint8Array;
}
const side = (size: number, zeroed: boolean): Side => ({ bytes: new Uint8Array(size), known: new Uint8Array(size).fill(zeroed ? 1 : 0) });
const copySide = (from: Side): Side => ({ bytes: Uint8Array.from(from.bytes), known: Uint8Array.from(from.known) });

interface ModelArray {
  id: string;
  lease: Lease;
  size: number;
  placement: 'PLACEMENT_DEVICE' | 'PLACEMENT_HOST_ONLY';
  exportableRequested: boolean;
  /** Device arrays: the device side. */
  device?: Side;
  /** The host side: the HOST_ONLY block or the mirror (undefined: no mirror yet). */
  host?: Side;
  /** Whether the mirror holds the current bytes (host_valid); always true for HOST_ONLY. */
  hostCurrent: boolean;
  /** Bytes of the host block in the host pool (256-aligned, or a page-rounded region). */
  hostBlockBytes: number;
  hostExportable: boolean;
  /** A writable mapping of the exported host side. */
  mapping?: { buffer: ArrayBuffer; view: Uint8Array };
  /** Freed (bursts: operations ordered after the free are refused). */
  freed?: boolean;
}

async function run(seed: number, steps: number): Promise<{ mustRefuse: number; mayRefuse: number; exports: number; mappedWrites: number }> {
  const random = rng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const scrub = random() < 0.5;
  const backend = createBackend('host', { deviceCapacityBytes: 4 * MiB, deviceCount: 1 });
  const memory = new MemoryManager(backend, givenLimits([DEVICE_CAP], HOST_CAP), { poolChunkBytes: pick([8 * KiB, 16 * KiB]), asyncCopyThresholdBytes: pick([512, 2048, MiB]), scrub }, new PhysicalMemoryGuard(0));
  const log = pino({ level: 'silent' });
  const registries = { eager: new LeaseRegistry(memory, 3_600_000, true, log), lazy: new LeaseRegistry(memory, 3_600_000, false, log) };
  const eagerOf = new Map<Lease, boolean>();
  const openLease = (eager: boolean) => {
    const lease = registries[eager ? 'eager' : 'lazy'].open({ tenant: 'model', clientName: 'mirror-model', ttlSeconds: 0, labels: {} }).lease;
    eagerOf.set(lease, eager);
    return lease;
  };
  const leases = [openLease(true), openLease(false)];
  const arrays = new Map<string, ModelArray>();
  const history: string[] = [];
  const addon = loadAddon();
  const counts = { mustRefuse: 0, mayRefuse: 0, exports: 0, mappedWrites: 0 };

  // What the pools must hold, from the model alone.
  const expectedDeviceUsed = () => [...arrays.values()].reduce((sum, a) => sum + (a.device ? align(a.size) : 0), 0);
  const expectedMirrorBytes = () => [...arrays.values()].reduce((sum, a) => sum + (a.placement === 'PLACEMENT_DEVICE' && a.host ? a.hostBlockBytes : 0), 0);
  const expectedHostOnlyBytes = () => [...arrays.values()].reduce((sum, a) => sum + (a.placement === 'PLACEMENT_HOST_ONLY' ? a.hostBlockBytes : 0), 0);
  const hostUsed = () => expectedMirrorBytes() + expectedHostOnlyBytes();
  const heldBytes = (a: ModelArray) => (a.device ? align(a.size) : 0) + (a.host ? a.hostBlockBytes : 0);

  const fail = (step: number, what: string, message: string): never => {
    throw new Error(`seed ${seed} (scrub ${scrub}) step ${step} ${what}: ${message}\n${history.slice(-12).join('\n')}`);
  };

  /** `actual` against the model's `expected` side over [offset, offset + actual.length); learns the bytes the model did not know. */
  const compare = (actual: Uint8Array, expected: Side, offset: number, learn: Side[] = []): string | undefined => {
    for (let i = 0; i < actual.length; i++) {
      const at = offset + i;
      if (expected.known[at]) {
        if (actual[i] !== expected.bytes[at]) return `byte ${at}: ${actual[i]}, model ${expected.bytes[at]}`;
      } else {
        for (const s of learn) {
          if (s.known[at]) continue;
          s.bytes[at] = actual[i];
          s.known[at] = 1;
        }
      }
    }
    return undefined;
  };

  const randomBytes = (length: number) => {
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i++) bytes[i] = Math.floor(random() * 256);
    return bytes;
  };
  const range = (size: number): [number, number] => {
    const r = random();
    if (r < 0.2) return [0, size];
    if (r < 0.25) return [size, 0];
    const offset = Math.floor(random() * size);
    return [offset, Math.floor(random() * (size - offset + 1))];
  };

  /** The mirror comes (lazy, on first host access): what the model expects of it, or the refusal it must get. */
  const mirrorNeeded = (a: ModelArray): number => (a.exportableRequested ? page(a.size) : align(a.size));

  const checkRefusal = (error: TensormemError, expected: { reason: string; requested: number; used: number; cap: number; mirrorOf?: string | true }, step: number, what: string) => {
    if (error.kind !== 'RESOURCE_EXHAUSTED' || error.reason !== expected.reason) fail(step, what, `expected RESOURCE_EXHAUSTED ${expected.reason}, got ${error.kind} ${error.reason}: ${error.message}`);
    const facts = error.metadata;
    if (Number(facts.requested_bytes) !== expected.requested || Number(facts.used_bytes) !== expected.used || Number(facts.cap_bytes) !== expected.cap) {
      fail(step, what, `refusal quotes requested ${facts.requested_bytes} used ${facts.used_bytes} cap ${facts.cap_bytes}; model: ${expected.requested}, ${expected.used}, ${expected.cap} (${error.message})`);
    }
    if (expected.mirrorOf === true ? facts.mirror_of === undefined : facts.mirror_of !== expected.mirrorOf) fail(step, what, `mirror_of ${facts.mirror_of}, model ${String(expected.mirrorOf)}`);
  };

  /**
   * A request the model lets through may still be refused by the pool for fragmentation (no free block
   * of that size in its chunks, no room under the cap for a new chunk) or, for a region of its own, for
   * the room the pool's chunks reserve (README, "Accounting"): allowed, if it says so and changes nothing.
   */
  const allowedPoolRefusal = (error: unknown, aligned: number, dedicated: boolean): boolean => {
    if (!(error instanceof TensormemError) || error.kind !== 'RESOURCE_EXHAUSTED') return false;
    if (dedicated && error.message.includes('outside the pool\'s chunks')) return true;
    return Number(error.metadata.largest_free_block_bytes) < aligned;
  };

  const checkState = async (step: number, what: string) => {
    memory.checkInvariants();
    const device = memory.deviceReports()[0];
    const host = memory.hostReport();
    const facts = {
      deviceUsed: [device.usedBytes, expectedDeviceUsed()],
      hostUsed: [host.usedBytes, hostUsed()],
      mirrorBytes: [host.mirrorBytes, expectedMirrorBytes()],
      hostOnlyBytes: [host.hostOnlyBytes, expectedHostOnlyBytes()],
      tenantHost: [memory.tenants.usage('model').hostBytes, hostUsed()],
    };
    for (const [name, [actual, model]] of Object.entries(facts)) if (actual !== model) fail(step, what, `${name} ${actual}, model ${model}`);
    if (host.usedBytes > HOST_CAP || device.usedBytes > DEVICE_CAP) fail(step, what, `a cap was passed: host ${host.usedBytes}, device ${device.usedBytes}`);
    for (const a of arrays.values()) {
      const info = arrayInfo(a.lease.getArray(a.id));
      const model = {
        placement: a.placement,
        byte_size: a.size,
        has_host_mirror: a.placement === 'PLACEMENT_DEVICE' && a.host !== undefined,
        host_valid: a.hostCurrent,
        device_valid: a.placement === 'PLACEMENT_DEVICE',
        held_bytes: heldBytes(a),
        host_exportable: a.hostExportable,
        device_exportable: false,
      };
      const shown = Object.fromEntries(Object.keys(model).map((key) => [key, info[key as keyof typeof info]]));
      if (JSON.stringify(shown) !== JSON.stringify(model)) fail(step, what, `array ${a.id}: ${JSON.stringify(shown)}, model ${JSON.stringify(model)}`);
      // Each side's bytes, looked at directly (where the model knows them): the device side is what a
      // DuplicateArray copies and CUDA consumers see; the host side is what an exported mapping shows.
      const array = a.lease.getArray(a.id) as TensorArray;
      if (a.device) {
        const bytes = new Uint8Array(a.size);
        await memory.readBlock(array.deviceBlock!, 0, bytes);
        const wrong = compare(bytes, a.device, 0);
        if (wrong) fail(step, what, `array ${a.id} device side: ${wrong}`);
      }
      if (a.host && a.hostCurrent) {
        const bytes = new Uint8Array(a.size);
        await memory.readBlock(array.hostBlock!, 0, bytes);
        const wrong = compare(bytes, a.host, 0);
        if (wrong) fail(step, what, `array ${a.id} host side: ${wrong}`);
      }
      if (a.mapping) {
        const wrong = compare(a.mapping.view, a.host!, 0);
        if (wrong) fail(step, what, `array ${a.id} exported mapping: ${wrong}`);
      }
    }
  };

  const unmap = (a: ModelArray) => {
    if (a.mapping) addon.unmapSharedMemory(a.mapping.buffer);
    a.mapping = undefined;
  };

  for (let step = 0; step < steps; step++) {
    const all = [...arrays.values()];
    const a = all.length > 0 ? pick(all) : undefined;
    const op = random();
    let what = '';
    const before = { device: memory.deviceReports()[0].usedBytes, host: memory.hostReport().usedBytes };
    // What a refused step must leave as it was.
    const snapshot = JSON.stringify(all.map((m) => [m.id, m.hostCurrent, m.hostBlockBytes, m.hostExportable, m.host !== undefined]));
    let refused = false;
    // A mirror refused on first host access (a read, a sync to the host): the model's host cap must be
    // what refuses, or else the pool's layout.
    const judgeMirrorRefusal = (error: TensormemError, a: ModelArray, mirrorBytes: number) => {
      refused = true;
      if (before.host + mirrorBytes > HOST_CAP) {
        checkRefusal(error, { reason: 'HOST_OUT_OF_MEMORY', requested: a.size, used: before.host, cap: HOST_CAP, mirrorOf: a.id }, step, what);
        counts.mustRefuse++;
      } else if (allowedPoolRefusal(error, mirrorBytes, a.exportableRequested)) counts.mayRefuse++;
      else fail(step, what, `refused though the model has room: ${error.message}`);
      history.push(`${what} → ${error.reason}`);
    };
    try {
      if (a === undefined || op < 0.2) {
        // AllocateArray.
        const lease = pick(leases);
        const eager = eagerOf.get(lease)!;
        const placement = random() < 0.65 ? 'PLACEMENT_DEVICE' : 'PLACEMENT_HOST_ONLY';
        const size = pick(SIZES);
        const zero = random() < 0.4;
        const exportable = random() < 0.15;
        const zeroed = zero || scrub;
        what = `allocate ${placement} ${size} zero ${zero} exportable ${exportable} ${eager ? 'eager' : 'lazy'}`;
        const hostBlock = exportable ? page(size) : align(size);
        const deviceRefused = placement === 'PLACEMENT_DEVICE' && before.device + align(size) > DEVICE_CAP;
        const hostRefused = (placement === 'PLACEMENT_HOST_ONLY' || eager) && before.host + hostBlock > HOST_CAP;
        let array: TensorArray;
        try {
          array = await lease.allocateArray({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement, device: 0, workspaceId: '', zero, label: '', requestId: '', exportable });
        } catch (error) {
          if (!(error instanceof TensormemError)) throw error;
          refused = true;
          if (deviceRefused) {
            checkRefusal(error, { reason: 'DEVICE_OUT_OF_MEMORY', requested: size, used: before.device, cap: DEVICE_CAP }, step, what);
            counts.mustRefuse++;
          } else if (hostRefused) {
            checkRefusal(error, { reason: 'HOST_OUT_OF_MEMORY', requested: size, used: before.host, cap: HOST_CAP, mirrorOf: placement === 'PLACEMENT_DEVICE' ? true : undefined }, step, what);
            counts.mustRefuse++;
          } else if (allowedPoolRefusal(error, error.reason === 'DEVICE_OUT_OF_MEMORY' ? align(size) : hostBlock, exportable && error.reason === 'HOST_OUT_OF_MEMORY')) {
            counts.mayRefuse++;
          } else {
            fail(step, what, `refused though the model has room: ${error.message}`);
          }
          history.push(`${what} → ${error.reason}`);
          throw error;
        }
        if (deviceRefused || hostRefused) fail(step, what, `allowed past a cap (device ${before.device}, host ${before.host})`);
        const model: ModelArray = {
          id: array.arrayId,
          lease,
          size,
          placement,
          exportableRequested: exportable,
          hostCurrent: placement === 'PLACEMENT_HOST_ONLY',
          hostBlockBytes: 0,
          hostExportable: false,
        };
        if (placement === 'PLACEMENT_DEVICE') {
          model.device = side(size, zeroed);
          if (eager) {
            // The eager mirror comes with the array; zeroed with it, it holds the current bytes, otherwise
            // it is stale ("an eager one never filled", SYNC_DIRECTION_TO_DEVICE).
            model.host = side(size, zeroed);
            model.hostCurrent = zeroed;
            model.hostBlockBytes = hostBlock;
            model.hostExportable = exportable;
          }
        } else {
          model.host = side(size, zeroed);
          model.hostBlockBytes = hostBlock;
          model.hostExportable = exportable;
        }
        arrays.set(model.id, model);
        what += ` → ${model.id}`;
      } else if (op < 0.38) {
        // WriteArray (or a data plane PUT: writeInline when it can).
        const [offset, length] = range(a.size);
        const data = randomBytes(length);
        what = `write ${a.id} [${offset}, +${length})`;
        const array = a.lease.getArray(a.id);
        if (!(random() < 0.5 && array.writeInline(offset, data))) await array.write(offset, data);
        // To the device and through to a current mirror; a stale mirror stays stale (README, "Host mirrors").
        const targets = a.placement === 'PLACEMENT_HOST_ONLY' ? [a.host!] : a.hostCurrent ? [a.device!, a.host!] : [a.device!];
        for (const s of targets) {
          s.bytes.set(data, offset);
          s.known.fill(1, offset, offset + length);
        }
      } else if (op < 0.46) {
        // A write through the exported host mapping (another process would make it).
        if (!a.mapping) continue;
        const [offset, length] = range(a.size);
        const data = randomBytes(length);
        what = `mapped write ${a.id} [${offset}, +${length})`;
        a.mapping.view.set(data, offset);
        a.host!.bytes.set(data, offset);
        a.host!.known.fill(1, offset, offset + length);
        counts.mappedWrites++;
      } else if (op < 0.6) {
        // ReadArray (or a data plane GET's lent view).
        const [offset, length] = range(a.size);
        const viaView = random() < 0.3;
        what = `${viaView ? 'lend view' : 'read'} ${a.id} [${offset}, +${length})`;
        const array = a.lease.getArray(a.id);
        const needsMirror = a.placement === 'PLACEMENT_DEVICE' && a.host === undefined;
        const mirrorBytes = mirrorNeeded(a);
        let bytes: Uint8Array;
        try {
          if (viaView) {
            const loan = await array.lendHostView(offset, length);
            bytes = Uint8Array.from(loan.view);
            loan.end();
          } else {
            bytes = new Uint8Array(length);
            await array.read(offset, bytes);
          }
        } catch (error) {
          if (!(error instanceof TensormemError) || !needsMirror) throw error;
          judgeMirrorRefusal(error, a, mirrorBytes);
          throw error;
        }
        if (needsMirror && before.host + mirrorBytes > HOST_CAP) fail(step, what, `a mirror of ${mirrorBytes} bytes allowed past the host cap (host used ${before.host})`);
        // A device array is read through its mirror, made on first host access and filled from the device when stale.
        if (needsMirror) {
          a.host = side(a.size, false);
          a.hostBlockBytes = mirrorBytes;
          a.hostExportable = a.exportableRequested;
        }
        if (a.placement === 'PLACEMENT_DEVICE' && !a.hostCurrent) {
          a.host = copySide(a.device!);
          a.hostCurrent = true;
        }
        const learn = a.placement === 'PLACEMENT_DEVICE' ? [a.host!, a.device!] : [a.host!];
        // Bytes the model does not know (never written, not zeroed) are learned from the device's, both sides.
        const wrong = compare(bytes, a.host!, offset, learn);
        if (wrong) fail(step, what, wrong);
      } else if (op < 0.7) {
        // SyncArray.
        const toHost = random() < 0.5;
        what = `sync ${toHost ? 'to host' : 'to device'} ${a.id}`;
        const array = a.lease.getArray(a.id);
        const needsMirror = toHost && a.placement === 'PLACEMENT_DEVICE' && a.host === undefined;
        const mirrorBytes = mirrorNeeded(a);
        try {
          if (toHost) await array.syncToHost();
          else await array.syncToDevice();
        } catch (error) {
          if (!(error instanceof TensormemError) || !needsMirror) throw error;
          judgeMirrorRefusal(error, a, mirrorBytes);
          throw error;
        }
        if (needsMirror && before.host + mirrorBytes > HOST_CAP) fail(step, what, `a mirror allowed past the host cap`);
        if (a.placement === 'PLACEMENT_DEVICE') {
          if (toHost) {
            // Device → mirror, allocating the mirror.
            if (needsMirror) {
              a.hostBlockBytes = mirrorBytes;
              a.hostExportable = a.exportableRequested;
            }
            a.host = copySide(a.device!);
            a.hostCurrent = true;
          } else if (a.host && a.hostCurrent) {
            // Mirror → device, only from a current mirror; a stale one changes nothing.
            a.device = copySide(a.host);
          }
        }
      } else if (op < 0.8) {
        // DuplicateArray.
        const placementName = pick(['PLACEMENT_UNSPECIFIED', 'PLACEMENT_DEVICE', 'PLACEMENT_HOST_ONLY'] as const);
        const placement = placementName === 'PLACEMENT_UNSPECIFIED' ? a.placement : placementName;
        const eager = eagerOf.get(a.lease)!;
        what = `duplicate ${a.id} as ${placementName}`;
        const deviceRefused = placement === 'PLACEMENT_DEVICE' && before.device + align(a.size) > DEVICE_CAP;
        const hostRefused = (placement === 'PLACEMENT_HOST_ONLY' || eager) && before.host + align(a.size) > HOST_CAP;
        let copy: TensorArray;
        try {
          copy = await a.lease.duplicateArray(a.id, placementName, '', '', random() < 0.5);
        } catch (error) {
          if (!(error instanceof TensormemError)) throw error;
          refused = true;
          if (deviceRefused) {
            checkRefusal(error, { reason: 'DEVICE_OUT_OF_MEMORY', requested: a.size, used: before.device, cap: DEVICE_CAP }, step, what);
            counts.mustRefuse++;
          } else if (hostRefused) {
            checkRefusal(error, { reason: 'HOST_OUT_OF_MEMORY', requested: a.size, used: before.host, cap: HOST_CAP, mirrorOf: placement === 'PLACEMENT_DEVICE' ? true : undefined }, step, what);
            counts.mustRefuse++;
          } else if (allowedPoolRefusal(error, align(a.size), false)) counts.mayRefuse++;
          else fail(step, what, `refused though the model has room: ${error.message}`);
          history.push(`${what} → ${error.reason}`);
          throw error;
        }
        if (deviceRefused || hostRefused) fail(step, what, `allowed past a cap (device ${before.device}, host ${before.host})`);
        // The copy holds the source's current bytes: a device array's device side (README: after writing
        // through a mapping, SyncArray TO_DEVICE before the device copy is used by DuplicateArray).
        const bytes = copySide(a.placement === 'PLACEMENT_DEVICE' ? a.device! : a.host!);
        const model: ModelArray = { id: copy.arrayId, lease: a.lease, size: a.size, placement, exportableRequested: false, hostCurrent: placement === 'PLACEMENT_HOST_ONLY', hostBlockBytes: 0, hostExportable: false };
        if (placement === 'PLACEMENT_DEVICE') {
          model.device = bytes;
          if (eager) {
            // An eager mirror a DuplicateArray left behind is stale (SYNC_DIRECTION_TO_DEVICE).
            model.host = side(a.size, false);
            model.hostBlockBytes = align(a.size);
          }
        } else {
          model.host = bytes;
          model.hostBlockBytes = align(a.size);
        }
        arrays.set(model.id, model);
        what += ` → ${model.id}`;
      } else if (op < 0.88) {
        // ExportArray, host side (the device side needs the cuda backend).
        const array = a.lease.getArray(a.id);
        if (a.placement === 'PLACEMENT_DEVICE' && random() < 0.15) {
          what = `export device side ${a.id}`;
          const error = await exportArray(array, 'EXPORT_SIDE_DEVICE', memory).then(
            () => undefined,
            (e: unknown) => e,
          );
          refused = true;
          if (!(error instanceof TensormemError) || error.kind !== 'FAILED_PRECONDITION' || !error.message.includes('CUDA IPC needs the cuda backend')) fail(step, what, `expected FAILED_PRECONDITION, got ${String(error)}`);
          history.push(`${what} → FAILED_PRECONDITION`);
          throw error;
        }
        what = `export host side ${a.id}`;
        const region = page(a.size);
        // A region of its own, in place of the pool block: needs room for both for a moment.
        const moves = !a.hostExportable;
        const hostRefused = moves && before.host + region > HOST_CAP;
        let exported: Awaited<ReturnType<typeof exportArray>>;
        try {
          exported = await exportArray(array, 'EXPORT_SIDE_HOST', memory);
        } catch (error) {
          if (!(error instanceof TensormemError)) throw error;
          refused = true;
          if (hostRefused) {
            checkRefusal(error, { reason: 'HOST_OUT_OF_MEMORY', requested: a.size, used: before.host, cap: HOST_CAP, mirrorOf: a.placement === 'PLACEMENT_DEVICE' ? a.id : undefined }, step, what);
            counts.mustRefuse++;
          } else if (moves && allowedPoolRefusal(error, region, true)) counts.mayRefuse++;
          else fail(step, what, `refused though the model has room: ${error.message}`);
          history.push(`${what} → ${error.reason}`);
          throw error;
        }
        if (hostRefused) fail(step, what, `a region of ${region} bytes allowed past the host cap (host used ${before.host})`);
        if (exported.kind !== 'shm') fail(step, what, `a ${exported.kind} export of the host side`);
        // Moved: whenever the host side had bytes outside a region of its own (a device array's first mirror is made there).
        const expectMoved = moves && a.host !== undefined;
        if (exported.moved !== expectMoved) fail(step, what, `moved ${exported.moved}, model ${expectMoved}`);
        if (exported.kind === 'shm' && (exported.length !== a.size || exported.regionBytes < exported.offset + exported.length)) fail(step, what, `region ${JSON.stringify(exported)}`);
        if (moves) {
          a.hostBlockBytes = region;
          a.hostExportable = true;
          if (!a.host) a.host = side(a.size, false);
        }
        // The reply's mapping is current: a stale mirror gets the device bytes.
        if (a.placement === 'PLACEMENT_DEVICE' && !a.hostCurrent) {
          a.host = copySide(a.device!);
          a.hostCurrent = true;
        }
        if (!a.mapping && exported.kind === 'shm') {
          const buffer = addon.mapSharedMemory(exported.name, true);
          a.mapping = { buffer, view: new Uint8Array(buffer, exported.offset, exported.length) };
        }
        counts.exports++;
      } else if (op < 0.97) {
        what = `free ${a.id}`;
        const freed = a.lease.freeArray(a.id);
        if (freed !== heldBytes(a)) fail(step, what, `freed ${freed} bytes, model ${heldBytes(a)}`);
        // A mapping left open keeps the array's last bytes.
        if (a.mapping) {
          const wrong = compare(a.mapping.view, a.host!, 0);
          if (wrong) fail(step, what, `mapping after free: ${wrong}`);
        }
        unmap(a);
        arrays.delete(a.id);
      } else {
        // The lease ends: every array it holds goes back.
        const index = Math.floor(random() * leases.length);
        const lease = leases[index];
        what = `close lease ${lease.leaseId}`;
        registries[eagerOf.get(lease)! ? 'eager' : 'lazy'].close(lease, 'closed');
        for (const m of [...arrays.values()]) {
          if (m.lease !== lease) continue;
          unmap(m);
          arrays.delete(m.id);
        }
        leases[index] = openLease(eagerOf.get(lease)!);
      }
      history.push(what);
    } catch (error) {
      if (!refused || !(error instanceof TensormemError)) {
        if (error instanceof Error && error.message.startsWith(`seed ${seed}`)) throw error;
        fail(step, what, `unexpected error: ${(error as Error)?.stack ?? String(error)}`);
      }
      // A refusal changes nothing.
      const after = { device: memory.deviceReports()[0].usedBytes, host: memory.hostReport().usedBytes };
      if (after.device !== before.device || after.host !== before.host) fail(step, what, `a refusal changed the pools: ${JSON.stringify(before)} → ${JSON.stringify(after)}`);
      const now = JSON.stringify(all.map((m) => [m.id, m.hostCurrent, m.hostBlockBytes, m.hostExportable, m.host !== undefined]));
      if (now !== snapshot) fail(step, what, 'the model changed on a refusal (test bug)');
    }
    await checkState(step, what);
  }
  for (const lease of leases) registries[eagerOf.get(lease)! ? 'eager' : 'lazy'].close(lease, 'closed');
  for (const m of arrays.values()) unmap(m);
  expect(memory.deviceReports()[0].usedBytes).toBe(0);
  const host = memory.hostReport();
  expect({ used: host.usedBytes, mirror: host.mirrorBytes, hostOnly: host.hostOnlyBytes }).toEqual({ used: 0, mirror: 0, hostOnly: 0 });
  expect(memory.tenants.usage('model').hostBytes).toBe(0);
  memory.checkInvariants();
  memory.release();
  return counts;
}

/** An operation of a burst: issued together with the others on one array, none awaited before the next starts. */
type BurstOp =
  | { kind: 'write'; offset: number; data: Uint8Array; inline: boolean }
  | { kind: 'read'; offset: number; length: number; view: boolean }
  | { kind: 'syncToHost' }
  | { kind: 'syncToDevice' }
  | { kind: 'export' }
  | { kind: 'duplicate'; placement: 'PLACEMENT_DEVICE' | 'PLACEMENT_HOST_ONLY' }
  | { kind: 'free' };

/** What an operation answered: a read's bytes, a copy's bytes, an export's moved flag, FreeArray's freed bytes; or that it was refused (the array freed before it). */
type Outcome = { bytes?: string; moved?: boolean; freed?: number; refused?: string };

/** Bytes as a short digest, for messages. */
const hex = (bytes: Uint8Array) => `${bytes.length}:${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}`;

function clone(a: ModelArray): ModelArray {
  return { ...a, device: a.device && copySide(a.device), host: a.host && copySide(a.host), mapping: undefined };
}

/** The model's effect of `op` on `a` (every byte known), and what it answers. */
function applyModel(a: ModelArray, op: BurstOp): Outcome {
  if (a.freed) return { refused: 'freed' };
  const mirrorCurrent = () => {
    if (a.placement !== 'PLACEMENT_DEVICE') return;
    if (!a.host) {
      a.hostBlockBytes = a.exportableRequested ? page(a.size) : align(a.size);
      a.hostExportable = a.exportableRequested;
    }
    if (!a.host || !a.hostCurrent) a.host = copySide(a.device!);
    a.hostCurrent = true;
  };
  switch (op.kind) {
    case 'write':
      for (const s of a.placement === 'PLACEMENT_HOST_ONLY' ? [a.host!] : a.hostCurrent ? [a.device!, a.host!] : [a.device!]) s.bytes.set(op.data, op.offset);
      return {};
    case 'read':
      mirrorCurrent();
      return { bytes: hex(a.host!.bytes.subarray(op.offset, op.offset + op.length)) };
    case 'syncToHost':
      if (a.placement === 'PLACEMENT_DEVICE') {
        mirrorCurrent();
        a.host = copySide(a.device!);
      }
      return {};
    case 'syncToDevice':
      if (a.placement === 'PLACEMENT_DEVICE' && a.host && a.hostCurrent) a.device = copySide(a.host);
      return {};
    case 'export': {
      const moves = !a.hostExportable;
      // A device array's first mirror is made in its region: nothing moved.
      const moved = moves && a.host !== undefined;
      if (moves) {
        a.hostBlockBytes = page(a.size);
        a.hostExportable = true;
        if (!a.host) a.host = side(a.size, false);
      }
      if (a.placement === 'PLACEMENT_DEVICE' && !a.hostCurrent) {
        a.host = copySide(a.device!);
        a.hostCurrent = true;
      }
      return { moved };
    }
    case 'duplicate':
      return { bytes: hex((a.placement === 'PLACEMENT_DEVICE' ? a.device! : a.host!).bytes) };
    case 'free':
      a.freed = true;
      return { freed: (a.device ? align(a.size) : 0) + (a.host ? a.hostBlockBytes : 0) };
  }
}

/**
 * Bursts of 2 to 4 operations on one array issued at once (copies on the thread pool from 512 bytes, so
 * that they interleave): what each answers and what the array holds after must be what some order of
 * them one after the other gives (the device and the mirror take overlapping changes in the same order).
 */
async function runBursts(seed: number, rounds: number): Promise<void> {
  const random = rng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const scrub = random() < 0.5;
  const eager = random() < 0.5;
  const backend = createBackend('host', { deviceCapacityBytes: 4 * MiB, deviceCount: 1 });
  const memory = new MemoryManager(backend, givenLimits([MiB], MiB), { poolChunkBytes: 64 * KiB, asyncCopyThresholdBytes: pick([1, 512, 2048]), scrub }, new PhysicalMemoryGuard(0));
  const registry = new LeaseRegistry(memory, 3_600_000, eager, pino({ level: 'silent' }));
  const lease = registry.open({ tenant: 'model', clientName: 'mirror-bursts', ttlSeconds: 0, labels: {} }).lease;
  const randomBytes = (length: number) => Uint8Array.from({ length }, () => Math.floor(random() * 256));
  const peek = async (block: Block, size: number) => {
    const bytes = new Uint8Array(size);
    await memory.readBlock(block, 0, bytes);
    return hex(bytes);
  };
  for (let round = 0; round < rounds; round++) {
    const placement = random() < 0.75 ? 'PLACEMENT_DEVICE' : 'PLACEMENT_HOST_ONLY';
    const size = pick(SIZES);
    const exportable = random() < 0.2;
    const array = await lease.allocateArray({ dataType: 'DATA_TYPE_UINT8', shape: [size], placement, device: 0, workspaceId: '', zero: true, label: '', requestId: '', exportable });
    const a: ModelArray = { id: array.arrayId, lease, size, placement, exportableRequested: exportable, hostCurrent: true, hostBlockBytes: 0, hostExportable: false };
    if (placement === 'PLACEMENT_DEVICE') {
      a.device = side(size, true);
      if (eager) {
        a.host = side(size, true);
        a.hostBlockBytes = exportable ? page(size) : align(size);
        a.hostExportable = exportable;
      } else a.hostCurrent = false;
    } else {
      a.host = side(size, true);
      a.hostBlockBytes = exportable ? page(size) : align(size);
      a.hostExportable = exportable;
    }
    // A start of random history, one operation at a time.
    const full = randomBytes(size);
    await array.write(0, full);
    applyModel(a, { kind: 'write', offset: 0, data: full, inline: false });
    const makeOp = (): BurstOp => {
      const r = random();
      const offset = Math.floor(random() * size);
      const length = Math.max(1, Math.floor(random() * (size - offset + 1)));
      if (r < 0.35) return { kind: 'write', offset, data: randomBytes(Math.min(length, size - offset)), inline: random() < 0.5 };
      if (r < 0.55) return { kind: 'read', offset, length: Math.min(length, size - offset), view: random() < 0.3 };
      if (r < 0.67) return { kind: 'syncToHost' };
      if (r < 0.79) return { kind: 'syncToDevice' };
      if (r < 0.88) return { kind: 'export' };
      if (r < 0.95) return { kind: 'duplicate', placement: pick(['PLACEMENT_DEVICE', 'PLACEMENT_HOST_ONLY'] as const) };
      return { kind: 'free' };
    };
    for (let i = Math.floor(random() * 3); i > 0; i--) {
      const op = makeOp();
      if (op.kind === 'duplicate' || op.kind === 'free') continue;
      await execute(op);
      applyModel(a, op);
    }
    const drawn = Array.from({ length: 2 + Math.floor(random() * 3) }, makeOp);
    // One free at most. And no write beside another call on the same bytes (a read, a duplicate, another
    // write): calls on overlapping bytes at the same time are not ordered (README, "Reads and writes at
    // the same time"): their copies run at once on the addon's threads, and a read may show some of each.
    const firstFree = drawn.findIndex((op) => op.kind === 'free');
    const bytesOf = (op: BurstOp): [number, number] | undefined =>
      op.kind === 'write' ? [op.offset, op.offset + op.data.byteLength] : op.kind === 'read' ? [op.offset, op.offset + op.length] : op.kind === 'duplicate' ? [0, size] : undefined;
    const kept: BurstOp[] = [];
    for (const [i, op] of drawn.entries()) {
      if (op.kind === 'free' && i !== firstFree) continue;
      const range = bytesOf(op);
      const clashes = range !== undefined && kept.some((other) => {
        const otherRange = bytesOf(other);
        return otherRange !== undefined && (op.kind === 'write' || other.kind === 'write') && range[0] < otherRange[1] && otherRange[0] < range[1];
      });
      if (!clashes) kept.push(op);
    }
    const ops = kept;
    const copies: TensorArray[] = [];
    async function execute(op: BurstOp): Promise<Outcome> {
      // Each call looks the array up first, as the RPC handlers do (NOT_FOUND once it is freed).
      const array = lease.getArray(a.id);
      switch (op.kind) {
        case 'write':
          if (!(op.inline && array.writeInline(op.offset, op.data))) await array.write(op.offset, op.data);
          return {};
        case 'read': {
          if (op.view) {
            const loan = await array.lendHostView(op.offset, op.length);
            const bytes = hex(loan.view);
            loan.end();
            return { bytes };
          }
          const bytes = new Uint8Array(op.length);
          await array.read(op.offset, bytes);
          return { bytes: hex(bytes) };
        }
        case 'syncToHost':
          await array.syncToHost();
          return {};
        case 'syncToDevice':
          await array.syncToDevice();
          return {};
        case 'export':
          return { moved: (await exportArray(array, 'EXPORT_SIDE_HOST', memory)).moved };
        case 'duplicate': {
          const copy = await lease.duplicateArray(array.arrayId, op.placement, '', '', true);
          copies.push(copy);
          return { bytes: await peek((copy.deviceBlock ?? copy.hostBlock)!, size) };
        }
        case 'free':
          return { freed: lease.freeArray(array.arrayId) };
      }
    }
    /** A refusal because the array was freed first: FAILED_PRECONDITION "was freed", or NOT_FOUND (a call that looks the id up, ExportArray's answer). */
    const settled = (await Promise.allSettled(ops.map((op) => execute(op)))).map((outcome): PromiseSettledResult<Outcome> => {
      if (outcome.status === 'fulfilled') return outcome;
      const error = outcome.reason as TensormemError;
      if ((error.kind === 'FAILED_PRECONDITION' && error.message === `array ${array.arrayId} was freed`) || (error.kind === 'NOT_FOUND' && error.reason === 'ARRAY_NOT_FOUND')) return { status: 'fulfilled', value: { refused: 'freed' } };
      return outcome;
    });
    const outcomes = settled;
    const described = ops.map((op, i) => `${op.kind}${'offset' in op ? ` [${op.offset}, +${'data' in op ? op.data.length : op.length})` : ''} → ${outcomes[i].status === 'fulfilled' ? JSON.stringify(outcomes[i].value) : String((outcomes[i] as PromiseRejectedResult).reason)}`);
    const where = `seed ${seed} (scrub ${scrub}, ${eager ? 'eager' : 'lazy'}, async from ${memory.copiesInline(1) ? '' : '1 '}bytes) round ${round}: ${placement} ${size} bytes exportable ${exportable}\n${described.join('\n')}`;
    for (const outcome of outcomes) if (outcome.status === 'rejected') throw new Error(`${where}\nrefused: ${(outcome.reason as Error).stack}`);
    // A freed array shows nothing any more (no call reaches it): only that it holds nothing.
    const shown = array.isFreed ? { held_bytes: array.heldBytes, freed: true } : {
      has_host_mirror: array.placement === 'PLACEMENT_DEVICE' && array.hostBlock !== undefined,
      host_valid: array.hostValid,
      held_bytes: array.heldBytes,
      host_exportable: array.hostExportable,
      device: array.deviceBlock ? await peek(array.deviceBlock, size) : undefined,
      host: array.hostBlock && array.hostValid ? await peek(array.hostBlock, size) : undefined,
      freed: array.isFreed,
    };
    const tried: string[] = [];
    let matched: ModelArray | undefined;
    for (const order of permutations(ops.map((_, i) => i))) {
      const m = clone(a);
      const answers: Outcome[] = [];
      for (const i of order) answers[i] = applyModel(m, ops[i]);
        const expected = m.freed
        ? { held_bytes: 0, freed: true }
        : {
            has_host_mirror: m.placement === 'PLACEMENT_DEVICE' && m.host !== undefined,
            host_valid: m.hostCurrent,
            held_bytes: (m.device ? align(m.size) : 0) + (m.host ? m.hostBlockBytes : 0),
            host_exportable: m.hostExportable,
            device: m.device ? hex(m.device.bytes) : undefined,
            host: m.host && m.hostCurrent ? hex(m.host.bytes) : undefined,
            freed: false,
          };
      const same = JSON.stringify(expected) === JSON.stringify(shown) && answers.every((answer, i) => JSON.stringify(answer) === JSON.stringify((outcomes[i] as PromiseFulfilledResult<Outcome>).value));
      if (same) {
        matched = m;
        break;
      }
      tried.push(`order ${order.join(',')}: ${JSON.stringify(answers)} ${JSON.stringify(expected).slice(0, 400)}`);
    }
    if (!matched) throw new Error(`${where}\nno order of the burst gives what the array shows: ${JSON.stringify(shown).slice(0, 400)}\n${tried.slice(0, 6).join('\n')}`);
    memory.checkInvariants();
    for (const copy of copies) lease.freeArray(copy.arrayId);
    if (!matched.freed) lease.freeArray(array.arrayId);
    expect(memory.deviceReports()[0].usedBytes).toBe(0);
    expect(memory.hostReport().usedBytes).toBe(0);
  }
  registry.close(lease, 'closed');
  memory.checkInvariants();
  memory.release();
}

describe('host mirrors and placement, model-based', () => {
  it('keeps mirrors, sides, sync state and pool bytes as the README says over random sequences (seeded)', async () => {
    const totals = await totalsOverSeeds(1, 24, (seed) => run(seed, 250));
    // The sequences reach what they are for: refusals at the caps, exports and writes through mappings.
    expect(totals.mustRefuse).toBeGreaterThan(20);
    expect(totals.exports).toBeGreaterThan(50);
    expect(totals.mappedWrites).toBeGreaterThan(50);
  });

  it('answers bursts of concurrent writes, reads, syncs, exports and duplicates as some order of them one at a time (seeded)', async () => {
    for (let seed = 1; seed <= 40; seed++) await runBursts(seed, 40);
  });

  it('takes no new host memory for an array freed while a call on it was under way: freed_bytes is what goes back', async () => {
    const backend = createBackend('host', { deviceCapacityBytes: 4 * MiB, deviceCount: 1 });
    const memory = new MemoryManager(backend, givenLimits([MiB], MiB), { poolChunkBytes: 64 * KiB, asyncCopyThresholdBytes: 1 }, new PhysicalMemoryGuard(0));
    const registry = new LeaseRegistry(memory, 3_600_000, false, pino({ level: 'silent' }));
    const lease = registry.open({ tenant: 'model', clientName: 'mirror-free', ttlSeconds: 0, labels: {} }).lease;
    const allocate = (placement: 'PLACEMENT_DEVICE' | 'PLACEMENT_HOST_ONLY') =>
      lease.allocateArray({ dataType: 'DATA_TYPE_UINT8', shape: [1000], placement, device: 0, workspaceId: '', zero: true, label: '', requestId: '', exportable: false });
    const hostUsed = () => memory.hostReport().usedBytes;
    const freedFailure = (arrayId: string) => ({ kind: 'FAILED_PRECONDITION', message: `array ${arrayId} was freed` });

    // A read, a lent view and a sync to the host of a device array with no mirror yet, each freed while
    // under way: the free answers the device block (1024 bytes) and no mirror is made after it.
    for (const call of ['read', 'lendHostView', 'syncToHost'] as const) {
      const array = await allocate('PLACEMENT_DEVICE');
      const pending = call === 'read' ? array.read(0, new Uint8Array(10)) : call === 'lendHostView' ? array.lendHostView(0, 10) : array.syncToHost();
      expect(lease.freeArray(array.arrayId), call).toBe(1024);
      await expect(pending, call).rejects.toMatchObject(freedFailure(array.arrayId));
      expect({ call, host: hostUsed(), mirror: memory.hostReport().mirrorBytes, device: memory.deviceReports()[0].usedBytes }).toEqual({ call, host: 0, mirror: 0, device: 0 });
    }

    // An export moving a HOST_ONLY array to a region of its own, freed during the copy: the move is
    // dropped and what the free answered (the pool block) is what goes back.
    const hostOnly = await allocate('PLACEMENT_HOST_ONLY');
    const exporting = exportArray(hostOnly, 'EXPORT_SIDE_HOST', memory);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lease.freeArray(hostOnly.arrayId)).toBe(1024);
    await expect(exporting).rejects.toMatchObject({ kind: 'NOT_FOUND' });
    expect(hostUsed()).toBe(0);
    registry.close(lease, 'closed');
    memory.checkInvariants();
    memory.release();
  });
});
