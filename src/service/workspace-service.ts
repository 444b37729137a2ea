/** tensormem.v1.WorkspaceService: ND4J workspaces per lease; the policy is in src/memory/workspace*.ts. */
import type { Metadata, Server } from '@grpc/grpc-js';
import type { WorkspaceServiceHandlers } from '../generated/tensormem/v1/WorkspaceService';
import type { WorkspaceInfo as WorkspaceInfoMessage } from '../generated/tensormem/v1/WorkspaceInfo';
import type { WorkspaceConfig__Output } from '../generated/tensormem/v1/WorkspaceConfig';
import type { AcquireCudnnWorkspaceRequest__Output } from '../generated/tensormem/v1/AcquireCudnnWorkspaceRequest';
import { algorithmName } from '../memory/cudnn-convolution';
import type { Lease } from '../leases/lease';
import type { Workspace } from '../memory/workspace';
import type { WorkspaceConfigInput } from '../memory/workspace-config';
import type { AcquireCudnnWorkspaceResponse } from '../generated/tensormem/v1/AcquireCudnnWorkspaceResponse';
import { cudnnLibrary } from '../memory/cudnn-library';
import { type CudnnWorkspacePlan, planCudnnWorkspace } from '../memory/cudnn-workspace';
import { arrayInfo } from './array-service';
import { bearerToken, unary } from './handlers';
import { loadTensormemProto } from './proto';
import { tolerantDeserializers } from './malformed';
import { ServiceContext, refuseWhileDraining } from './service-context';

/** The proto config as the policy layer takes it; an absent message means "the existing one, or ND4J's defaults". */
export function workspaceConfigInput(config: WorkspaceConfig__Output | null | undefined): WorkspaceConfigInput | undefined {
  if (!config) return undefined;
  return {
    initialSize: config.initial_size,
    minSize: config.min_size,
    maxSize: config.max_size,
    overallocationLimit: config.overallocation_limit ?? undefined,
    allocationPolicy: config.allocation_policy,
    learningPolicy: config.learning_policy,
    spillPolicy: config.spill_policy,
    resetPolicy: config.reset_policy,
    mirroringPolicy: config.mirroring_policy,
    locationPolicy: config.location_policy,
    cyclesBeforeInitialization: config.cycles_before_initialization,
    tempFilePath: config.temp_file_path || undefined,
    device: config.device,
  };
}

export function workspaceInfo(workspace: Workspace, lease: Lease): WorkspaceInfoMessage {
  const info = workspace.info();
  const config = workspace.config;
  const failure = workspace.learningFailure;
  return {
    workspace_id: info.workspaceId,
    name: info.name,
    current_size: info.currentSize,
    primary_offset: info.primaryOffset,
    host_offset: info.hostOffset,
    device_offset: info.deviceOffset,
    this_cycle_allocations: info.thisCycleAllocations,
    last_cycle_allocations: info.lastCycleAllocations,
    max_cycle_allocations: info.maxCycleAllocations,
    spilled_size: info.spilledSize,
    pinned_size: info.pinnedSize,
    number_of_external_allocations: info.numberOfExternalAllocations,
    number_of_pinned_allocations: info.numberOfPinnedAllocations,
    cycles_count: info.cyclesCount,
    step_number: info.stepNumber,
    generation_id: info.generationId,
    scope_active: info.scopeActive,
    initial_block_size: info.initialBlockSize,
    config: {
      initial_size: config.initialSize,
      min_size: config.minSize,
      max_size: config.maxSize,
      overallocation_limit: config.overallocationLimit,
      allocation_policy: `ALLOCATION_POLICY_${config.allocationPolicy}`,
      learning_policy: `LEARNING_POLICY_${config.learningPolicy}`,
      spill_policy: `SPILL_POLICY_${config.spillPolicy}`,
      reset_policy: `RESET_POLICY_${config.resetPolicy}`,
      mirroring_policy: `MIRRORING_POLICY_${config.mirroringPolicy}`,
      location_policy: `LOCATION_POLICY_${config.locationPolicy}`,
      cycles_before_initialization: config.cyclesBeforeInitialization,
      temp_file_path: config.tempFilePath ?? '',
      device: config.device,
    },
    held_bytes: workspace.heldBytes,
    current: lease.workspaces.current === workspace,
    learning_failure: failure?.message ?? '',
    learning_failure_reason: failure?.reason ?? '',
  };
}

export class WorkspaceService {
  /**
   * Workspaces whose learning failure has been logged: the warning goes out when a workspace starts
   * failing to grow, not at every LeaveWorkspace while it keeps failing (a client looping Enter/Leave
   * would otherwise write hundreds of warnings a second); repeats are at debug.
   */
  private readonly learningFailureLogged = new WeakSet<Workspace>();

  constructor(private readonly context: ServiceContext) {
    // Opened once, at start, so that GetConfig and the log say what AcquireCudnnWorkspace will use.
    const cudnn = cudnnLibrary(context.config.rawValues['cudnn-library']);
    const unusable = cudnn.unusableReason(context.memory.backendName);
    context.log.info({ event: 'cudnn', cudnn: cudnn.describe, usable: unusable === undefined, reason: unusable }, unusable ? 'cuDNN workspaces sized from request bytes' : `cuDNN ${cudnn.versionText} sizes cuDNN workspaces`);
  }

