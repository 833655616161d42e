// One BullMQ Queue per queue of the fleet, sharing the caller's connection. Used by every
// producer (API, CLI, scheduler) and by Bull Board.
//
// Durable enqueues (CAELUM_REDIS_MIN_REPLICAS > 0): an enqueue counts only once Redis's WAIT says
// that many replicas have it, so a failover cannot lose a job the caller was told exists. WAIT
// covers the writes of the connection it runs on, and blocks that connection meanwhile, so
// enqueues then go through Queues of a connection of their own, and reads are never held up.
import { FlowProducer, Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { LoadedFleet } from '../config/load-fleet.js';
import { UnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { JobKind } from './kinds.js';
import { queueSpecs, type QueueSpec } from './placement.js';
import { durabilityProbeKey } from './redis-names.js';

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
  /** Reads, actions on jobs, Bull Board. */
  queue: Queue;
  /** Enqueues: the same Queue, or one on the durable-write connection. */
  writer: Queue;
}

export interface Durability {
  /** The connection every enqueue writes on (its own: WAIT blocks it). */
  connection: Redis;
  /** Replicas that must have an enqueue before it is acknowledged. */
  replicas: number;
  /** How long to wait for them before answering 503. */
  timeoutMs: number;
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
    private readonly durability?: Durability,
  ) {
    const open = (name: string, on: Redis, spec: QueueSpec) => {
      const queue = new Queue(name, { connection: on, prefix, defaultJobOptions: defaultJobOptions(spec) });
      queue.on('error', (err) => logger.warn({ err, queue: name }, 'queue error'));
      return queue;
    };
    for (const spec of queueSpecs(fleet)) {
      const queue = open(spec.name, connection, spec);
      this.entries.set(spec.name, { spec, queue, writer: durability ? open(spec.name, durability.connection, spec) : queue });
    }
    this.flows = new FlowProducer({ connection: this.writeConnection, prefix });
    this.flows.on('error', (err) => logger.warn({ err }, 'flow producer error'));
  }

  /** Where enqueues write. */
  get writeConnection(): Redis {
    return this.durability?.connection ?? this.connection;
  }

  /** Fails fast with 503 material when Redis is away, instead of queueing commands offline. */
  assertReachable(): void {
    if (this.connection.status !== 'ready' || this.writeConnection.status !== 'ready') throw new UnavailableError('redis', 'Redis is unreachable');
  }

  /**
   * Resolves once the configured number of replicas have every enqueue written so far on the
   * write connection, or throws UnavailableError (503) naming how many did. A job found already
   * there (an idempotent retry) was written by another connection, perhaps moments ago: the probe
   * written first is later in the one replication stream than that job, so its acknowledgement
   * covers the job too.
   */
  async confirmWritten(): Promise<void> {
    if (!this.durability || this.durability.replicas === 0) return;
    const { connection, replicas, timeoutMs } = this.durability;
    await connection.set(durabilityProbeKey(this.prefix), String(Date.now()), 'PX', 60_000);
    const acknowledged = Number(await connection.call('WAIT', replicas, timeoutMs));
    if (acknowledged < replicas) {
      throw new UnavailableError(
        'redis',
        `the enqueue reached ${acknowledged} of the ${replicas} Redis replica(s) it needs within ${timeoutMs} ms, so it is not acknowledged; retry with the same Idempotency-Key`,
      );
    }
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
    this.closing ??= Promise.all([
      ...this.all().flatMap((e) => (e.writer === e.queue ? [e.queue.close()] : [e.queue.close(), e.writer.close()])),
      this.flows.close(),
    ]).then(() => undefined);
    return this.closing;
  }
}
