/** ND4J's per-thread current workspace and its stack of open scopes, one per owner (a lease). */
import { failedPrecondition } from '../errors';
import type { Workspace } from './workspace';

/**
 * Most scopes one owner (a lease) may have open at once. Entering the current workspace again only
 * nests, so nothing else bounded the stack: each EnterWorkspace of one lease added a frame that stayed
 * until the lease ended (50,000 calls: the daemon's heap +10 MiB), outside the tenant's heap share.
 */
export const MAX_SCOPE_DEPTH = 1024;

type ScopeFrameKind = 'enter' | 'reenter' | 'borrow' | 'scopeOut';

export interface ScopeFrame {
  kind: ScopeFrameKind;
  workspace: Workspace;
  /** The current workspace to restore when this frame is left. */
  previous: Workspace | null;
}

/**
 * One owner's scope state (ND4J's per-thread current workspace): the current workspace and the stack
 * of open scopes. A lease's registry shares one among its workspaces.
 */
export class WorkspaceScope {
  /** Where attached allocations go; null = outside every workspace. */
  current: Workspace | null = null;
  /** @internal Open scopes, innermost last. */
  readonly frames: ScopeFrame[] = [];

  /**
   * Whether any open scope (entered, re-entered, borrowed, scoped out of) involves `workspace`, or
   * returns to it when left (it was current, e.g. by setCurrentWorkspace, when the scope opened):
   * destroyed, it would become current again, and every later allocation would be refused.
   */
  holds(workspace: Workspace): boolean {
    return this.frames.some((frame) => frame.workspace === workspace || frame.previous === workspace);
  }

  /** Opens a scope (innermost), or refuses it with FAILED_PRECONDITION when MAX_SCOPE_DEPTH scopes are open already. */
  open(frame: ScopeFrame): void {
    if (this.frames.length >= MAX_SCOPE_DEPTH) {
      throw failedPrecondition(
        `Workspace "${frame.workspace.name}": ${this.frames.length} scopes open in this lease, at most ${MAX_SCOPE_DEPTH} at once (entered, borrowed or scoped out of): leave one first`,
      );
    }
    this.frames.push(frame);
  }

  /**
   * MemoryWorkspaceManager.scopeOutOfWorkspaces(): leaves the current workspace for a block in which
   * nothing is attached; leaving that workspace ends the block and makes it current again. Returns
   * the workspace left, or null (and does nothing) when none was current.
   */
  scopeOutOfWorkspaces(): Workspace | null {
    const workspace = this.current;
    if (workspace === null) return null;
    workspace.tagOutOfScopeUse();
    return workspace;
  }

  /** Drops every frame and the current workspace (the owner is going away). */
  clear(): void {
    this.frames.length = 0;
    this.current = null;
  }
}