  /** AcquireCudnnWorkspace: validate, size (cuDNN or the request), then take the lease's grow-only scratch. */
  private async acquireCudnnWorkspace(lease: Lease, request: AcquireCudnnWorkspaceRequest__Output): Promise<AcquireCudnnWorkspaceResponse> {
    const { memory, config } = this.context;
    memory.checkDevice(request.device);
    // Sized in the lease's turn for the device: PREFER_FASTEST's budget counts the scratch that calls
    // before this one made (a call sized on arrival saw a scratch still being zeroed as used, not held).
    let planned: CudnnWorkspacePlan | undefined;
    const { scratch, grew } = await lease.acquireCudnnScratch(request.device, () => {
      planned = planCudnnWorkspace(
        { device: request.device, mode: request.mode, convolution: request.convolution, algorithm: request.algorithm, requestedBytes: request.requested_bytes },
        { library: cudnnLibrary(config.rawValues['cudnn-library']), backendName: memory.backendName, budget: () => lease.scratchBudget(request.device) },
      );
      return planned.bytes;
    });
    const plan = planned!;
    return {
      scratch: scratch ? arrayInfo(scratch) : null,
      device_offset: scratch?.deviceBlock?.offset ?? 0,
      algorithm: plan.algorithm,
      workspace_bytes: plan.bytes,
      fell_back: plan.fellBack,
      reason: plan.reason,
      size_source: plan.sizeSource,
      grew,
      candidates: plan.candidates.map((perf) => ({
        algorithm: plan.convolution ? algorithmName(plan.convolution.direction, perf.algorithm) : String(perf.algorithm),
        workspace_bytes: perf.memoryBytes,
        status: perf.statusName,
        time_ms: perf.timeMs,
        deterministic: perf.deterministic,
      })),
    };
  }

  private lease(metadata: Metadata): Lease {
    return this.context.registry.authenticate(bearerToken(metadata));
  }

  addToServer(server: Server): void {
    const { proto } = loadTensormemProto();
    const { registry, log } = this.context;
    /** A handler that runs `operation` on the caller's workspace `workspace_id` and answers its info. */
    const onWorkspace = (operation: (lease: Lease, workspaceId: string) => Workspace) =>
      unary(log, (call: { metadata: Metadata; request: { workspace_id: string } }) => {
        const lease = this.lease(call.metadata);
        const workspace = operation(lease, call.request.workspace_id);
        lease.retireOutOfScope(workspace);
        return { workspace: workspaceInfo(workspace, lease) };
      });
    const handlers: WorkspaceServiceHandlers = {
      CreateWorkspace: unary(log, (call) => {
        const lease = registry.resolve(this.lease(call.metadata), call.request.lease_id);
        const workspace = lease.workspaces.create(call.request.name, workspaceConfigInput(call.request.config));
        return { workspace: workspaceInfo(workspace, lease) };
      }),
      EnterWorkspace: onWorkspace((lease, id) => lease.workspaces.enter(id)),
      LeaveWorkspace: onWorkspace((lease, id) => {
        const workspace = lease.workspaces.leave(id);
        const failure = workspace.learningFailure;
        if (!failure) {
          this.learningFailureLogged.delete(workspace);
        } else {
          const repeated = this.learningFailureLogged.has(workspace);
          this.learningFailureLogged.add(workspace);
          log[repeated ? 'debug' : 'warn']({ event: 'workspace_learning_failed', leaseId: lease.leaseId, workspaceId: id, error: failure.message, repeated }, 'workspace could not grow to its learned size');
        }
        return workspace;
      }),
      BorrowWorkspace: onWorkspace((lease, id) => lease.workspaces.borrow(id)),
      InitializeWorkspace: onWorkspace((lease, id) => {
        const workspace = lease.workspaces.get(id);
        workspace.initializeWorkspace();
        return workspace;
      }),
      DestroyWorkspace: onWorkspace((lease, id) => {
        const workspace = lease.workspaces.get(id);
        lease.workspaces.destroy(id);
        return workspace;
      }),
      GetWorkspace: onWorkspace((lease, id) => lease.workspaces.get(id)),
      ScopeOut: unary(log, (call) => {
        const lease = registry.resolve(this.lease(call.metadata), call.request.lease_id);
        const left = lease.workspaces.scopeOut();
        return { workspace: left ? workspaceInfo(left, lease) : null };
      }),
      ListWorkspaces: unary(log, (call) => {
        const lease = registry.resolve(this.lease(call.metadata), call.request.lease_id);
        return { workspaces: lease.workspaces.list().map((workspace) => workspaceInfo(workspace, lease)) };
      }),
      AcquireCudnnWorkspace: unary(log, (call) => {
        refuseWhileDraining(this.context);
        return this.acquireCudnnWorkspace(registry.resolve(this.lease(call.metadata), call.request.lease_id), call.request);
      }),
    };
    server.addService(tolerantDeserializers(proto.tensormem.v1.WorkspaceService.service), handlers);
  }
}
