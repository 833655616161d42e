// One job on this host, from the moment it is taken off its queue until it is settled: its lease,
// the abort signal that ends its children and why it was stopped, its output to the BullMQ job,
// the job lock it keeps extending, the JobContext its processor gets, and the final move to
// completed, failed or back to waiting, with its metrics. The host worker decides when a job
// starts and owns the capacity; it hears of the lease's release through `onRelease`. A job that
// Redis loses while it runs (a restart without persistence) runs to its end here, since no other
// worker can ever take it; nothing is written back to its queue.
import { UnrecoverableError, type Job } from 'bullmq';
import type { CommandConfig, RunnerConfig } from '../config/fleet-schema.js';
import { mkdirBelow } from '../contained-files.js';
import { toError } from '../errors.js';
import type { Logger } from '../logger.js';
import { cancelRequestOf, clearCancelRequest } from '../queues/cancel-requests.js';
import { jobKey } from '../queues/redis-names.js';
import type { JobData } from '../queues/payloads.js';
import type { QueueSpec } from '../queues/placement.js';
import type { RunningJobStatus } from '../queues/worker-status.js';
import { cudaDevices, type Lease } from './capacity.js';
import { runChild, type RunOutcome } from './child-runner.js';
import type { WarmPool } from './warm-pool.js';
import type { WarmJob } from './warm-process.js';
import type { HostWorkerDeps } from './host-worker.js';
import { commandFailure, JobStopped, type JobContext } from './job-context.js';
import { JobOutput } from './job-output.js';
import { newRunId } from './job-processes.js';
import { forgetChild, recordChild } from './orphans.js';
import { PROCESSORS } from './processors/index.js';
import { outputDirFor, outputRootFor } from './processors/result.js';
import type { ProtocolEvent } from './protocol.js';
import type { RunningFacts } from './dispatch-snapshot.js';
import type { ProgressPoint } from './policy/index.js';
import { percentDone } from '../queues/progress.js';
import { classRank, type PriorityClass } from '../config/priority-class.js';
import { paramsDigest, type DurationBook } from './durations.js';

/**
 * Why a job is ended before its child finished. A hand-back (shutdown, a drain with `now`, a
 * backfilled job overrunning a reservation) returns it to its queue without using an attempt.
 */
export type StopReason = 'cancel' | 'lock-lost' | HandBackReason;
export type HandBackReason = 'shutdown' | 'drain' | 'overrun' | 'preempt';
const HAND_BACK: ReadonlySet<unknown> = new Set<HandBackReason>(['shutdown', 'drain', 'overrun', 'preempt']);

/** What a running job needs of its host worker's dependencies. */
export type RunningJobDeps = Pick<
  HostWorkerDeps,
  'hostId' | 'fleet' | 'registry' | 'locks' | 'metrics' | 'queues' | 'redis' | 'prefix' | 'baseEnv' | 'dataDir' | 'options'
> & {
  durations: DurationBook;
  warm: WarmPool;
  /**
   * For a CPU job being settled: whether its slot may go straight to the next job of its queue,
   * taken in the same round trip as this job's completion (host-worker.ts decides).
   */
  mayChain?(job: RunningJob): Promise<boolean>;
  /** The next job BullMQ handed over with this one's completion, to run in the same slot. */
  adopt?(job: RunningJob, next: unknown[], token: string): void;
};

export class RunningJob {
  readonly startedAt = Date.now();
  readonly output: JobOutput;
  /** The run marks of this job's children that have not ended yet (job-processes.ts). */
  readonly runs = new Set<string>();
  private readonly abort = new AbortController();
  private stopReason: StopReason | undefined;
  /** Set once the job's record is found missing from Redis (a restart without persistence lost it). */
  private goneFromRedis = false;
  private released = false;
  private settled = false;
  /** Its CPU slot went to the next job of its queue: never given back by this job. */
  private handedOver = false;
  private firstProgress: ProgressPoint | undefined;
  private lastProgress: ProgressPoint | undefined;
  private lastCheckpointAt: number | undefined;
  /** When it was last preempted; until the worker has read it, as good as now (see policy/preemption.ts). */
  preemptedAt: number | undefined = Date.now();
  /** A training's priority class: its payload's, else its model's. */
  readonly priorityClass: PriorityClass | undefined;
  private readonly log: Logger;

  constructor(
    private readonly deps: RunningJobDeps,
    readonly job: Job<JobData>,
    readonly spec: QueueSpec,
    readonly lease: Lease,
    private readonly token: string,
    logger: Logger,
    private readonly onRelease: (lease: Lease) => void,
    /** Set when it started as a backfill: it must have ended by then (policy/backfill.ts). */
    readonly backfillDeadlineAt?: number,
  ) {
    this.log = logger.child({ jobId: job.id, queue: spec.name, kind: spec.kind, ...(spec.model ? { model: spec.model } : {}) });
    this.output = new JobOutput(job, this.log);
    this.priorityClass =
      spec.kind === 'training' ? ((job.data.payload as { priorityClass?: PriorityClass }).priorityClass ?? deps.fleet.models[spec.model!]?.priorityClass) : undefined;
    this.leasedGpus(1);
  }

