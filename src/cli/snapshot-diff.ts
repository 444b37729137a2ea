/**
 * `tensormemctl snapshot diff A B`: the leak finder. Two GetMemorySnapshot dumps (JSON, as
 * `tensormemctl snapshot -f` writes them) are compared block by block; the blocks that appeared and
 * those that disappeared are grouped by tenant, lease and label with their byte totals.
 */
import { readFileSync } from 'node:fs';
import type { MemorySnapshot__Output } from '../generated/tensormem/v1/MemorySnapshot';
import type { BlockSnapshot__Output } from '../generated/tensormem/v1/BlockSnapshot';
import { renderTable } from '../client/table';
import { formatIec } from '../units';
import { counted } from '../counted';

export type MemorySnapshot = MemorySnapshot__Output;

export interface DiffGroup {
  tenant: string;
  lease_id: string;
  label: string;
  blocks: number;
  bytes: number;
  /** Array ids (or, for workspace buffers, workspace ids) of the blocks, sorted. */
  owners: string[];
  /** Pools and purposes seen, e.g. "device:0 device", "host mirror". */
  purposes: string[];
}

export interface SnapshotDiff {
  from: string;
  to: string;
  appeared: DiffGroup[];
  disappeared: DiffGroup[];
  appeared_bytes: number;
  disappeared_bytes: number;
}

interface LiveBlock extends BlockSnapshot__Output {
  pool: string;
  chunk: number;
}

function liveBlocks(snapshot: MemorySnapshot): Map<string, LiveBlock> {
  const blocks = new Map<string, LiveBlock>();
  for (const pool of snapshot.pools ?? []) {
    for (const segment of pool.segments ?? []) {
      for (const block of segment.blocks ?? []) {
        if (block.free) continue;
        // A block is the same block when it sits at the same place with the same size and owner; a
        // freed array whose bytes went to a new one shows up as one disappeared and one appeared.
        const key = [pool.pool, segment.chunk, block.offset, block.bytes, block.lease_id, block.array_id, block.workspace_id, block.purpose].join('|');
        blocks.set(key, { ...block, pool: pool.pool, chunk: Number(segment.chunk) });
      }
    }
  }
  return blocks;
}

function group(blocks: LiveBlock[]): DiffGroup[] {
  const groups = new Map<string, DiffGroup & { ownerSet: Set<string>; purposeSet: Set<string> }>();
  for (const block of blocks) {
    const key = `${block.tenant}\u0000${block.lease_id}\u0000${block.label}`;
    let entry = groups.get(key);
    if (!entry) {
      entry = { tenant: block.tenant, lease_id: block.lease_id, label: block.label, blocks: 0, bytes: 0, owners: [], purposes: [], ownerSet: new Set(), purposeSet: new Set() };
      groups.set(key, entry);
    }
    entry.blocks++;
    entry.bytes += Number(block.bytes);
    const owner = block.array_id || block.workspace_id;
    if (owner) entry.ownerSet.add(owner);
    entry.purposeSet.add(`${block.pool}${block.purpose ? ` ${block.purpose}` : ''}`);
  }
  return [...groups.values()]
    .map(({ ownerSet, purposeSet, ...rest }) => ({ ...rest, owners: [...ownerSet].sort(), purposes: [...purposeSet].sort() }))
    .sort((a, b) => b.bytes - a.bytes || a.lease_id.localeCompare(b.lease_id));
}

function takenAt(snapshot: MemorySnapshot): string {
  const seconds = Number(snapshot.taken_at?.seconds ?? 0);
  return seconds > 0 ? new Date(seconds * 1000 + Math.floor((snapshot.taken_at?.nanos ?? 0) / 1e6)).toISOString() : '(unknown time)';
}

export function diffSnapshots(before: MemorySnapshot, after: MemorySnapshot): SnapshotDiff {
  const a = liveBlocks(before);
  const b = liveBlocks(after);
  const appeared = [...b].filter(([key]) => !a.has(key)).map(([, block]) => block);
  const disappeared = [...a].filter(([key]) => !b.has(key)).map(([, block]) => block);
  const total = (blocks: LiveBlock[]) => blocks.reduce((sum, block) => sum + Number(block.bytes), 0);
  return { from: takenAt(before), to: takenAt(after), appeared: group(appeared), disappeared: group(disappeared), appeared_bytes: total(appeared), disappeared_bytes: total(disappeared) };
}

/**
 * Reads a snapshot file, saying which file and what is wrong with it: a GetMemorySnapshot dump as
 * `tensormemctl snapshot -f` writes it, or the metrics listener's `/api/snapshot` saved as it is (the
 * same snapshot under "snapshot", with the leases beside it), which is what a daemon whose snapshot
 * passes --max-message-bytes is read by (MESSAGE_TOO_LARGE says so).
 */
export function readSnapshotFile(path: string): MemorySnapshot {
  let document: unknown;
  try {
    document = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`Expected a snapshot file written by "tensormemctl snapshot -f" for ${path} but could not read it: ${(error as Error).message}`);
  }
  const isSnapshot = (value: unknown): value is MemorySnapshot => typeof value === 'object' && value !== null && Array.isArray((value as MemorySnapshot).pools);
  if (isSnapshot(document)) return document;
  const inner = typeof document === 'object' && document !== null ? (document as { snapshot?: unknown }).snapshot : undefined;
  if (isSnapshot(inner)) return inner;
  throw new Error(`Expected a snapshot (a JSON object with "pools", or /api/snapshot's with "snapshot") in ${path} but received ${JSON.stringify(document)?.slice(0, 80)}`);
}

export function renderDiff(diff: SnapshotDiff): string {
  const section = (title: string, groups: DiffGroup[], bytes: number) => {
    const blocks = groups.reduce((sum, g) => sum + g.blocks, 0);
    const head = `${title}: ${counted(blocks, 'block')}, ${formatIec(bytes)}`;
    if (groups.length === 0) return head;
    const rows = groups.map((g) => [g.tenant || '-', g.lease_id || '-', g.label || '-', g.blocks, formatIec(g.bytes), g.purposes.join(', '), g.owners.join(' ') || '-']);
    return `${head}\n${renderTable(['TENANT', 'LEASE', 'LABEL', 'BLOCKS', 'BYTES', 'POOL/PURPOSE', 'ARRAYS/WORKSPACES'], rows)}`;
  };
  return [`snapshot diff ${diff.from} → ${diff.to}`, '', section('appeared', diff.appeared, diff.appeared_bytes), '', section('disappeared', diff.disappeared, diff.disappeared_bytes)].join('\n');
}
