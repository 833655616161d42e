// The worker of one host: takes a job off a queue only when the host can start it now, runs it
// as a child process on exactly the GPUs (or CPU slot) it leased, and reports back.
//
// How it waits: one BZPOPMIN over the BullMQ "marker" keys of every queue it could start a job
// from right now, plus a wake key of its own that it writes when capacity frees up. No job is
// ever held while waiting for capacity, and nothing polls Redis.
//
// Which queue it takes from, and when it holds GPUs for a starved multi-GPU job, is the dispatch
// policy's decision (./policy/: serving order and the starvation rule, as pure functions). This
// file reads what the policy needs (capacity, the standing reservation, queue heads) and carries
// the decision out.
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { CommandConfig } from '../config/fleet-schema.js';
import type { LoadedFleet } from '../config/load-fleet.js';
import type { QueueSet } from '../queues/queue-set.js';
import type { Registry } from '../registry/index.js';
import type { FencedLock } from '../locks/fenced-lock.js';
import type { Metrics } from '../metrics.js';
import { toError } from '../errors.js';
import type { Logger } from '../logger.js';
import { cancelRequestOf, clearCancelRequest } from '../queues/cancel-requests.js';
import { SERVING_PRIORITY } from '../queues/kinds.js';
import type { JobData } from '../queues/payloads.js';
import type { QueueSpec } from '../queues/placement.js';
import { Capacity, cudaDevices, type Lease } from './capacity.js';
import { runChild } from './child-runner.js';
import type { Consumers } from './consumers.js';
import { markerKey, wakeKey } from '../queues/redis-names.js';
import type { Gpu } from './gpu-discovery.js';
import { publishStatus, withdrawStatus, type WorkerStatus } from '../queues/worker-status.js';
import { JobOutput } from './job-output.js';
import { forgetChild, recordChild, sweepOrphans } from './orphans.js';
import { commandFailure, JobStopped, type JobContext } from './job-context.js';
import { PROCESSORS } from './processors/index.js';
import { outputDirFor } from './processors/result.js';
import type { ProtocolEvent } from './protocol.js';
import { readHeads } from './queue-heads.js';
import {
  afterStart,
  byPriority,
  decide,
  headsToRead,
  serveableQueues,
  type DispatchSnapshot,
  type HostView,
  type QueueState,
} from './policy/index.js';

export interface HostWorkerOptions {
  lockDurationMs: number;
  /** SIGTERM to SIGKILL, when a job's process group must end. */
  killGraceMs: number;
  /** How long running jobs may go on after close() before they are ended and handed back. */
  shutdownGraceMs: number;
  heartbeatMs: number;
  starvationGuardMs: number;
  /** Longest single BZPOPMIN; also bounds how late a delayed job seen by another host starts here. */
  maxBlockMs: number;
}

export const DEFAULT_HOST_WORKER_OPTIONS: HostWorkerOptions = {
  lockDurationMs: 30_000,
  killGraceMs: 10_000,
  shutdownGraceMs: 30_000,
  heartbeatMs: 5_000,
  starvationGuardMs: 30_000,
  maxBlockMs: 5_000,
};

export interface HostWorkerDeps {
  hostId: string;
  gpus: Gpu[];
  gpuSource: 'nvidia-smi' | 'config';
  cpuSlots: number;
  fleet: LoadedFleet;
  /** The queues this host serves: those of its pools. */
  served: QueueSpec[];
  consumers: Consumers;
  registry: Registry;
  locks: FencedLock;
  metrics: Metrics;
  /** For jobs that enqueue follow-up jobs (a checkpoint's validation). */
  queues: QueueSet;
  /** Commands; shared by the process. */
  redis: Redis;
  /** Dedicated to this worker's BZPOPMIN. */
  blocking: Redis;
  prefix: string;
  logger: Logger;
  /** The environment children start from (PATH and the like); job variables are added to it. */
  baseEnv: Record<string, string>;
  dataDir: string;
  version: string;
  options: HostWorkerOptions;
}

type StopReason = 'cancel' | 'shutdown' | 'lock-lost';

interface Running {
  job: Job<JobData>;
  spec: QueueSpec;
  lease: Lease;
  startedAt: number;
  abort: AbortController;
  stopReason?: StopReason;
  output: JobOutput;
  released?: boolean;
}

