/**
 * `tensormemctl put FILE` / `get --array ID FILE`: stream a file into or out of an array with the typed
 * client's WriteArray / ReadArray, a piece at a time (the file is never read whole into memory), with a
 * progress bar on stderr when stderr is a terminal.
 */
import { open, stat } from 'node:fs/promises';
import { ELEMENT_BYTES, DataTypeName, byteSizeOf } from '../memory/data-types';
import { LeaseSession, TensormemClient } from '../client/tensormem-client';
import type { ArrayInfo } from '../client/tensormem-client';
import { formatIec, MiB } from '../units';

/** Bytes moved per WriteArray / ReadArray call: large enough that a call's setup is noise, small enough for a smooth progress bar. */
export const PIECE_BYTES = 16 * MiB;

export class Progress {
  private readonly started = Date.now();
  private lastDrawMs = 0;

  constructor(
    private readonly label: string,
    private readonly totalBytes: number,
    private readonly stream: NodeJS.WriteStream | undefined,
  ) {}

  update(doneBytes: number): void {
    if (!this.stream) return;
    const now = Date.now();
    if (doneBytes < this.totalBytes && now - this.lastDrawMs < 100) return;
    this.lastDrawMs = now;
    const ratio = this.totalBytes > 0 ? doneBytes / this.totalBytes : 1;
    const width = 30;
    const filled = Math.round(ratio * width);
    const seconds = Math.max((now - this.started) / 1000, 1e-3);
    this.stream.write(`\r${this.label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${(100 * ratio).toFixed(0).padStart(3)}% ${formatIec(doneBytes)} / ${formatIec(this.totalBytes)} ${formatIec(Math.round(doneBytes / seconds))}/s`);
  }

  done(): void {
    if (this.stream) this.stream.write('\n');
  }
}

/** A LeaseSession for calls made with a lease token (the lease id is not needed for array calls). */
export function sessionOf(client: TensormemClient, leaseToken: string): LeaseSession {
  return new LeaseSession(client, { lease_id: '', token: leaseToken, ttl_seconds: 0, expires_at: null, tenant: '', client_name: '' });
}

/** "float32" or "DATA_TYPE_FLOAT32" → "DATA_TYPE_FLOAT32". */
export function parseDataType(text: string): DataTypeName {
  const name = (text.toUpperCase().startsWith('DATA_TYPE_') ? text.toUpperCase() : `DATA_TYPE_${text.toUpperCase()}`) as DataTypeName;
  if (!(name in ELEMENT_BYTES)) {
    throw new Error(`Expected one of ${Object.keys(ELEMENT_BYTES).map((k) => k.replace('DATA_TYPE_', '').toLowerCase()).join(', ')} for --dtype but received "${text}"`);
  }
  return name;
}

/** "1024,256" → [1024, 256]. */
export function parseShape(text: string): number[] {
  return text.split(',').map((part, index) => {
    const trimmed = part.trim();
    if (!/^\d+$/.test(trimmed) || !Number.isSafeInteger(Number(trimmed))) throw new Error(`Expected a non-negative integer for --shape[${index}] but received "${part}"`);
    return Number(trimmed);
  });
}

export interface PutOptions {
  /** Write into this existing array (needs its lease's token); otherwise a new array is allocated. */
  arrayId?: string;
  /** Lease token (for --array) or tenant token (for a new lease). */
  token?: string;
  tenant?: string;
  shape?: string;
  dtype?: string;
  placement?: 'PLACEMENT_DEVICE' | 'PLACEMENT_HOST_ONLY';
  label?: string;
  ttlSeconds?: number;
  progress?: NodeJS.WriteStream;
}

export interface PutResult {
  array: ArrayInfo;
  bytes_written: number;
  /** Set when put opened a lease for a new array: the array lives as long as this lease. */
  lease?: { lease_id: string; token: string; ttl_seconds: number };
}

export async function putFile(client: TensormemClient, path: string, options: PutOptions): Promise<PutResult> {
  const fileBytes = (await stat(path)).size;
  let session: LeaseSession;
  let array: ArrayInfo;
  let opened: PutResult['lease'];
  if (options.arrayId) {
    if (!options.token) throw new Error('put --array needs the token of the lease that holds the array (--token or $TENSORMEM_TOKEN)');
    session = sessionOf(client, options.token);
    array = await session.get(options.arrayId);
    if (fileBytes > array.byte_size) throw new Error(`${path} has ${fileBytes} bytes (${formatIec(fileBytes)}), more than array ${array.array_id}'s ${array.byte_size} bytes (${formatIec(array.byte_size)})`);
  } else {
    const dataType = parseDataType(options.dtype ?? 'uint8');
    const shape = options.shape ? parseShape(options.shape) : [fileBytes / ELEMENT_BYTES[dataType]];
    if (!Number.isInteger(shape[0])) throw new Error(`${path} has ${fileBytes} bytes, not a whole number of ${dataType} elements (${ELEMENT_BYTES[dataType]} bytes); pass --shape`);
    const arrayBytes = byteSizeOf(dataType, shape);
    if (arrayBytes !== fileBytes) throw new Error(`--shape ${shape.join(',')} --dtype ${dataType} makes ${arrayBytes} bytes but ${path} has ${fileBytes} bytes`);
    session = await client.openLease({ tenant: options.tenant, clientName: 'tensormemctl put', ttlSeconds: options.ttlSeconds, tenantToken: options.token });
    try {
      array = await session.allocate({ dataType, shape, placement: options.placement, label: options.label ?? path });
    } catch (error) {
      await session.close().catch(() => undefined);
      throw error;
    }
    opened = { lease_id: session.leaseId, token: session.token, ttl_seconds: session.lease.ttl_seconds };
  }
  const progress = new Progress(`put ${array.array_id}`, fileBytes, options.progress);
  const file = await open(path, 'r');
  let written = 0;
  try {
    const buffer = Buffer.allocUnsafe(Math.min(PIECE_BYTES, Math.max(fileBytes, 1)));
    while (written < fileBytes) {
      const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, fileBytes - written), written);
      if (bytesRead === 0) throw new Error(`${path} ended at ${written} bytes while ${fileBytes} were expected (was it truncated?)`);
      written += await session.write(array.array_id, buffer.subarray(0, bytesRead), written);
      progress.update(written);
    }
  } finally {
    progress.done();
    await file.close();
  }
  return { array, bytes_written: written, lease: opened };
}

export async function getFile(client: TensormemClient, arrayId: string, path: string, options: { token?: string; progress?: NodeJS.WriteStream }): Promise<{ array: ArrayInfo; bytes_read: number }> {
  if (!options.token) throw new Error('get needs the token of the lease that holds the array (--token or $TENSORMEM_TOKEN)');
  const session = sessionOf(client, options.token);
  const array = await session.get(arrayId);
  const progress = new Progress(`get ${arrayId}`, array.byte_size, options.progress);
  const file = await open(path, 'w');
  let read = 0;
  try {
    while (read < array.byte_size) {
      const piece = await session.read(arrayId, read, Math.min(PIECE_BYTES, array.byte_size - read));
      if (piece.length === 0) throw new Error(`ReadArray of ${arrayId} returned no bytes at offset ${read} of ${array.byte_size}`);
      await file.write(piece, 0, piece.length, read);
      read += piece.length;
      progress.update(read);
    }
  } finally {
    progress.done();
    await file.close();
  }
  return { array, bytes_read: read };
}
