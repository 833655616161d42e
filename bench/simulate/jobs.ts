// The jobs of a simulated workload: what is planned (queue, arrival, true run time) and what
// happened to each.

/** A job of a workload: it arrives in `queue` at `arriveAt` and, once started, runs `durationMs`. */
export interface PlannedJob {
  id: string;
  queue: string;
  arriveAt: number;
  durationMs: number;
  /** Progress reports over its run, one after each epoch (0: it reports none). */
  epochs: number;
}

export interface SimJob extends PlannedJob {
  gpus: number;
  pool: string;
  /** Where and when the run that completed started, and when it ended. */
  host?: string;
  startAt?: number;
  endAt?: number;
  /** Times it was handed back (a backfill that overran its deadline). */
  handBacks: number;
  /** Its priority class as a rank; the workloads set none (no preemption), a replayed trace may. */
  classRank?: number;
}

/** A queue's waiting jobs, next first; a handed-back job goes back in front (BullMQ's moveToWait). */
export class WaitList {
  private items: SimJob[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  peek(): SimJob | undefined {
    return this.items[this.head];
  }

  push(job: SimJob): void {
    this.items.push(job);
  }

  pushFront(job: SimJob): void {
    if (this.head > 0) this.items[--this.head] = job;
    else this.items.unshift(job);
  }

  shift(): SimJob | undefined {
    const job = this.items[this.head];
    if (job === undefined) return undefined;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return job;
  }
}