  /** Ends the job's children; the first reason given is the one the job is settled by. */
  stop(reason: StopReason): void {
    this.stopReason ??= reason;
    // The reason reaches the child runner: a hand-back gives the child its stop grace.
    this.abort.abort(this.stopReason);
  }

  /** What the dispatch policy needs to know of it (dispatch-snapshot.ts). */
  facts(): RunningFacts {
    const { job, spec, lease } = this;
    const percent = this.lastProgress?.percent;
    const params = paramsDigest(job.data.payload);
    return {
      id: job.id!,
      queue: spec.name,
      gpus: lease.gpus.length,
      startedAt: this.startedAt,
      timeoutMs: spec.command.timeoutSeconds * 1000,
      ...(params ? { params } : {}),
      ...(percent !== undefined ? { percent } : {}),
      ...(this.firstProgress && this.lastProgress && this.lastProgress.percent > this.firstProgress.percent
        ? { firstProgress: this.firstProgress, lastProgress: this.lastProgress }
        : {}),
      ...(this.backfillDeadlineAt !== undefined ? { backfillDeadlineAt: this.backfillDeadlineAt } : {}),
      ...(this.priorityClass ? { classRank: classRank(this.priorityClass) } : {}),
      ...(this.lastCheckpointAt !== undefined ? { lastCheckpointAt: this.lastCheckpointAt } : {}),
      ...(this.preemptedAt !== undefined ? { preemptedAt: this.preemptedAt } : {}),
      ...(this.stopReason !== undefined ? { stopping: true } : {}),
    };
  }

  /** Keeps the first and the latest percent reported, for the expected end (policy/estimates.ts). */
  private noteProgress(progress: object): void {
    const percent = percentDone(progress);
    if (percent === undefined) return;
    const point = { at: Date.now(), percent };
    this.firstProgress ??= point;
    this.lastProgress = point;
  }

  /** Whether its GPUs or CPU slot are back (its processes are gone) while it is still being settled. */
  get leaseReleased(): boolean {
    return this.released;
  }

  /**
   * Gives the GPUs back once no child of the job is left; later calls do nothing. A CPU slot is
   * kept until the job is settled (`settled`), so that it can pass straight to the next job of
   * its queue without a dispatch pass.
   */
  release(): void {
    if (this.released || (this.lease.cpu && !this.settled)) return;
    this.released = true;
    if (this.handedOver) return;
    this.leasedGpus(0);
    this.onRelease(this.lease);
  }

  private leasedGpus(value: 0 | 1): void {
    for (const g of this.lease.gpus) this.deps.metrics.gpuLeased.set({ host: this.deps.hostId, gpu: String(g.index) }, value);
  }

  status(): RunningJobStatus {
    const { job, spec } = this;
    return {
      id: job.id!,
      queue: spec.name,
      kind: spec.kind,
      ...(spec.model ? { model: spec.model } : {}),
      startedAt: new Date(this.startedAt).toISOString(),
      gpus: this.lease.gpus.map((g) => g.index),
      progress: this.output.latestProgress() ?? null,
    };
  }

  /** Runs the job's processor and settles the job; resolves once the job has left this host. */
  async run(): Promise<void> {
    const { job, spec, log } = this;
    const { redis, prefix, options, metrics } = this.deps;
    metrics.jobWait.observe({ kind: spec.kind }, Math.max(0, this.startedAt - job.timestamp - (job.opts.delay ?? 0)) / 1000);
    const lockTimer = setInterval(() => {
      if (this.goneFromRedis) return;
      job
        .extendLock(this.token, options.lockDurationMs)
        .then(async (ok) => {
          // A job Redis lost is run by no other worker: its child finishes here (see settle).
          if (ok || (await this.jobGoneFromRedis())) return;
          log.warn('lost the job lock (another worker took it over); ending the child');
          this.stop('lock-lost');
        })
        .catch((err: unknown) => log.warn({ err }, 'could not extend the job lock'));
    }, Math.max(500, Math.floor(options.lockDurationMs / 3)));

    let result: unknown;
    let failure: Error | undefined;
    try {
      const outputDir = outputDirFor(this.deps.fleet, spec, job.id!, job.attemptsStarted, this.deps.dataDir);
      const [cancelled] = await Promise.all([
        // A cancel that arrived between the dequeue and now still wins: the child never starts.
        cancelRequestOf(redis, prefix, job.id!),
        // Never through a link an earlier child left in the job's folder.
        mkdirBelow(outputDir, outputRootFor(this.deps.fleet, spec, this.deps.dataDir)),
      ]);
      if (cancelled) this.stop('cancel');
      if (this.abort.signal.aborted) throw new JobStopped('stopped before start');
      log.info({ gpus: this.lease.gpus.map((g) => g.index), attempt: job.attemptsMade + 1 }, 'job started');
      result = await PROCESSORS[spec.kind](this.context(outputDir));
    } catch (err) {
      failure = toError(err);
    } finally {
      clearInterval(lockTimer);
      await this.output.drain();
    }
    try {
      await this.settle(result, failure);
    } finally {
      this.settled = true;
    }
  }