export class HostWorker {
  readonly instance = randomBytes(4).toString('hex');
  private readonly capacity: Capacity;
  /** The served queues as the policy sees them, in config order; their specs by name. */
  private readonly queues: QueueState[];
  private readonly specs: Map<string, QueueSpec>;
  private readonly running = new Map<string, Running>();
  private readonly finishing = new Set<Promise<void>>();
  private readonly dueAt = new Map<string, number>();
  private readonly wakeKey: string;
  private readonly log: Logger;
  private readonly startedAt = new Date().toISOString();
  private stopping = false;
  private loopDone: Promise<void> | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatSoon: NodeJS.Timeout | undefined;
  private reservedFor: string | undefined;
  private tokenSeq = 0;
  private closing: Promise<void> | undefined;

  constructor(private readonly deps: HostWorkerDeps) {
    this.capacity = new Capacity(deps.gpus, deps.cpuSlots);
    this.queues = deps.served.map((q) => ({ name: q.name, priority: SERVING_PRIORITY[q.kind], gpus: q.gpus }));
    this.specs = new Map(deps.served.map((q) => [q.name, q]));
    this.wakeKey = wakeKey(deps.prefix, deps.hostId, this.instance);
    this.log = deps.logger.child({ component: 'worker', host: deps.hostId });
  }

  get hostId(): string {
    return this.deps.hostId;
  }

  async start(): Promise<void> {
    await sweepOrphans(this.deps.redis, this.deps.prefix, this.deps.hostId, this.log);
    await this.beat();
    this.heartbeatTimer = setInterval(() => void this.beat(), this.deps.options.heartbeatMs);
    this.loopDone = this.loop();
    this.log.info(
      { gpus: this.deps.gpus.map((g) => g.index), cpuSlots: this.deps.cpuSlots, queues: byPriority(this.queues).map((q) => q.name) },
      'host worker started',
    );
  }

  /** Ends a job running here, if it is; true when it was. */
  cancel(jobId: string): boolean {
    const entry = this.running.get(jobId);
    if (!entry) return false;
    this.stop(entry, 'cancel');
    return true;
  }

