// Where nvidia-smi exists, a worker leases a GPU only while no process that is not one of its
// live jobs computes on it: someone's notebook, a job of another scheduler, or a process of a
// dead job that could not be ended. It asks `nvidia-smi --query-compute-apps` every `periodMs`,
// and again before a dispatch pass with a free GPU when the last answer is older than that, so
// the hot path runs nvidia-smi at most once a period. A process is one of our jobs when its
// environment carries the run mark of a child this worker runs now (job-processes.ts). When
// nvidia-smi fails, the last answer stands (and the worker says so): a flaky nvidia-smi neither
// frees a blocked GPU nor stops the host.
import type { Logger } from '../logger.js';
import type { GpuBlock } from '../queues/worker-status.js';
import { computeApps, type Gpu } from './gpu-discovery.js';
import { runMarkOf } from './job-processes.js';
import { PeriodicCheck } from './periodic-check.js';

export const NOT_OUR_JOB = 'a process that is not a job of this worker computes on it';

export interface GpuGuardOptions {
  nvidiaSmi: string;
  gpus: readonly Gpu[];
  periodMs: number;
  /** The run marks of the children this worker runs now. */
  liveRuns(): ReadonlySet<string>;
  /** Called with the blocked GPUs (by index) whenever they change. */
  onChange(blocks: ReadonlyMap<number, GpuBlock>): void;
  log: Logger;
}

export class GpuGuard {
  private blocks = new Map<number, GpuBlock>();
  private readonly check: PeriodicCheck;
  private lastError = '';

  constructor(private readonly opts: GpuGuardOptions) {
    this.check = new PeriodicCheck(opts.periodMs, () => this.read());
  }

  start(): Promise<void> {
    return this.check.start();
  }

  /** Checks again unless the last check is younger than a period. */
  fresh(): Promise<void> {
    return this.check.fresh();
  }

  close(): Promise<void> {
    return this.check.close();
  }

  private async read(): Promise<void> {
    const { gpus, log } = this.opts;
    let apps;
    try {
      apps = await computeApps(this.opts.nvidiaSmi);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (message !== this.lastError) log.warn({ err }, 'nvidia-smi --query-compute-apps failed; keeping the GPUs blocked as they were');
      this.lastError = message;
      return;
    }
    this.lastError = '';
    const live = this.opts.liveRuns();
    const blocks = new Map<number, GpuBlock>();
    for (const app of apps) {
      const gpu = gpus.find((g) => g.uuid === app.gpuUuid);
      if (!gpu || blocks.has(gpu.index)) continue;
      const mark = await runMarkOf(app.pid);
      if (mark !== undefined && live.has(mark)) continue;
      blocks.set(gpu.index, { pid: app.pid, processName: app.processName, reason: NOT_OUR_JOB });
    }
    if (this.check.closed || sameBlocks(blocks, this.blocks)) return;
    for (const [index, block] of blocks) if (!this.blocks.has(index)) log.warn({ gpu: index, ...block }, 'not leasing a GPU: a process that is not one of our jobs computes on it');
    for (const index of this.blocks.keys()) if (!blocks.has(index)) log.info({ gpu: index }, 'GPU free of foreign processes again');
    this.blocks = blocks;
    this.opts.onChange(blocks);
  }
}

function sameBlocks(a: ReadonlyMap<number, GpuBlock>, b: ReadonlyMap<number, GpuBlock>): boolean {
  return a.size === b.size && [...a].every(([index, block]) => b.get(index)?.pid === block.pid);
}
