// Every Redis key and channel that more than one part of the service reads or writes, in one
// place: the API, the queues, the workers and the scheduler all import these names from here, so
// none of them has to reach into another's folder to find out where a thing lives.
//
// Keys under `${prefix}:${queue}:…` are BullMQ's own layout (marker, wait list, job hash). We
// read them directly in three places (the worker's BZPOPMIN over markers, the head-job age, and
// whether a queue has work before a slot passes to the next job of another), so
// a BullMQ upgrade that changes them must be checked here.

/** BullMQ's marker sorted set: a member appears when a job is ready (score 0) or falls due. */
export const markerKey = (prefix: string, queue: string) => `${prefix}:${queue}:marker`;
/** BullMQ's wait list; its tail (LINDEX -1) is the next job to be taken. */
export const waitKey = (prefix: string, queue: string) => `${prefix}:${queue}:wait`;
/** BullMQ's sorted set of waiting jobs that carry a priority. */
export const prioritizedKey = (prefix: string, queue: string) => `${prefix}:${queue}:prioritized`;
/** BullMQ's job hash. */
export const jobKey = (prefix: string, queue: string, id: string) => `${prefix}:${queue}:${id}`;

/** A host worker's own wake key, written when its capacity frees so its BZPOPMIN returns. */
export const wakeKey = (prefix: string, host: string, instance: string) => `${prefix}:wake:${host}:${instance}`;

/** Cancel requests: a key per job (seen before a child starts) and a channel (heard while it runs). */
export const cancelKey = (prefix: string, jobId: string) => `${prefix}:cancel:${jobId}`;
export const cancelChannel = (prefix: string) => `${prefix}:cancel-requests`;

/** Operator drains of one host: fields `host` and `gpu:<index>` (src/queues/drains.ts); a channel naming the host on each change. */
export const drainsKey = (prefix: string, host: string) => `${prefix}:drains:${host}`;
export const drainChannel = (prefix: string) => `${prefix}:drain-changes`;

/** Live workers: a set of `host:instance` members, and one expiring status key per member. */
export const workersSetKey = (prefix: string) => `${prefix}:workers`;
export const workerStatusKey = (prefix: string, member: string) => `${prefix}:workers:${member}`;

/** A GPU queue's pool-wide reservation: which host holds GPUs for its head job (queues/reservations.ts). */
export const reservationKey = (prefix: string, queue: string) => `${prefix}:reservation:${queue}`;

/** Set when a job is preempted, for preemptIntervalMs: it is not preempted again meanwhile, and waitingFor says why it waits. */
export const preemptedKey = (prefix: string, jobId: string) => `${prefix}:preempted:${jobId}`;

/** Learned run times of a GPU queue's jobs, newest first; `params` narrows them to one params digest. */
export const durationsKey = (prefix: string, queue: string, params?: string) =>
  params === undefined ? `${prefix}:durations:${queue}` : `${prefix}:durations:${queue}:${params}`;

/** The process groups of running children, per host, for the orphan sweep after a kill -9. */
export const childrenKey = (prefix: string, host: string) => `${prefix}:children:${host}`;

/** What an Idempotency-Key of one token maps to: the job id and the request's digest (queues/idempotency.ts). */
export const idempotencyKey = (prefix: string, digest: string) => `${prefix}:idempotency:${digest}`;
/** Written before each WAIT of a durable enqueue (queues/queue-set.ts). */
export const durabilityProbeKey = (prefix: string) => `${prefix}:durability-probe`;

/** The fenced lock's keys for one lock name (see src/locks/fenced-lock.ts). */
export const lockKeyPrefix = (prefix: string) => `${prefix}:lock:`;

/** The lock name of a market-data sync of one (symbol, timeframe). */
export const SYNC_LOCK_PREFIX = 'data-sync:';
export const syncLockKey = (symbol: string, timeframe: string) => `${SYNC_LOCK_PREFIX}${symbol}:${timeframe}`;

/** Published after a market-data sync commits. */
export const dataUpdatesChannel = (prefix: string) => `${prefix}:data_updates`;
/** Published after a validation commits, to wake FinColl's waiting feed requests. */
export const feedChannel = (prefix: string) => `${prefix}:checkpoint-feed`;

/** BullMQ's failed set of a queue: job ids scored by when they failed for good (finishedOn). */
export const failedKey = (prefix: string, queue: string) => `${prefix}:${queue}:failed`;

/** Workers whose status expired without a goodbye: `host:instance` members scored by when that was noticed. */
export const workersLostKey = (prefix: string) => `${prefix}:workers-lost`;

/** The queue of webhook deliveries (src/notifications/); not a job kind, and no fleet queue has this name. */
export const NOTIFICATIONS_QUEUE = 'notifications';
/** How far a notification source has read (ms since the epoch), shared by every notifier. */
export const notificationCursorKey = (prefix: string, source: string) => `${prefix}:notifications-cursor:${source}`;
