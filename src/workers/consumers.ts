// One BullMQ Worker per queue in manual mode: the host worker decides when to take a job (only
// when it has the capacity to start it) and calls getNextJob itself. BullMQ still provides
// locking, the stalled-job check that hands a dead worker's jobs to another, and completion.
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';

export interface ConsumerOptions {
  lockDurationMs: number;
  stalledIntervalMs: number;
}

export class Consumers {
  private readonly workers = new Map<string, Worker>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly connection: Redis,
    private readonly prefix: string,
    private readonly options: ConsumerOptions,
    private readonly logger: Logger,
  ) {}

  get(queue: string): Worker {
    let worker = this.workers.get(queue);
    if (!worker) {
      worker = new Worker(queue, null, {
        connection: this.connection,
        prefix: this.prefix,
        autorun: false,
        lockDuration: this.options.lockDurationMs,
        stalledInterval: this.options.stalledIntervalMs,
        // Meant to fail a job whose worker died twice, so a job that kills its worker every time
        // cannot take the fleet down one host after another. BullMQ only marks such a job and
        // fails it when its own fetch loop next takes it; the host worker fetches with
        // getNextJob and does not act on the mark yet, so the job runs again (pinned in
        // test/worker-process.test.ts; README "Crashes").
        maxStalledCount: 1,
      });
      worker.on('error', (err) => this.logger.warn({ err, queue }, 'consumer error'));
      void worker.startStalledCheckTimer().catch((err: unknown) => this.logger.warn({ err, queue }, 'stalled check failed to start'));
      this.workers.set(queue, worker);
    }
    return worker;
  }

  close(): Promise<void> {
    this.closing ??= Promise.all([...this.workers.values()].map((w) => w.close(true))).then(() => undefined);
    return this.closing;
  }
}
