// Notifications: webhooks told when something goes wrong (a job failed for good, a fire missed
// or failed, stale market data, a worker gone, a GPU failing its health check) and when a
// checkpoint changes status (validated, rejected, promoted, rolled back).
//   sources/     read each kind of event from the service's durable records
//   watch.ts     reads the sources every period from a shared cursor and enqueues what they find
//   outbox.ts    one delivery job per (target, event id) in the `notifications` queue: once each
//   delivery.ts  the BullMQ Worker that POSTs a delivery, signed, retried with backoff
//   signature.ts the HMAC signature and how a receiver verifies it
//   events.ts    the event shape and its idempotency key
// Events are read from records rather than sent by the code that changes them, so that no crash
// between a change and its notification can lose it, and so that every notifier (one per
// scheduler process) derives the same ids for the same happenings.
import type { Redis } from 'ioredis';
import type { LoadedFleet } from '../config/load-fleet.js';
import { Closers } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { QueueSet } from '../queues/queue-set.js';
import type { Registry } from '../registry/index.js';
import { DeliveryWorker } from './delivery.js';
import { NotificationOutbox } from './outbox.js';
import { checkpointChanges } from './sources/checkpoint-changes.js';
import { jobFailures } from './sources/job-failures.js';
import { scheduleFires } from './sources/schedule-fires.js';
import type { NotificationSource } from './sources/source.js';
import { staleData } from './sources/stale-data.js';
import { workerHealth } from './sources/workers.js';
import { NotificationWatch } from './watch.js';

export const SOURCES: readonly NotificationSource[] = [jobFailures, checkpointChanges, scheduleFires, staleData, workerHealth];

export interface NotifierDeps {
  fleet: LoadedFleet;
  queues: QueueSet;
  registry: Pick<Registry, 'checkpoints' | 'schedules' | 'marketData'>;
  /** The producer connection: enqueueing and cursors fail fast while Redis is away, and the next pass tries again. */
  redis: Redis;
  /** A waiting connection for the delivery worker (BullMQ blocks on it). */
  workerConnection: Redis;
  prefix: string;
  secrets: ReadonlyMap<string, string>;
  metrics: Pick<Metrics, 'notifications'>;
  logger: Logger;
  version: string;
  now?: () => number;
}

export class Notifier {
  readonly outbox: NotificationOutbox;
  readonly watch: NotificationWatch;
  private readonly closers: Closers;
  private closing: Promise<void> | undefined;

  private constructor(deps: NotifierDeps) {
    const config = deps.fleet.notifications;
    this.closers = new Closers(deps.logger);
    this.outbox = new NotificationOutbox(config, deps.redis, deps.prefix, deps.logger);
    this.closers.add('notification outbox', () => this.outbox.close());
    const delivery = new DeliveryWorker({ config, secrets: deps.secrets, connection: deps.workerConnection, prefix: deps.prefix, metrics: deps.metrics, logger: deps.logger, version: deps.version });
    this.closers.add('notification delivery', () => delivery.close());
    this.watch = new NotificationWatch({
      sources: SOURCES,
      context: { fleet: deps.fleet, queues: deps.queues, redis: deps.redis, prefix: deps.prefix, registry: deps.registry },
      publish: (events) => this.outbox.publish(events),
      periodMs: config.checkEverySeconds * 1000,
      logger: deps.logger,
      ...(deps.now ? { now: deps.now } : {}),
    });
    this.closers.add('notification watch', () => this.watch.close());
  }

  /** Starts delivering and watching; a fleet without targets needs no notifier. */
  static start(deps: NotifierDeps): Notifier {
    const notifier = new Notifier(deps);
    notifier.watch.start();
    deps.logger.info({ component: 'notifications', targets: Object.keys(deps.fleet.notifications.targets) }, 'notifications started');
    return notifier;
  }

  close(): Promise<void> {
    this.closing ??= this.closers.close();
    return this.closing;
  }
}
