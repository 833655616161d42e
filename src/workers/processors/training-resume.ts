// What makes a training survive its reruns. Every checkpoint the trainer reports is recorded with
// the job as it is reported (attempt, epoch, path, sha256: training_checkpoints), not only when
// the job completes; a rerun of the job, whatever ended the earlier start, gets the newest of them
// whose file is still exactly what was reported as CAELUM_RESUME_FROM (and its epoch as
// CAELUM_RESUME_EPOCH). A file that changed or went away since is skipped, with a warning: a
// resume from bytes nobody reported would be a training nobody can reproduce.
import { describeCheckpoint } from '../checkpoint-file.js';
import type { JobContext } from '../job-context.js';
import type { ProtocolEvent } from '../protocol.js';
import type { ReportedCheckpoint } from '../../registry/training-runs.js';

/** The newest reported checkpoint of this job whose file still matches its digest; undefined: start afresh. */
export async function resumePoint(ctx: JobContext): Promise<ReportedCheckpoint | undefined> {
  const model = ctx.fleet.models[ctx.spec.model!]!;
  for (const reported of await ctx.registry.trainingRuns.checkpoints(ctx.job.id!)) {
    try {
      const file = await describeCheckpoint(reported.path, '/', [model.checkpointDir]);
      if (file.sha256 === reported.sha256 && file.sizeBytes === reported.sizeBytes) return reported;
      ctx.log.warn({ path: reported.path, attempt: reported.attempt }, 'a reported checkpoint changed since it was reported; not resuming from it');
    } catch (err) {
      ctx.log.warn({ err, path: reported.path, attempt: reported.attempt }, 'a reported checkpoint cannot be read any more; not resuming from it');
    }
  }
  return undefined;
}

/** The variables that tell the trainer where to resume. */
export function resumeEnv(from: ReportedCheckpoint | undefined): Record<string, string> {
  if (!from) return {};
  return { CAELUM_RESUME_FROM: from.path, ...(from.epoch !== null ? { CAELUM_RESUME_EPOCH: String(from.epoch) } : {}) };
}

/**
 * Records each checkpoint event as it arrives (hashed by the worker, like at registration);
 * `settled()` resolves once every record is written. A checkpoint that cannot be recorded is
 * logged and left out: the job's registration checks every reported file again and fails on it.
 */
export function checkpointRecorder(ctx: JobContext, attempt: number) {
  const model = ctx.fleet.models[ctx.spec.model!]!;
  const cwd = ctx.spec.command.cwd ?? '.';
  let chain = Promise.resolve();
  const record = async (e: Extract<ProtocolEvent, { event: 'checkpoint' }>) => {
    try {
      const file = await describeCheckpoint(e.path, cwd, [ctx.outputDir, model.checkpointDir]);
      const epoch = typeof e.epoch === 'number' && Number.isInteger(e.epoch) && e.epoch >= 0 ? e.epoch : null;
      await ctx.registry.trainingRuns.recordCheckpoint({ jobId: ctx.job.id!, attempt, epoch, ...file });
    } catch (err) {
      ctx.log.warn({ err, path: e.path }, 'could not record a reported checkpoint; a rerun cannot resume from it');
    }
  };
  return {
    onEvent(event: ProtocolEvent): void {
      if (event.event === 'checkpoint') chain = chain.then(() => record(event));
    },
    settled: () => chain,
  };
}
