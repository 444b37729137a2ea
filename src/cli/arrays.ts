/**
 * `tensormemctl arrays`: with a lease token, that lease's arrays (ListArrays); with an admin token, or
 * without a token in open mode, every array block by owner (GetMemorySnapshot). A tenant token that is
 * not an admin's sees neither, and is told what would.
 */
import { status } from '@grpc/grpc-js';
import { TensormemClient, TensormemClientError } from '../client/tensormem-client';
import type { ArrayInfo } from '../client/tensormem-client';
import { counted } from '../counted';

export interface ArrayBlock {
  pool: string;
  lease_id: string;
  tenant: string;
  array_id: string;
  purpose: string;
  bytes: number;
  label: string;
}

export type ArraysView = { kind: 'lease'; arrays: ArrayInfo[] } | { kind: 'blocks'; blocks: ArrayBlock[] };

function isCode(error: unknown, code: status, reason?: string): error is TensormemClientError {
  return error instanceof TensormemClientError && error.code === code && (reason === undefined || error.reason === reason);
}

async function snapshotBlocks(client: TensormemClient, token: string | undefined): Promise<ArrayBlock[]> {
  const snapshot = await client.memorySnapshot(token);
  return snapshot.pools.flatMap((pool) =>
    pool.segments.flatMap((segment) =>
      segment.blocks
        .filter((b) => !b.free)
        .map((b) => ({ pool: pool.pool, lease_id: b.lease_id, tenant: b.tenant, array_id: b.array_id, purpose: b.purpose, bytes: b.bytes, label: b.label })),
    ),
  );
}

export async function arraysView(client: TensormemClient, token: string | undefined): Promise<ArraysView> {
  if (!token) {
    try {
      return { kind: 'blocks', blocks: await snapshotBlocks(client, undefined) };
    } catch (error) {
      if (isCode(error, status.UNAUTHENTICATED)) {
        throw new Error(`arrays without --token lists every array block (GetMemorySnapshot), which this daemon (it has a tenants file) answers only for an admin --token; with a lease's --token it lists that lease's arrays (${error.message})`);
      }
      throw error;
    }
  }
  // A lease token: ListArrays of its lease (an empty lease id is the token's own lease).
  try {
    return { kind: 'lease', arrays: await client.sessionOf(token).list() };
  } catch (error) {
    // LEASE_EXPIRED, or anything but "not a lease token", is the answer.
    if (!isCode(error, status.UNAUTHENTICATED, 'UNAUTHENTICATED')) throw error;
  }
  // Not a lease token: ListLeases answers for a tenant or admin token (and refuses an unknown one).
  let leases;
  try {
    leases = await client.listLeases(token);
  } catch (error) {
    if (isCode(error, status.UNAUTHENTICATED)) throw new Error(`arrays: --token is neither a lease token nor a tenant token this daemon knows (${error.message})`);
    throw error;
  }
  try {
    return { kind: 'blocks', blocks: await snapshotBlocks(client, token) };
  } catch (error) {
    if (!isCode(error, status.PERMISSION_DENIED)) throw error;
  }
  // A tenant token that is not an admin's: it sees its tenant's leases, but no arrays.
  if (leases.length === 0) {
    throw new Error('arrays: --token is a tenant token, and that tenant has no open leases, so no arrays; an array is listed with the token of the lease that holds it, or every array with an admin token');
  }
  throw new Error(
    `arrays: --token is a tenant token of ${leases[0].tenant}, which lists no arrays; pass the token of one of its leases (${leases.map((l) => `${l.lease_id}: ${counted(l.array_count, 'array')}`).join(', ')}), or an admin token for every array`,
  );
}