  status(): WorkerStatus {
    const snap = this.capacity.snapshot();
    return {
      host: this.deps.hostId,
      instance: this.instance,
      pid: process.pid,
      version: this.deps.version,
      startedAt: this.startedAt,
      at: new Date().toISOString(),
      gpuSource: this.deps.gpuSource,
      gpus: snap.gpus.map(({ index, name, memoryMiB, uuid, jobId }) => ({ index, name, memoryMiB, ...(uuid ? { uuid } : {}), jobId })),
      cpuSlots: snap.cpuSlots,
      queues: byPriority(this.queues).map((q) => q.name),
      running: [...this.running.values()].map((r) => ({
        id: r.job.id!,
        queue: r.spec.name,
        kind: r.spec.kind,
        ...(r.spec.model ? { model: r.spec.model } : {}),
        startedAt: new Date(r.startedAt).toISOString(),
        gpus: r.lease.gpus.map((g) => g.index),
        progress: r.output.latestProgress() ?? null,
      })),
      ...(this.reservedFor ? { reservedFor: this.reservedFor } : {}),
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // --- taking jobs -------------------------------------------------------------------------

  private async loop(): Promise<void> {
    let popped: string | undefined;
    while (!this.stopping) {
      try {
        const tried = await this.fill();
        // A marker we consumed for a queue we did not get to try belongs to another host.
        if (popped && !tried.has(popped)) await this.deps.redis.zadd(markerKey(this.deps.prefix, popped), 0, '0');
        if (this.stopping) break;
        popped = await this.waitForWork();
      } catch (err) {
        if (this.stopping) break;
        this.log.error({ err }, 'dispatch loop error; retrying in a second');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Takes and starts jobs while there is capacity and work; returns the queues it tried. */
  private async fill(): Promise<Set<string>> {
    const tried = new Set<string>();
    for (;;) {
      if (this.stopping) return tried;
      const { reservedFor, order } = decide(await this.snapshot());
      this.reserve(reservedFor);
      let started = false;
      for (const { name } of order) {
        tried.add(name);
        const spec = this.specs.get(name)!;
        const token = `${this.instance}:${++this.tokenSeq}`;
        const job = (await this.deps.consumers.get(name).getNextJob(token, { block: false })) as Job<JobData> | undefined;
        if (!job) continue;
        // Nothing else leases between the decision and here: only this loop leases.
        const lease = this.capacity.lease(job.id!, spec)!;
        this.launch(spec, job, token, lease);
        started = true;
        break; // start again from the highest priority
      }
      if (!started) return tried;
    }
  }

  /** Capacity, standing reservation and served queues, without heads: enough to know what to wait on. */
  private view(): HostView {
    return { queues: this.queues, capacity: this.capacity.state(), reservedFor: this.reservedFor };
  }

  /** What the policy decides from: the view, and the heads it needs read from Redis. */
  private async snapshot(): Promise<DispatchSnapshot> {
    const view = this.view();
    const heads = await readHeads(this.deps.redis, this.deps.prefix, headsToRead(view));
    const queues = view.queues.map((q) => (heads.has(q.name) ? { ...q, headAt: heads.get(q.name) } : q));
    return { ...view, queues, now: Date.now(), starvationGuardMs: this.deps.options.starvationGuardMs };
  }

  private reserve(queue: string | undefined): void {
    if (queue !== undefined && queue !== this.reservedFor) this.log.info({ queue }, 'holding GPUs for a job that has waited too long');
    this.reservedFor = queue;
  }

  /** Blocks until a queue we could serve has work, capacity frees, or a delayed job falls due. */
  private async waitForWork(): Promise<string | undefined> {
    const { prefix, blocking } = this.deps;
    const serveable = serveableQueues(this.view());
    const now = Date.now();
    let timeoutMs = this.deps.options.maxBlockMs;
    for (const [queue, at] of this.dueAt) {
      if (at <= now) this.dueAt.delete(queue);
      else timeoutMs = Math.min(timeoutMs, at - now);
    }
    const keys = [...serveable.map((q) => markerKey(prefix, q.name)), this.wakeKey];
    const res = await blocking.bzpopmin(...keys, Math.max(timeoutMs, 10) / 1000);
    if (!res) return undefined;
    const [key, , score] = res;
    const queue = serveable.find((q) => markerKey(prefix, q.name) === key)?.name;
    // A marker's score is when a delayed job falls due (0: a job is ready now).
    if (queue && Number(score) > Date.now()) {
      this.dueAt.set(queue, Math.min(this.dueAt.get(queue) ?? Infinity, Number(score)));
      return undefined;
    }
    return queue;
  }

  private wake(): void {
    this.deps.redis.zadd(this.wakeKey, 0, 'wake').catch((err: unknown) => this.log.warn({ err }, 'wake failed'));
  }

  // --- running jobs ------------------------------------------------------------------------

  private launch(spec: QueueSpec, job: Job<JobData>, token: string, lease: Lease): void {
    const entry: Running = { job, spec, lease, startedAt: Date.now(), abort: new AbortController(), output: new JobOutput(job, this.log) };
    this.running.set(job.id!, entry);
    this.reservedFor = afterStart(this.reservedFor, spec.name);
    const { metrics } = this.deps;
    metrics.jobWait.observe({ kind: spec.kind }, Math.max(0, entry.startedAt - job.timestamp - (job.opts.delay ?? 0)) / 1000);
    for (const g of lease.gpus) metrics.gpuLeased.set({ host: this.deps.hostId, gpu: String(g.index) }, 1);
    this.beatSoon();
    const done = this.execute(entry, token)
      .catch((err: unknown) => this.log.error({ err, jobId: job.id }, 'job bookkeeping failed'))
      .finally(() => {
        this.releaseLease(entry);
        this.running.delete(job.id!);
        this.finishing.delete(done);
        this.beatSoon();
      });
    this.finishing.add(done);
  }

  private releaseLease(entry: Running): void {
    if (entry.released) return;
    entry.released = true;
    this.capacity.release(entry.lease);
    for (const g of entry.lease.gpus) this.deps.metrics.gpuLeased.set({ host: this.deps.hostId, gpu: String(g.index) }, 0);
    this.beatSoon();
    if (!this.stopping) this.wake();
  }

  private stop(entry: Running, reason: StopReason): void {
    entry.stopReason ??= reason;
    entry.abort.abort();
  }

  private async execute(entry: Running, token: string): Promise<void> {
    const { job, spec } = entry;
    const { redis, prefix, options } = this.deps;
    const log = this.log.child({ jobId: job.id, queue: spec.name, kind: spec.kind, ...(spec.model ? { model: spec.model } : {}) });
    const lockTimer = setInterval(() => {
      job.extendLock(token, options.lockDurationMs).then(
        (ok) => {
          if (!ok) {
            log.warn('lost the job lock (another worker took it over); ending the child');
            this.stop(entry, 'lock-lost');
          }
        },
        (err: unknown) => log.warn({ err }, 'could not extend the job lock'),
      );
    }, Math.max(500, Math.floor(options.lockDurationMs / 3)));

    let result: unknown;
    let failure: Error | undefined;
    try {
      // A cancel that arrived between the dequeue and now still wins: the child never starts.
      if (await cancelRequestOf(redis, prefix, job.id!)) this.stop(entry, 'cancel');
      if (entry.abort.signal.aborted) throw new JobStopped('stopped before start');
      const outputDir = outputDirFor(this.deps.fleet, spec, job.id!, this.deps.dataDir);
      await mkdir(outputDir, { recursive: true });
      log.info({ gpus: entry.lease.gpus.map((g) => g.index), attempt: job.attemptsMade + 1 }, 'job started');
      result = await PROCESSORS[spec.kind](this.context(entry, outputDir, log));
    } catch (err) {
      failure = toError(err);
    } finally {
      clearInterval(lockTimer);
      await entry.output.drain();
    }
    await this.settle(entry, token, result, failure, log);
  }

  private context(entry: Running, outputDir: string, log: Logger): JobContext {
    const { job, spec, lease } = entry;
    const { redis, prefix, hostId, options } = this.deps;
    const start = (command: CommandConfig, extraEnv: Record<string, string>, signal: AbortSignal, events: ProtocolEvent[]) =>
      runChild({
        argv: command.command,
        cwd: command.cwd ?? '.',
        env: { ...this.childEnv(job, spec, lease, outputDir), ...extraEnv },
        timeoutMs: command.timeoutSeconds * 1000,
        graceMs: options.killGraceMs,
        signal,
        onSpawn: (pid) => void recordChild(redis, prefix, hostId, job.id!, pid).catch(() => {}),
        onEvent: (event) => {
          if (event.event === 'progress') {
            const { event: _e, ...progress } = event;
            entry.output.progress(progress);
          } else events.push(event);
        },
        onLog: (line, stream) => entry.output.log(stream === 'stderr' ? `[stderr] ${line}` : line),
      }).finally(() => forgetChild(redis, prefix, hostId, job.id!).catch(() => {}));
    return {
      job,
      spec,
      fleet: this.deps.fleet,
      hostId,
      lease,
      outputDir,
      signal: entry.abort.signal,
      log,
      registry: this.deps.registry,
      queues: this.deps.queues,
      redis,
      prefix,
      locks: this.deps.locks,
      metrics: this.deps.metrics,
      run: async (command, extraEnv = {}, also) => {
        const events: ProtocolEvent[] = [];
        const signal = also ? AbortSignal.any([entry.abort.signal, also]) : entry.abort.signal;
        const outcome = await start(command, extraEnv, signal, events);
        if (outcome.aborted) {
          if (entry.abort.signal.aborted) throw new JobStopped('stopped');
          throw also?.reason instanceof Error ? also.reason : new Error(String(also?.reason ?? 'aborted'));
        }
        if (outcome.timedOut || outcome.exitCode !== 0) throw commandFailure('', outcome, command.timeoutSeconds);
        return { events, outcome };
      },
      startService: (command, extraEnv = {}) => {
        const own = new AbortController();
        const onJobAbort = () => own.abort();
        entry.abort.signal.addEventListener('abort', onJobAbort, { once: true });
        const done = start(command, extraEnv, own.signal, []).finally(() =>
          entry.abort.signal.removeEventListener('abort', onJobAbort),
        );
        return {
          done,
          stop: () => {
            own.abort();
            return done;
          },
        };
      },
      releaseCapacity: () => this.releaseLease(entry),
    };
  }

  private async settle(entry: Running, token: string, result: unknown, failure: Error | undefined, log: Logger): Promise<void> {
    const { job, spec } = entry;
    const { redis, prefix, metrics } = this.deps;
    const labels = { kind: spec.kind, model: spec.model ?? '' };
    const outcome = entry.stopReason ?? (failure ? 'failed' : 'completed');
    metrics.jobDuration.observe({ ...labels, outcome }, (Date.now() - entry.startedAt) / 1000);
    if (outcome === 'failed') {
      metrics.jobFailures.inc(labels);
      if (!(failure instanceof UnrecoverableError) && job.attemptsMade + 1 < (job.opts.attempts ?? 1)) metrics.jobRetries.inc(labels);
    }
    switch (entry.stopReason) {
      case 'lock-lost':
        return; // the job belongs to another worker now
      case 'shutdown':
        log.info('handing the job back to its queue');
        await job.moveToWait(token);
        return;
      case 'cancel':
        log.info('job cancelled');
        await job.moveToFailed(new UnrecoverableError('cancelled'), token, false);
        await clearCancelRequest(redis, prefix, job.id!);
        return;
    }
    if (!failure) {
      await job.moveToCompleted(result, token, false);
      log.info({ durationMs: Date.now() - entry.startedAt }, 'job completed');
      return;
    }
    log.warn({ reason: failure.message, attempt: job.attemptsMade + 1 }, 'job failed');
    await job.moveToFailed(failure, token, false);
  }

  private childEnv(job: Job<JobData>, spec: QueueSpec, lease: Lease, outputDir: string): Record<string, string> {
    return {
      ...this.deps.baseEnv,
      // Exactly the leased GPUs, whatever the worker itself inherited; none for CPU jobs.
      ...(lease.gpus.length ? cudaDevices(lease) : { CUDA_VISIBLE_DEVICES: '', CUDA_DEVICE_ORDER: 'PCI_BUS_ID' }),
      CAELUM_JOB_ID: job.id!,
      CAELUM_ATTEMPT: String(job.attemptsMade + 1),
      CAELUM_OUTPUT_DIR: outputDir,
      CAELUM_KIND: spec.kind,
      CAELUM_HOST: this.deps.hostId,
      ...(spec.model ? { CAELUM_MODEL: spec.model } : {}),
      // The payload is data for the program to read, never arguments or flags.
      CAELUM_PAYLOAD: JSON.stringify(job.data.payload),
    };
  }

  // --- heartbeats and shutdown ---------------------------------------------------------------

  private async beat(): Promise<void> {
    try {
      await publishStatus(this.deps.redis, this.deps.prefix, this.status(), this.deps.options.heartbeatMs * 3);
    } catch (err) {
      this.log.warn({ err }, 'heartbeat failed');
    }
  }

  /** A heartbeat shortly after a change, so the API sees a job start or end without waiting. */
  private beatSoon(): void {
    this.heartbeatSoon ??= setTimeout(() => {
      this.heartbeatSoon = undefined;
      void this.beat();
    }, 100);
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    this.wake();
    // With Redis away the wake cannot land; drop the blocking connection instead.
    const stuck = setTimeout(() => this.deps.blocking.disconnect(), 2000);
    await this.loopDone;
    clearTimeout(stuck);
    if (this.running.size > 0) {
      this.log.info({ running: this.running.size, graceMs: this.deps.options.shutdownGraceMs }, 'waiting for running jobs');
      const timer = new Promise((r) => setTimeout(r, this.deps.options.shutdownGraceMs).unref());
      await Promise.race([Promise.all(this.finishing), timer]);
      for (const entry of this.running.values()) this.stop(entry, 'shutdown');
      await Promise.all(this.finishing);
    }
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.heartbeatSoon);
    await withdrawStatus(this.deps.redis, this.deps.prefix, this.deps.hostId, this.instance).catch(() => {});
    await this.deps.redis.del(this.wakeKey).catch(() => {});
  }
}
