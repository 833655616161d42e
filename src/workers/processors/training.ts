// Training: run the trainer on the leased GPUs (resuming from the newest checkpoint an earlier
// start of the job reported, see training-resume.ts), then register the final checkpoint it
// reported and enqueue its validation. The checkpoints it reported before the final one are resume
// points, recorded as they came: they are not model versions, and are not validated. The job completes only once registration has succeeded: while
// Postgres is away the worker keeps retrying (the GPUs are free meanwhile), so a checkpoint that
// was written is never left unregistered by a job that looks done. Only the start that still
// owns the job registers: each try first extends the job lock with this start's token, so a
// start cut off from Redis past its lock (the job rerun elsewhere meanwhile) registers nothing.
import { enqueue } from '../../queues/enqueue.js';
import { retryTransient } from '../../registry/retry.js';
import { JOB_GONE_FROM_REDIS, type Processor } from '../job-context.js';
import type { PayloadOf } from '../../queues/payloads.js';
import { launchBacktests } from '../../pipelines/research.js';
import { lifecycleFor } from './lifecycle-for.js';
import { buildResult } from './result.js';
import { checkpointRecorder, resumeEnv, resumePoint } from './training-resume.js';

/** How long registration keeps retrying before the job fails (and BullMQ retries it). */
export const REGISTRATION_RETRY_MS = 60 * 60 * 1000;

/**
 * The market data this run trains on: the syncs its flow ran first (if any), and the newest
 * sync of each of its symbols when it starts.
 */
async function dataLineage(ctx: Parameters<Processor>[0]) {
  const modelName = ctx.spec.model!;
  const model = ctx.fleet.models[modelName]!;
  const payload = ctx.job.data.payload as PayloadOf<'training'>;
  const symbols = payload.symbols ?? model.symbols;
  const [children, failed, latest] = await Promise.all([
    ctx.job.getChildrenValues().catch(() => ({})),
    ctx.job.getIgnoredChildrenFailures().catch(() => ({})),
    ctx.registry.marketData.latest(symbols, model.freshData?.timeframe ?? '1d'),
  ]);
  return {
    syncedFirst: Object.entries(children).map(([key, value]) => ({ job: key.split(':').at(-1), ...(value as object) })),
    syncsFailed: Object.entries(failed).map(([key, reason]) => ({ job: key.split(':').at(-1), reason })),
    dataSyncs: latest.map((s) => ({ symbol: s.symbol, timeframe: s.timeframe, fence: s.fence, jobId: s.jobId, syncedAt: s.syncedAt, to: s.to })),
  };
}

export const train: Processor = async (ctx) => {
  const lineage = await retryTransient('reading data lineage', () => dataLineage(ctx), {
    signal: ctx.signal,
    logger: ctx.log,
    maxMs: REGISTRATION_RETRY_MS,
  });
  const attempt = ctx.job.attemptsStarted;
  const from = await retryTransient('finding the checkpoint to resume from', () => resumePoint(ctx), {
    signal: ctx.signal,
    logger: ctx.log,
    maxMs: REGISTRATION_RETRY_MS,
  });
  await retryTransient('recording the attempt', () => ctx.registry.trainingRuns.startAttempt(ctx.job.id!, attempt, ctx.hostId, from), {
    signal: ctx.signal,
    logger: ctx.log,
    maxMs: REGISTRATION_RETRY_MS,
  });
  if (from) {
    ctx.log.info({ path: from.path, epoch: from.epoch, fromAttempt: from.attempt }, 'resuming from the newest reported checkpoint');
    await ctx.job.log(`attempt ${attempt} resumes from ${from.path}${from.epoch !== null ? ` (epoch ${from.epoch})` : ''}, reported by attempt ${from.attempt}`).catch(() => {});
  }
  const recorder = checkpointRecorder(ctx, attempt);
  let run;
  try {
    run = await ctx.run(ctx.spec.command, resumeEnv(from), undefined, (e) => recorder.onEvent(e));
  } finally {
    await recorder.settled();
  }
  const { events, outcome } = run;
  ctx.releaseCapacity();
  const result = await buildResult({
    fleet: ctx.fleet,
    spec: ctx.spec,
    kind: 'training',
    host: ctx.hostId,
    gpus: ctx.lease.gpus.map((g) => g.index),
    outputDir: ctx.outputDir,
    cwd: ctx.spec.command.cwd ?? '.',
    durationMs: outcome.durationMs,
    events,
  });
  const modelName = ctx.spec.model!;
  const model = ctx.fleet.models[modelName]!;
  const lifecycle = lifecycleFor(ctx);
  // Redis may have lost the job while the child ran (a restart without AOF). Nobody else will run
  // it, so its checkpoints are registered all the same, once, and their lineage says so.
  const gone = await ctx.jobGoneFromRedis();
  const registered: { id: number; label: string; created: boolean }[] = [];
  const attempts = await retryTransient('reading the attempts', () => ctx.registry.trainingRuns.attempts(ctx.job.id!), {
    signal: ctx.signal,
    logger: ctx.log,
    maxMs: REGISTRATION_RETRY_MS,
  });
  const final = result.checkpoints.at(-1);
  for (const file of final ? [final] : []) {
    const trainingJobId = ctx.job.id!;
    const { checkpoint, created } = await retryTransient(
      'checkpoint registration',
      async () => {
        // Only while this start owns the job; a job Redis lost has no owner to ask (see above).
        if (!gone) await ctx.assertOwned();
        return lifecycle.register(
          {
            model: modelName,
            versionMajor: model.versionMajor,
            path: file.path,
            sizeBytes: file.sizeBytes,
            sha256: file.sha256,
            metrics: file.metrics,
            trainingJobId,
            trigger: { ...ctx.job.data.trigger, jobId: ctx.job.id },
            lineage: { ...lineage, attempts, ...(gone ? { jobRecord: JOB_GONE_FROM_REDIS } : {}) },
          },
          `worker ${ctx.hostId}`,
        );
      },
      { signal: ctx.signal, logger: ctx.log, maxMs: REGISTRATION_RETRY_MS },
    );
    registered.push({ id: checkpoint.id, label: checkpoint.label, created });
    // Derived id: a rerun of this job never enqueues a second validation of the same checkpoint.
    await enqueue(
      { fleet: ctx.fleet, queues: ctx.queues },
      'deploy-test',
      { model: modelName, checkpoint: checkpoint.id },
      { reason: 'system', by: `training ${ctx.job.id}`, at: new Date().toISOString() },
      { idSuffix: `validate-${checkpoint.id}` },
    );
    ctx.log.info({ checkpoint: checkpoint.id, label: checkpoint.label, created }, 'checkpoint registered');
  }
  // A research pipeline's training: its backtests start now, on the checkpoint just registered.
  const pipeline = ctx.job.data.pipeline;
  if (pipeline?.role === 'training' && registered[0]) {
    await retryTransient(
      'launching the pipeline backtests',
      () => launchBacktests({ fleet: ctx.fleet, queues: ctx.queues, registry: ctx.registry }, pipeline.id, registered[0]!.id, ctx.job.data.trigger),
      { signal: ctx.signal, logger: ctx.log, maxMs: REGISTRATION_RETRY_MS },
    );
  }
  return { ...result, registered };
};
