/**
 * WorkspaceConfig: ND4J 1.0.0-M1's WorkspaceConfiguration (builder defaults, validation) and the
 * arithmetic constants every workspace shares (reference/nd4j-semantics.md §1, §4, §5, §13).
 *
 * Inputs come from the service (proto `WorkspaceConfig`) or from code: every field is optional and an
 * absent field takes ND4J's builder default. Policy values are accepted both as ND4J names (`STRICT`)
 * and as proto enum names (`ALLOCATION_POLICY_STRICT`); `*_UNSPECIFIED` means the default.
 * Bad values are INVALID_ARGUMENT naming the field (`config.initial_size`), with ND4J's text where
 * ND4J has one.
 */
import { TensormemError, invalidArgument } from '../errors';
import { checkMmapPath } from './mmap-files';

export type AllocationPolicy = 'STRICT' | 'OVERALLOCATE';
export type LearningPolicy = 'FIRST_LOOP' | 'OVER_TIME' | 'NONE';
export type SpillPolicy = 'EXTERNAL' | 'REALLOCATE' | 'FAIL';
export type ResetPolicy = 'BLOCK_LEFT' | 'ENDOFBUFFER_REACHED';
export type MirroringPolicy = 'FULL' | 'HOST_ONLY';
export type LocationPolicy = 'RAM' | 'MMAP';

/** What a caller may pass; absent fields take ND4J's defaults. Sizes in bytes. */
export interface WorkspaceConfigInput {
  initialSize?: number;
  minSize?: number;
  /** 0 = unlimited. */
  maxSize?: number;
  overallocationLimit?: number;
  allocationPolicy?: string;
  learningPolicy?: string;
  spillPolicy?: string;
  resetPolicy?: string;
  mirroringPolicy?: string;
  locationPolicy?: string;
  cyclesBeforeInitialization?: number;
  /** MMAP only: the file to map; absent or empty = a temporary file of initialSize bytes. */
  tempFilePath?: string;
  /** Device index of the workspace's device memory. */
  device?: number;
}

/** A validated configuration with every field set. */
export interface WorkspaceConfig {
  readonly initialSize: number;
  readonly minSize: number;
  readonly maxSize: number;
  readonly overallocationLimit: number;
  readonly allocationPolicy: AllocationPolicy;
  readonly learningPolicy: LearningPolicy;
  readonly spillPolicy: SpillPolicy;
  readonly resetPolicy: ResetPolicy;
  readonly mirroringPolicy: MirroringPolicy;
  readonly locationPolicy: LocationPolicy;
  readonly cyclesBeforeInitialization: number;
  readonly tempFilePath: string | undefined;
  readonly device: number;
}

/** ND4J's WorkspaceConfiguration.builder() defaults (and BasicWorkspaceManager's default configuration). */
export const DEFAULT_WORKSPACE_CONFIG: WorkspaceConfig = Object.freeze({
  initialSize: 0,
  minSize: 0,
  maxSize: 0,
  overallocationLimit: 0.3,
  allocationPolicy: 'OVERALLOCATE',
  learningPolicy: 'FIRST_LOOP',
  spillPolicy: 'EXTERNAL',
  resetPolicy: 'BLOCK_LEFT',
  mirroringPolicy: 'FULL',
  locationPolicy: 'RAM',
  cyclesBeforeInitialization: 0,
  tempFilePath: undefined,
  device: 0,
});

/** Every workspace request is rounded up to a multiple of this (M1's Nd4jWorkspace.alignmentBase). */
export const WORKSPACE_ALIGNMENT = 16;
/** The backing buffer of a RAM workspace is currentSize + SAFETY_OFFSET bytes (Nd4jWorkspace.SAFETY_OFFSET). */
export const SAFETY_OFFSET = 1024;
/** MMAP files are written in blocks of this many zero bytes, so their length rounds up to a multiple of it. */
export const MMAP_FILL_BLOCK = 16384;
/** A circular workspace's learned block is the largest cycle times this, then padded (§8). */
export const CIRCULAR_LEARNING_FACTOR = 1.3;

/** ND4J's alignment of a request: round up to 16 bytes (M1, from commit 029b84e2b7). */
export function alignWorkspaceRequest(bytes: number): number {
  const remainder = bytes % WORKSPACE_ALIGNMENT;
  return remainder === 0 ? bytes : bytes + (WORKSPACE_ALIGNMENT - remainder);
}

/** Java's `(long) (size * factor)`: the IEEE double product truncated toward zero. */
export function javaLongOfProduct(size: number, factor: number): number {
  return Math.trunc(size * factor);
}

/** The size of the zero-filled file ND4J's fillFile writes for `length` bytes: whole 16 KiB blocks. */
export function mmapFileBytes(length: number): number {
  return Math.ceil(length / MMAP_FILL_BLOCK) * MMAP_FILL_BLOCK;
}

