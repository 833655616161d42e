// What every notification source is handed, and what it answers: the events it finds in the
// service's durable records (BullMQ's failed sets, Postgres, the worker statuses in Redis) since
// a point in time. A source only reads; the watch enqueues what it returns.
import type { Redis } from 'ioredis';
import type { LoadedFleet } from '../../config/load-fleet.js';
import type { QueueSet } from '../../queues/queue-set.js';
import type { Registry } from '../../registry/index.js';
import type { NotificationEvent } from '../events.js';

export interface SourceContext {
  fleet: LoadedFleet;
  queues: QueueSet;
  redis: Redis;
  prefix: string;
  registry: Pick<Registry, 'checkpoints' | 'schedules' | 'marketData'>;
  /** Whether this process has enqueued the event already: a source may skip reading its details. */
  known(id: string): boolean;
}

export interface NotificationSource {
  name: string;
  /** Events that happened in (sinceMs, nowMs]; a source of conditions (stale data) reports those that hold at nowMs. */
  read(ctx: SourceContext, sinceMs: number, nowMs: number): Promise<NotificationEvent[]>;
}
