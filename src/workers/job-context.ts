// What a processor gets to run one job: the job, where it runs, and helpers that run commands as
// children of the job (its GPUs, its environment, its cancel signal, its progress and log).
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { CommandConfig } from '../config/fleet-schema.js';
import type { LoadedFleet } from '../config/load-fleet.js';
import type { Logger } from '../logger.js';
import type { JobData } from '../queues/payloads.js';
import type { QueueSpec } from '../queues/placement.js';
import type { QueueSet } from '../queues/queue-set.js';
import type { Registry } from '../registry/index.js';
import type { FencedLock } from '../locks/fenced-lock.js';
import type { Metrics } from '../metrics.js';
import type { Lease } from './capacity.js';
import type { RunOutcome } from './child-runner.js';
import type { ProtocolEvent } from './protocol.js';

/** The job was stopped (cancel, shutdown, lost lock); the host worker knows which. */
export class JobStopped extends Error {
  override name = 'JobStopped';
}

export interface CommandRun {
  events: ProtocolEvent[];
  outcome: RunOutcome;
}

export interface ServiceHandle {
  /** Settles when the service's process group is gone. */
  done: Promise<RunOutcome>;
  stop(): Promise<RunOutcome>;
}

export interface JobContext {
  job: Job<JobData>;
  spec: QueueSpec;
  fleet: LoadedFleet;
  hostId: string;
  lease: Lease;
  outputDir: string;
  signal: AbortSignal;
  log: Logger;
  registry: Registry;
  queues: QueueSet;
  redis: Redis;
  prefix: string;
  locks: FencedLock;
  metrics: Metrics;
  /**
   * Whether Redis has lost the job's record (restarted without persistence): then no worker will
   * ever run it again, and nothing can be written back to its queue.
   */
  jobGoneFromRedis(): Promise<boolean>;
  /**
   * Runs a command to its end; throws on a non-zero exit or timeout, JobStopped when the job is
   * stopped, and the abort reason when `also` aborts (a lost lock).
   */
  run(command: CommandConfig, extraEnv?: Record<string, string>, also?: AbortSignal, onEvent?: (event: ProtocolEvent) => void): Promise<CommandRun>;
  /** Starts a long-running command (a candidate service) that the caller stops. */
  startService(command: CommandConfig, extraEnv?: Record<string, string>): ServiceHandle;
  /** Frees the job's GPUs or CPU slot early, once its children are gone (e.g. before registering). */
  releaseCapacity(): void;
  /**
   * Extends the job lock with this start's token, right before a side effect only the job's owner
   * may have (registering a checkpoint): resolves while this start still owns the job; once its
   * lock has expired or another worker holds it, stops the job as lock-lost and throws JobStopped.
   */
  assertOwned(): Promise<void>;
}

export type Processor = (ctx: JobContext) => Promise<unknown>;

/** Added to the lineage of a checkpoint registered for a job Redis had lost. */
export const JOB_GONE_FROM_REDIS = {
  inRedis: false,
  note: 'the job was gone from Redis when this checkpoint was registered (Redis restarted without persistence?); no other worker could run it, and no record of the run is left in its queue',
} as const;

export function commandFailure(what: string, o: RunOutcome, timeoutSeconds: number): Error {
  if (o.timedOut) return new Error(`${what}timed out after ${timeoutSeconds} s`);
  if (o.failure !== undefined) return new Error(`${what}${o.failure}`);
  const how = o.signal ? `killed by ${o.signal}` : `exit code ${o.exitCode}`;
  const tail = o.stderrTail.slice(-10).join('\n');
  return new Error(`${what}${tail ? `${how}: ${tail}` : how}`);
}
