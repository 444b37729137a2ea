/**
 * WorkspaceRegistry: one owner's workspaces (a lease plays ND4J's thread), ND4J's per-thread
 * BasicWorkspaceManager: create, look up by name or id, list, destroy; the current workspace and the
 * scope stack (enter, leave, borrow, scope out) shared by all of the owner's workspaces.
 *
 * Decided differently from ND4J: creating an existing name with a different configuration is
 * ALREADY_EXISTS (ND4J's getWorkspaceForCurrentThread ignored the new configuration); the same name
 * with the same (or no) configuration returns the existing workspace. A workspace an open scope
 * involves is not destroyed (FAILED_PRECONDITION); destroyAll (the owner goes away) destroys all.
 */
import { randomBytes } from 'node:crypto';
import { TensormemError, invalidArgument, notFound } from '../errors';
import { DEFAULT_WORKSPACE_CONFIG, normalizeWorkspaceConfig, sameWorkspaceConfig } from './workspace-config';
import type { WorkspaceConfig, WorkspaceConfigInput } from './workspace-config';
import { Workspace } from './workspace';
import { WorkspaceScope } from './workspace-scope';
import type { WorkspaceAllocation } from './workspace';
import type { WorkspaceBacking } from './workspace-backing';

export interface WorkspaceRegistryOptions {
  backing: WorkspaceBacking;
  /** Ids for new workspaces; default `ws-` and 24 random hex digits. */
  newWorkspaceId?: () => string;
  /** The configuration of workspaces created without one (ND4J's default: the builder defaults). */
  defaultConfig?: WorkspaceConfigInput;
  /** Devices there are: a config.device past them is refused at creation, whenever the workspace would take its first buffer. */
  deviceCount?: number;
  /** Asked with the new workspace's name before it takes memory, once its name and configuration passed (WorkspaceOptions.beforeCreate): may refuse (the daemon's heap, HeapGuard). */
  beforeCreate?: (name: string) => void;
  /** Told of each workspace registered (+1) and forgotten (-1), with its name (the daemon's heap share of its tenant). */
  onCount?: (delta: number, name: string) => void;
}

/** Longest workspace name accepted. */
export const MAX_WORKSPACE_NAME_LENGTH = 256;

export class WorkspaceRegistry {
  readonly scope = new WorkspaceScope();
  private readonly backing: WorkspaceBacking;
  private readonly newWorkspaceId: () => string;
  private defaultConfig: WorkspaceConfig;
  private readonly deviceCount?: number;
  private readonly byId = new Map<string, Workspace>();
  private readonly byName = new Map<string, Workspace>();
  private readonly beforeCreate: ((name: string) => void) | undefined;
  private readonly onCount: ((delta: number, name: string) => void) | undefined;

  constructor(options: WorkspaceRegistryOptions) {
    this.backing = options.backing;
    this.newWorkspaceId = options.newWorkspaceId ?? (() => `ws-${randomBytes(12).toString('hex')}`);
    this.defaultConfig = options.defaultConfig === undefined ? DEFAULT_WORKSPACE_CONFIG : normalizeWorkspaceConfig(options.defaultConfig);
    this.deviceCount = options.deviceCount;
    this.beforeCreate = options.beforeCreate;
    this.onCount = options.onCount;
  }

  /** setDefaultWorkspaceConfiguration: for later creations without a configuration. */
  setDefaultConfig(config: WorkspaceConfigInput): void {
    this.defaultConfig = normalizeWorkspaceConfig(config);
  }

  /**
   * getWorkspaceForCurrentThread(config, name): the workspace named `name`, created with `config`
   * (or the default configuration) when there is none. An existing workspace is returned when
   * `config` is absent or the same after validation; a different one is ALREADY_EXISTS.
   * The backing's refusal (of the initial buffer) propagates and nothing is registered.
   */
  create(name: string, config?: WorkspaceConfigInput): Workspace {
    checkName(name);
    const existing = this.byName.get(name);
    if (existing !== undefined) {
      if (config !== undefined) {
        const requested = normalizeWorkspaceConfig(config);
        if (!sameWorkspaceConfig(existing.config, requested)) throw alreadyExists(existing, requested);
      }
      return existing;
    }
    const normalized = config === undefined ? this.defaultConfig : normalizeWorkspaceConfig(config);
    if (this.deviceCount !== undefined && normalized.device >= this.deviceCount) {
      throw invalidArgument('config.device', `a device index from 0 to ${this.deviceCount - 1}`, normalized.device);
    }
    let workspaceId = this.newWorkspaceId();
    while (this.byId.has(workspaceId)) workspaceId = this.newWorkspaceId();
    const beforeCreate = this.beforeCreate;
    const workspace = new Workspace({ name, workspaceId, config: normalized, backing: this.backing, scope: this.scope, beforeCreate: beforeCreate && (() => beforeCreate(name)) });
    this.byId.set(workspaceId, workspace);
    this.byName.set(name, workspace);
    this.onCount?.(1, name);
    return workspace;
  }

  /** getAndActivateWorkspace(config, name): create (or find) and enter. */
  getAndActivate(name: string, config?: WorkspaceConfigInput): Workspace {
    return this.create(name, config).enter();
  }

  /** The workspace with this id, or NOT_FOUND (WORKSPACE_NOT_FOUND). */
  get(workspaceId: string): Workspace {
    const workspace = this.find(workspaceId);
    if (workspace === undefined) throw notFound('workspace', String(workspaceId));
    return workspace;
  }