/** currentSize after construction (Nd4jWorkspace ctor + init(), RAM): initialSize, overallocated once, capped by maxSize. */
export function initialCurrentSize(config: WorkspaceConfig): number {
  let size = config.initialSize;
  if (size > 0 && config.locationPolicy !== 'MMAP') {
    if (config.allocationPolicy === 'OVERALLOCATE' && config.overallocationLimit > 0) size += javaLongOfProduct(size, config.overallocationLimit);
    if (config.maxSize > 0 && size > config.maxSize) size = config.maxSize;
  }
  return size;
}

/** Cycles per step of a circular workspace: (int)(overallocationLimit + 1) with OVERALLOCATE, else 1 (§4). */
export function stepsNumberOf(config: WorkspaceConfig): number {
  return config.resetPolicy === 'ENDOFBUFFER_REACHED' && config.allocationPolicy === 'OVERALLOCATE' ? Math.trunc(config.overallocationLimit + 1) : 1;
}

/** The ND4J message and the field it concerns, as INVALID_ARGUMENT. */
export function configError(field: string, message: string, received?: unknown, fix?: string): TensormemError {
  const detail = received === undefined ? '' : ` (config.${field} = ${typeof received === 'string' ? JSON.stringify(received) : String(received)})`;
  return new TensormemError('INVALID_ARGUMENT', 'INVALID_ARGUMENT', `${message}${detail}${fix === undefined ? '' : `. ${fix}`}`, { field: `config.${field}` });
}

const ENUMS = {
  allocationPolicy: { proto: 'ALLOCATION_POLICY', field: 'allocation_policy', values: ['STRICT', 'OVERALLOCATE'] },
  learningPolicy: { proto: 'LEARNING_POLICY', field: 'learning_policy', values: ['FIRST_LOOP', 'OVER_TIME', 'NONE'] },
  spillPolicy: { proto: 'SPILL_POLICY', field: 'spill_policy', values: ['EXTERNAL', 'REALLOCATE', 'FAIL'] },
  resetPolicy: { proto: 'RESET_POLICY', field: 'reset_policy', values: ['BLOCK_LEFT', 'ENDOFBUFFER_REACHED'] },
  mirroringPolicy: { proto: 'MIRRORING_POLICY', field: 'mirroring_policy', values: ['FULL', 'HOST_ONLY'] },
  locationPolicy: { proto: 'LOCATION_POLICY', field: 'location_policy', values: ['RAM', 'MMAP'] },
} as const;

type EnumKey = keyof typeof ENUMS;

function parseEnum<K extends EnumKey>(key: K, value: unknown): WorkspaceConfig[K] {
  const spec = ENUMS[key];
  if (value === undefined || value === null || value === '' || value === `${spec.proto}_UNSPECIFIED`) return DEFAULT_WORKSPACE_CONFIG[key];
  if (typeof value === 'string') {
    const name = value.startsWith(`${spec.proto}_`) ? value.slice(spec.proto.length + 1) : value;
    if ((spec.values as readonly string[]).includes(name)) return name as WorkspaceConfig[K];
  }
  throw invalidArgument(`config.${spec.field}`, `one of ${spec.values.map((v) => `${spec.proto}_${v}`).join(', ')}`, value);
}

function parseCount(field: string, value: unknown, what: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw invalidArgument(`config.${field}`, `a non-negative safe integer (${what})`, value);
  return value;
}

/**
 * Validates `input` and fills in ND4J's defaults. Checks, each INVALID_ARGUMENT naming the field:
 * sizes and counts are non-negative safe integers; overallocation_limit is a finite number ≥ 0;
 * a circular (ENDOFBUFFER_REACHED) OVERALLOCATE workspace needs overallocation_limit ≥ 1 (ND4J's
 * "For cyclic workspace overallocation should be positive integral value."); MMAP needs learning NONE
 * (ND4J's "Workspace backed by memory-mapped file can't have LearningPolicy defined") and a file path
 * or an initial size (ND4J's "MMAP target file path should be non-null ..."); temp_file_path is only
 * for MMAP; the initial buffer (initial size, overallocated, plus the safety offset) stays below 2^53.
 */