  /** Whether Redis has lost the job's record: asks Redis until it has once answered that it has. */
  private async jobGoneFromRedis(): Promise<boolean> {
    if (this.goneFromRedis) return true;
    if ((await this.deps.redis.exists(jobKey(this.deps.prefix, this.spec.name, this.job.id!))) === 1) return false;
    this.goneFromRedis = true;
    this.output.detach();
    this.log.warn('the job is gone from Redis (restarted without persistence?); its child runs on here, and no outcome is written back to Redis');
    return true;
  }

  private context(outputDir: string): JobContext {
    const { job, spec, lease, log, abort } = this;
    const { redis, prefix, hostId, options } = this.deps;
    const start = (
      command: CommandConfig,
      extraEnv: Record<string, string>,
      signal: AbortSignal,
      events: ProtocolEvent[],
      onEvent?: (e: ProtocolEvent) => void,
      cold = false,
    ) => {
      const io = {
        timeoutMs: command.timeoutSeconds * 1000,
        abortGraceMs: (reason: unknown) => (HAND_BACK.has(reason) && command.stopGraceSeconds !== undefined ? command.stopGraceSeconds * 1000 : undefined),
        signal,
        onEvent: (event: ProtocolEvent) => {
          if (event.event === 'progress') {
            const { event: _e, ...progress } = event;
            this.output.progress(progress);
            this.noteProgress(progress);
          } else events.push(event);
          if (event.event === 'checkpoint') this.lastCheckpointAt = Date.now();
          onEvent?.(event);
        },
        onLog: (line: string, stream: 'stdout' | 'stderr') => this.output.log(stream === 'stderr' ? `[stderr] ${line}` : line),
      };
      const env = { ...this.childEnv(outputDir), ...extraEnv };
      if (command.runner.mode === 'warm' && !cold) return this.runWarm(command, command.runner, env, io);
      const runId = newRunId();
      this.runs.add(runId);
      return runChild({
        argv: command.command,
        cwd: command.cwd ?? '.',
        env,
        runId,
        graceMs: options.killGraceMs,
        onSpawn: (pid) => void recordChild(redis, prefix, hostId, { jobId: job.id!, runId, pgid: pid }).catch(() => {}),
        ...io,
      }).finally(() => {
        this.runs.delete(runId);
        // Not waited for: the run has ended, so an entry left by a crash right now finds nothing to end.
        void forgetChild(redis, prefix, hostId, runId).catch(() => {});
      });
    };
    return {
      job,
      spec,
      fleet: this.deps.fleet,
      hostId,
      lease,
      outputDir,
      signal: abort.signal,
      log,
      registry: this.deps.registry,
      queues: this.deps.queues,
      redis,
      prefix,
      locks: this.deps.locks,
      metrics: this.deps.metrics,
      run: async (command, extraEnv = {}, also, onEvent) => {
        const events: ProtocolEvent[] = [];
        const signal = also ? AbortSignal.any([abort.signal, also]) : abort.signal;
        const outcome = await start(command, extraEnv, signal, events, onEvent);
        if (outcome.aborted) {
          if (abort.signal.aborted) throw new JobStopped('stopped');
          throw also?.reason instanceof Error ? also.reason : new Error(String(also?.reason ?? 'aborted'));
        }
        if (outcome.timedOut || outcome.exitCode !== 0) throw commandFailure('', outcome, command.timeoutSeconds);
        return { events, outcome };
      },
      startService: (command, extraEnv = {}) => {
        const own = new AbortController();
        const onJobAbort = () => own.abort();
        abort.signal.addEventListener('abort', onJobAbort, { once: true });
        // A service runs for the whole job and is stopped by it: always a process of its own.
        const done = start(command, extraEnv, own.signal, [], undefined, true).finally(() => abort.signal.removeEventListener('abort', onJobAbort));
        return {
          done,
          stop: () => {
            own.abort();
            return done;
          },
        };
      },
      releaseCapacity: () => this.release(),
      assertOwned: async () => {
        if ((await job.extendLock(this.token, options.lockDurationMs)) === 1) return;
        log.warn('the job lock is lost (another worker may run the job now); this start registers nothing');
        this.stop('lock-lost');
        throw new JobStopped('the job lock is lost');
      },
      jobGoneFromRedis: () => this.jobGoneFromRedis(),
    };
  }