  find(workspaceId: string): Workspace | undefined {
    return typeof workspaceId === 'string' ? this.byId.get(workspaceId) : undefined;
  }

  /** The workspace with this name, or NOT_FOUND. */
  getByName(name: string): Workspace {
    const workspace = this.findByName(name);
    if (workspace === undefined) throw notFound('workspace', String(name));
    return workspace;
  }

  findByName(name: string): Workspace | undefined {
    return typeof name === 'string' ? this.byName.get(name) : undefined;
  }

  /** checkIfWorkspaceExists. */
  exists(name: string): boolean {
    return this.byName.has(name);
  }

  /** checkIfWorkspaceExistsAndActive: exists and its scope is open. */
  existsAndActive(name: string): boolean {
    return this.byName.get(name)?.scopeActive === true;
  }

  /** Every workspace, in creation order. */
  list(): Workspace[] {
    return [...this.byId.values()];
  }

  get size(): number {
    return this.byId.size;
  }

  /** Where attached allocations go now; null = outside every workspace. */
  get current(): Workspace | null {
    return this.scope.current;
  }

  /** setCurrentWorkspace: makes `workspace` current without entering it (null: none). */
  setCurrent(workspace: Workspace | null): void {
    if (workspace !== null) this.checkOwned(workspace);
    this.scope.current = workspace;
  }

  enter(workspaceId: string): Workspace {
    return this.get(workspaceId).enter();
  }

  leave(workspaceId: string): Workspace {
    return this.get(workspaceId).leave();
  }

  borrow(workspaceId: string): Workspace {
    return this.get(workspaceId).borrow();
  }

  /** scopeOutOfWorkspaces: returns the workspace whose leave ends the block, or null when none was current. */
  scopeOut(): Workspace | null {
    return this.scope.scopeOutOfWorkspaces();
  }

  /** Names of the workspaces whose scope is open (for ND4J's "All open workspaces" message). */
  openWorkspaceNames(): string[] {
    return this.list()
      .filter((workspace) => workspace.scopeActive)
      .map((workspace) => workspace.name);
  }

  /**
   * Throws FAILED_PRECONDITION / ARRAY_OUT_OF_SCOPE unless an allocation of one of these workspaces
   * may be used; an allocation of a destroyed workspace has lost its memory.
   */
  assertUsable(allocation: WorkspaceAllocation, operation = 'Array access', besides?: WorkspaceAllocation): void {
    const workspace = this.byId.get(allocation.workspaceId);
    if (workspace === undefined) {
      throw new TensormemError('FAILED_PRECONDITION', 'ARRAY_OUT_OF_SCOPE', `${operation}: Array memory was released: its workspace was destroyed`, {
        workspace_id: allocation.workspaceId,
        validity: 'released',
      });
    }
    workspace.assertUsable(allocation, operation, () => this.openWorkspaceNames(), besides);
  }

  /**
   * destroyWorkspace: gives back everything the workspace holds and forgets it. Refused while an open
   * scope (entered, borrowed, scoped out of) involves it; when it is merely current, nothing is.
   */
  destroy(workspaceId: string): void {
    const workspace = this.get(workspaceId);
    if (this.scope.holds(workspace)) {
      throw new TensormemError(
        'FAILED_PRECONDITION',
        'FAILED_PRECONDITION',
        `Workspace "${workspace.name}" has an open scope; leave it before destroying it`,
        { workspace_id: workspace.workspaceId },
      );
    }
    if (this.scope.current === workspace) this.scope.current = null;
    this.forget(workspace);
    workspace.destroy();
  }

  /**
   * destroyAllWorkspacesForCurrentThread: closes every scope and destroys every workspace. Returns the
   * bytes given back to the pools (CloseLease's freed_bytes): MMAP files are not pool memory.
   */
  destroyAll(): number {
    this.scope.clear();
    let freedBytes = 0;
    for (const workspace of this.list()) {
      freedBytes += workspace.poolHeldBytes;
      this.forget(workspace);
      workspace.destroy();
    }
    return freedBytes;
  }

  private forget(workspace: Workspace): void {
    if (!this.byId.delete(workspace.workspaceId)) return;
    this.byName.delete(workspace.name);
    this.onCount?.(-1, workspace.name);
  }

  private checkOwned(workspace: Workspace): void {
    if (this.byId.get(workspace.workspaceId) !== workspace) throw invalidArgument('workspace', 'a workspace of this registry', workspace.name);
  }
}

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_WORKSPACE_NAME_LENGTH) {
    throw invalidArgument('name', `a workspace name of 1 to ${MAX_WORKSPACE_NAME_LENGTH} characters`, typeof name === 'string' && name.length > 40 ? `${name.length} characters` : name);
  }
}

function alreadyExists(existing: Workspace, requested: WorkspaceConfig): TensormemError {
  const differences = (Object.keys(DEFAULT_WORKSPACE_CONFIG) as Array<keyof WorkspaceConfig>)
    .filter((key) => !Object.is(existing.config[key], requested[key]))
    .map((key) => `${snake(key)} ${String(existing.config[key])} (requested ${String(requested[key])})`);
  return new TensormemError(
    'ALREADY_EXISTS',
    'ALREADY_EXISTS',
    `Workspace "${existing.name}" already exists with a different configuration: ${differences.join(', ')}. Use the same configuration, or another name.`,
    { workspace_id: existing.workspaceId, workspace_name: existing.name },
  );
}

function snake(key: string): string {
  return `config.${key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)}`;
}
