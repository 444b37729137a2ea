/**
 * The bytes of ReadArray chunk rings each tenant may hold at once. A ReadArray stream keeps its ring
 * (up to 3 × --chunk-bytes) and the message grpc-js serialized from it in the daemon for as long as
 * its client does not read, and nothing else bounds how many streams a tenant opens: one tenant's
 * stalled readers of one array within its quota (40 streams over 16 MiB held 640 MiB) took the
 * resident set to --maxphysicalbytes, and every other tenant's allocations were refused. Here a
 * tenant's streams share a budget; one that does not fit waits, holding nothing, until the tenant's
 * earlier streams end (first come, first served; a stream fits whatever its size while the tenant
 * holds none, so that a --chunk-bytes above the budget still reads).
 */

interface Waiter {
  bytes: number;
  grant: () => void;
}

interface TenantRings {
  heldBytes: number;
  waiting: Waiter[];
}

export class ReadBudget {
  private readonly tenants = new Map<string, TenantRings>();

  constructor(readonly limitBytes: number) {}

  /**
   * Takes `bytes` of `tenant`'s budget: at once when they fit (and no earlier stream waits), else once
   * they do. Resolves to the function that gives them back (call it once the stream is done), or to
   * undefined when `cancelled` fired first (nothing is then held).
   */
  acquire(tenant: string, bytes: number, cancelled: (listener: () => void) => void): Promise<(() => void) | undefined> {
    let rings = this.tenants.get(tenant);
    if (!rings) this.tenants.set(tenant, (rings = { heldBytes: 0, waiting: [] }));
    const held = rings;
    if (held.waiting.length === 0 && this.fits(held, bytes)) {
      held.heldBytes += bytes;
      return Promise.resolve(this.releaser(tenant, held, bytes));
    }
    return new Promise((resolve) => {
      const waiter: Waiter = { bytes, grant: () => resolve(this.releaser(tenant, held, bytes)) };
      held.waiting.push(waiter);
      cancelled(() => {
        const index = held.waiting.indexOf(waiter);
        if (index < 0) return;
        held.waiting.splice(index, 1);
        resolve(undefined);
        this.serve(tenant, held);
      });
    });
  }

  /** Bytes `tenant`'s streams hold now (0 for a tenant with none). */
  heldBytes(tenant: string): number {
    return this.tenants.get(tenant)?.heldBytes ?? 0;
  }

  private fits(rings: TenantRings, bytes: number): boolean {
    return rings.heldBytes === 0 || rings.heldBytes + bytes <= this.limitBytes;
  }

  private releaser(tenant: string, rings: TenantRings, bytes: number): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      rings.heldBytes -= bytes;
      this.serve(tenant, rings);
    };
  }

  /** Grants waiting streams in order while they fit; forgets a tenant that holds and awaits nothing. */
  private serve(tenant: string, rings: TenantRings): void {
    while (rings.waiting.length > 0 && this.fits(rings, rings.waiting[0].bytes)) {
      const waiter = rings.waiting.shift()!;
      rings.heldBytes += waiter.bytes;
      waiter.grant();
    }
    if (rings.heldBytes === 0 && rings.waiting.length === 0 && this.tenants.get(tenant) === rings) this.tenants.delete(tenant);
  }
}
