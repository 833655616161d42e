// A host's capacity: its GPUs and CPU slots, leased to jobs. A GPU job gets exactly the GPUs it
// leased and no other job gets them until the lease is released, which the runner does only
// once no process of that job is left. A held GPU is not free: it is leased to nobody until
// every hold on it lifts. Holds come from separate sources, each replacing only its own: a
// process that is not one of our jobs computes on it (gpu-guard.ts), an operator drained it, or
// it failed its health check. A drained host also has no free CPU slot.
import type { GpuHolds } from '../queues/worker-status.js';
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
  private readonly holds = new Map<keyof GpuHolds, ReadonlyMap<number, GpuHolds[keyof GpuHolds]>>();
  private cpuUsed = 0;
  private cpuDrained = false;

  constructor(
    readonly gpus: readonly Gpu[],
    readonly cpuSlots: number,
  ) {}

  freeGpus(): number {
    return this.available().length;
  }

  /** The GPUs (by index) one source keeps out of service, and why; replaces that source's previous holds. */
  hold<K extends keyof GpuHolds>(source: K, holds: ReadonlyMap<number, NonNullable<GpuHolds[K]>>): void {
    this.holds.set(source, new Map(holds));
  }

  private held(index: number): boolean {
    return [...this.holds.values()].some((m) => m.has(index));
  }

  private available(): Gpu[] {
    return this.gpus.filter((g) => !this.gpuHolder.has(g.index) && !this.held(g.index));
  }

  /** A drained host starts no CPU job either; its running ones keep their slots. */
  drainCpuSlots(drained: boolean): void {
    this.cpuDrained = drained;
  }

  /** Whether CPU jobs may start at all (the host is not drained). */
  cpuOpen(): boolean {
    return !this.cpuDrained;
  }

  freeCpuSlots(): number {
    return this.cpuDrained ? 0 : this.cpuSlots - this.cpuUsed;
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
  snapshot(): { gpus: (Gpu & { jobId: string | null } & GpuHolds)[]; cpuSlots: { total: number; used: number } } {
    return {
      gpus: this.gpus.map((g) => {
        const holds: Record<string, unknown> = {};
        for (const [source, map] of this.holds) if (map.has(g.index)) holds[source] = map.get(g.index);
        return { ...g, jobId: this.gpuHolder.get(g.index) ?? null, ...holds };
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