export function normalizeWorkspaceConfig(input: WorkspaceConfigInput = {}): WorkspaceConfig {
  if (typeof input !== 'object' || input === null) throw invalidArgument('config', 'a WorkspaceConfig', input);
  const initialSize = parseCount('initial_size', input.initialSize, 'bytes');
  const minSize = parseCount('min_size', input.minSize, 'bytes');
  const maxSize = parseCount('max_size', input.maxSize, 'bytes');
  const cyclesBeforeInitialization = parseCount('cycles_before_initialization', input.cyclesBeforeInitialization, 'cycles');
  const device = input.device === undefined || input.device === null ? 0 : input.device;
  if (typeof device !== 'number' || !Number.isSafeInteger(device) || device < 0) throw invalidArgument('config.device', 'a non-negative device index', device);

  const requestedOverallocation = input.overallocationLimit === undefined || input.overallocationLimit === null ? DEFAULT_WORKSPACE_CONFIG.overallocationLimit : input.overallocationLimit;
  if (typeof requestedOverallocation !== 'number' || !Number.isFinite(requestedOverallocation) || requestedOverallocation < 0) {
    throw invalidArgument('config.overallocation_limit', 'a finite number ≥ 0 (a fraction of the size, e.g. 0.3)', requestedOverallocation);
  }
  // -0 (a double may carry it) passes the check above; as 0 it compares equal to 0 (sameWorkspaceConfig uses Object.is).
  const overallocationLimit = requestedOverallocation === 0 ? 0 : requestedOverallocation;

  const tempFilePath = input.tempFilePath === undefined || input.tempFilePath === null || input.tempFilePath === '' ? undefined : input.tempFilePath;
  if (tempFilePath !== undefined && typeof tempFilePath !== 'string') throw invalidArgument('config.temp_file_path', 'a file path', tempFilePath);

  const config: WorkspaceConfig = Object.freeze({
    initialSize,
    minSize,
    maxSize,
    overallocationLimit,
    allocationPolicy: parseEnum('allocationPolicy', input.allocationPolicy),
    learningPolicy: parseEnum('learningPolicy', input.learningPolicy),
    spillPolicy: parseEnum('spillPolicy', input.spillPolicy),
    resetPolicy: parseEnum('resetPolicy', input.resetPolicy),
    mirroringPolicy: parseEnum('mirroringPolicy', input.mirroringPolicy),
    locationPolicy: parseEnum('locationPolicy', input.locationPolicy),
    cyclesBeforeInitialization,
    tempFilePath,
    device,
  });

  if (config.resetPolicy === 'ENDOFBUFFER_REACHED' && config.allocationPolicy === 'OVERALLOCATE' && config.overallocationLimit < 1.0) {
    // ND4J's message alone: a circular workspace that leaves both fields unset (allocation_policy
    // OVERALLOCATE and overallocation_limit 0.3 are the defaults) was refused for a value it never gave.
    const unset = input.overallocationLimit === undefined || input.overallocationLimit === null;
    const policy = [undefined, null, '', 'ALLOCATION_POLICY_UNSPECIFIED'].includes(input.allocationPolicy) ? 'the default allocation_policy ALLOCATION_POLICY_OVERALLOCATE' : 'allocation_policy ALLOCATION_POLICY_OVERALLOCATE';
    throw configError(
      'overallocation_limit',
      'For cyclic workspace overallocation should be positive integral value.',
      config.overallocationLimit,
      `${unset ? 'That is the default of an unset overallocation_limit. ' : ''}Fix: allocation_policy ALLOCATION_POLICY_STRICT (a ring of exactly initial_size), or overallocation_limit 1 or more with ${policy}`,
    );
  }
  if (config.locationPolicy === 'MMAP') {
    if (config.learningPolicy !== 'NONE') {
      // The value as the client sent it (the proto's name), or that it was left unset (FIRST_LOOP is the default).
      const unset = [undefined, null, '', 'LEARNING_POLICY_UNSPECIFIED'].includes(input.learningPolicy as string | null | undefined);
      throw configError(
        'learning_policy',
        "Workspace backed by memory-mapped file can't have LearningPolicy defined",
        unset ? undefined : `LEARNING_POLICY_${config.learningPolicy}`,
        `${unset ? 'config.learning_policy is unset, and its default is LEARNING_POLICY_FIRST_LOOP. ' : ''}Fix: learning_policy LEARNING_POLICY_NONE`,
      );
    }
    if (config.tempFilePath !== undefined) checkMmapPath(config.tempFilePath);
    if (config.tempFilePath === undefined && config.initialSize === 0) {
      // ND4J's text names neither proto field nor value: both are unset here, so say so and what to set.
      throw configError(
        'temp_file_path',
        'MMAP target file path should be non-null or workspace initialSize should be >0 for temp file',
        '',
        'config.initial_size is 0 too. Fix: a temp_file_path naming an existing, non-empty file, or initial_size > 0 for a temporary file',
      );
    }
    if (!Number.isSafeInteger(mmapFileBytes(config.initialSize))) throw invalidArgument('config.initial_size', 'a size whose file rounds up below 2^53', config.initialSize);
  } else if (config.tempFilePath !== undefined) {
    throw invalidArgument('config.temp_file_path', 'no path unless location_policy is LOCATION_POLICY_MMAP', config.tempFilePath);
  }
  if (!Number.isSafeInteger(initialCurrentSize(config) + SAFETY_OFFSET)) {
    throw invalidArgument('config.initial_size', 'a size that, overallocated, stays below 2^53 bytes', config.initialSize);
  }
  return config;
}

/** Whether two validated configurations are the same (CreateWorkspace with an existing name). */
export function sameWorkspaceConfig(a: WorkspaceConfig, b: WorkspaceConfig): boolean {
  return (Object.keys(DEFAULT_WORKSPACE_CONFIG) as Array<keyof WorkspaceConfig>).every((key) => Object.is(a[key], b[key]));
}
