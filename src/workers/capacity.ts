// A host's capacity: its GPUs and CPU slots, leased to jobs. A GPU job gets exactly the GPUs it
// leased and no other job gets them until the lease is released, which the runner does only
// once no process of that job is left. A blocked GPU (a process that is not one of our jobs
// computes on it, see gpu-guard.ts) is not free: it is leased to nobody until the block lifts.
import type { GpuBlock } from '../queues/worker-status.js';
import type { Gpu } from './gpu-discovery.js';
import { fits, type HostCapacity } from './policy/index.js';

export interface Need {
  gpus: number;
}

export interface Lease {
  jobId: string;
  gpus: Gpu[];
  /** True when the job takes a CPU slot (it asked for no GPU). */
  cpu: boolean;
}

export class Capacity {
  private readonly gpuHolder = new Map<number, string>();
  private blocked: ReadonlyMap<number, GpuBlock> = new Map();
  private cpuUsed = 0;

  constructor(
    readonly gpus: readonly Gpu[],
    readonly cpuSlots: number,
  ) {}

  freeGpus(): number {
    return this.available().length;
  }

  /** The GPUs (by index) not to lease, and why; replaces the previous blocks. */
  block(blocks: ReadonlyMap<number, GpuBlock>): void {
    this.blocked = new Map(blocks);
  }

  private available(): Gpu[] {
    return this.gpus.filter((g) => !this.gpuHolder.has(g.index) && !this.blocked.has(g.index));
  }

  freeCpuSlots(): number {
    return this.cpuSlots - this.cpuUsed;
  }

  /** What is free now, as the dispatch policy sees it. */
  state(): HostCapacity {
    return { gpusTotal: this.gpus.length, gpusFree: this.freeGpus(), cpuSlotsTotal: this.cpuSlots, cpuSlotsFree: this.freeCpuSlots() };
  }

  fits(need: Need): boolean {
    return fits(this.state(), need);
  }

  lease(jobId: string, need: Need): Lease | undefined {
    if (!this.fits(need)) return undefined;
    if (need.gpus === 0) {
      this.cpuUsed++;
      return { jobId, gpus: [], cpu: true };
    }
    const chosen = this.available().slice(0, need.gpus);
    for (const g of chosen) this.gpuHolder.set(g.index, jobId);
    return { jobId, gpus: chosen, cpu: false };
  }

  release(lease: Lease): void {
    if (lease.cpu) this.cpuUsed = Math.max(0, this.cpuUsed - 1);
    for (const g of lease.gpus) if (this.gpuHolder.get(g.index) === lease.jobId) this.gpuHolder.delete(g.index);
  }

  /** Each GPU with the job holding it, for heartbeats and health. */
  snapshot(): { gpus: (Gpu & { jobId: string | null; blockedBy?: GpuBlock })[]; cpuSlots: { total: number; used: number } } {
    return {
      gpus: this.gpus.map((g) => {
        const blockedBy = this.blocked.get(g.index);
        return { ...g, jobId: this.gpuHolder.get(g.index) ?? null, ...(blockedBy ? { blockedBy } : {}) };
      }),
      cpuSlots: { total: this.cpuSlots, used: this.cpuUsed },
    };
  }
}

/** CUDA_VISIBLE_DEVICES for a lease: UUIDs when known (stable across reboots), else indices. */
export function cudaDevices(lease: Lease): { CUDA_VISIBLE_DEVICES: string; CUDA_DEVICE_ORDER: string } {
  const ids = lease.gpus.map((g) => g.uuid ?? String(g.index));
  return { CUDA_VISIBLE_DEVICES: ids.join(','), CUDA_DEVICE_ORDER: 'PCI_BUS_ID' };
}