  /**
   * Runs a command of a warm runner in one of the host's warm processes: the variables that are
   * the same for every job of the slot start the process, the rest travel with the job.
   */
  private async runWarm(
    command: CommandConfig,
    runner: Extract<RunnerConfig, { mode: 'warm' }>,
    env: Record<string, string>,
    io: Omit<WarmJob, 'id' | 'payload' | 'env'>,
  ): Promise<RunOutcome> {
    const { baseEnv, hostId } = this.deps;
    const { CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER } = env;
    const startEnv: Record<string, string> = {
      ...baseEnv,
      ...(CUDA_VISIBLE_DEVICES !== undefined ? { CUDA_VISIBLE_DEVICES } : {}),
      ...(CUDA_DEVICE_ORDER !== undefined ? { CUDA_DEVICE_ORDER } : {}),
      CAELUM_KIND: this.spec.kind,
      CAELUM_HOST: hostId,
    };
    const perJob = Object.fromEntries(Object.entries(env).filter(([k, v]) => startEnv[k] !== v));
    const cwd = command.cwd ?? '.';
    return this.deps.warm.run(
      { argv: command.command, cwd, runner, env: startEnv },
      { id: this.job.id!, payload: this.job.data.payload, env: perJob, ...io },
      (runId) => this.runs.add(runId),
      (runId) => this.runs.delete(runId),
    );
  }

  private childEnv(outputDir: string): Record<string, string> {
    const { job, spec, lease } = this;
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

  private async settle(result: unknown, failure: Error | undefined): Promise<void> {
    const { job, spec, log, token } = this;
    const { redis, prefix, metrics } = this.deps;
    const labels = { kind: spec.kind, model: spec.model ?? '' };
    const outcome = this.stopReason ?? (failure ? 'failed' : 'completed');
    metrics.jobDuration.observe({ ...labels, outcome }, (Date.now() - this.startedAt) / 1000);
    if (spec.kind === 'training') {
      // How this start ended, for the lineage of the checkpoint a later start registers.
      await this.deps.registry.trainingRuns
        .endAttempt(job.id!, job.attemptsStarted, outcome)
        .catch((err: unknown) => log.warn({ err }, 'could not record how the attempt ended'));
    }
    if (outcome === 'failed') {
      metrics.jobFailures.inc(labels);
      if (!(failure instanceof UnrecoverableError) && job.attemptsMade + 1 < (job.opts.attempts ?? 1)) metrics.jobRetries.inc(labels);
      else metrics.jobFailedForGood.inc(labels);
    }
    if (this.goneFromRedis) {
      // Nothing to move: BullMQ has no record of the job. The log and any checkpoint's lineage
      // are all that say how it ended.
      log.warn({ outcome, reason: failure?.message }, 'job ended after Redis lost it; nothing written back to its queue');
      return;
    }
    switch (this.stopReason) {
      case 'lock-lost':
        return; // the job belongs to another worker now
      case 'shutdown':
      case 'drain':
      case 'overrun':
      case 'preempt':
        log.info({ reason: this.stopReason }, 'handing the job back to its queue');
        await job.moveToWait(token);
        return;
      case 'cancel':
        log.info('job cancelled');
        await job.moveToFailed(new UnrecoverableError('cancelled'), token, false);
        await clearCancelRequest(redis, prefix, job.id!);
        return;
    }
    const chain = this.lease.cpu && (await this.deps.mayChain?.(this).catch(() => false)) === true;
    if (!failure) {
      this.takeNext(await job.moveToCompleted(result, token, chain), chain);
      // What backfill learns from: how long a completed GPU job of this queue (and params) ran.
      if (spec.gpus > 0) {
        await this.deps.durations.record(spec.name, paramsDigest(job.data.payload), Date.now() - this.startedAt).catch((err: unknown) => log.warn({ err }, 'could not record the run time'));
      }
      log.info({ durationMs: Date.now() - this.startedAt }, 'job completed');
      return;
    }
    log.warn({ reason: failure.message, attempt: job.attemptsMade + 1 }, 'job failed');
    this.takeNext(await job.moveToFailed(failure, token, chain), chain);
  }

  /** Passes the slot to the job BullMQ handed over with this one's end, if it did. */
  private takeNext(next: unknown, chained: boolean): void {
    if (!chained || !Array.isArray(next) || !next[0]) return;
    this.handedOver = true;
    this.deps.adopt!(this, next, this.token);
  }
}
