// One BullMQ Queue per queue of the fleet, sharing the caller's connection. Used by every
// producer (API, CLI, scheduler) and by Bull Board.
import { FlowProducer, Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { LoadedFleet } from '../config/load-fleet.js';
import { UnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { JobKind } from './kinds.js';
import { queueSpecs, type QueueSpec } from './placement.js';

const DAY = 24 * 3600;

/**
 * Bounded retention so Redis does not grow without end: finished jobs stay long enough to be
 * read through the API and Bull Board, then BullMQ trims them.
 */
export function defaultJobOptions(spec: QueueSpec): JobsOptions {
  return {
    attempts: spec.command.attempts,
    backoff: { type: 'exponential', delay: spec.command.backoffSeconds * 1000 },
    // A chatty child must not fill Redis: the job keeps its last 500 log lines.
    keepLogs: 500,
    removeOnComplete: { age: 7 * DAY, count: 2_000 },
    removeOnFail: { age: 30 * DAY, count: 5_000 },
  };
}

export interface QueueEntry {
  spec: QueueSpec;
  queue: Queue;
}

export class QueueSet {
  private readonly entries = new Map<string, QueueEntry>();
  private closing: Promise<void> | undefined;
  /** For jobs that wait on others (training on fresh data). */
  readonly flows: FlowProducer;

  constructor(
    fleet: LoadedFleet,
    readonly connection: Redis,
    readonly prefix: string,
    logger: Logger,
  ) {
    for (const spec of queueSpecs(fleet)) {
      const queue = new Queue(spec.name, { connection, prefix, defaultJobOptions: defaultJobOptions(spec) });
      queue.on('error', (err) => logger.warn({ err, queue: spec.name }, 'queue error'));
      this.entries.set(spec.name, { spec, queue });
    }
    this.flows = new FlowProducer({ connection, prefix });
    this.flows.on('error', (err) => logger.warn({ err }, 'flow producer error'));
  }

  /** Fails fast with 503 material when Redis is away, instead of queueing commands offline. */
  assertReachable(): void {
    if (this.connection.status !== 'ready') throw new UnavailableError('redis', 'Redis is unreachable');
  }

  get(name: string): QueueEntry | undefined {
    return this.entries.get(name);
  }

  all(): QueueEntry[] {
    return [...this.entries.values()];
  }

  ofKind(kind: JobKind): QueueEntry[] {
    return this.all().filter((e) => e.spec.kind === kind);
  }

  close(): Promise<void> {
    this.closing ??= Promise.all([...this.all().map((e) => e.queue.close()), this.flows.close()]).then(() => undefined);
    return this.closing;
  }
}
