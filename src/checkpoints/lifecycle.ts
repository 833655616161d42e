// The checkpoint lifecycle in one place: every status change of a checkpoint goes through here
// (the worker's processors and the API call it, never the registry's writes directly).
//   transitions.ts  the table of allowed steps, and IllegalTransitionError for any other
//   judge.ts        the verdicts: thresholds, the margin against the promoted one, comparisons
//   prune.ts        retention: mark pruned, then delete the file (never through a link)
//   feed-signal.ts  the FinColl feed's wake-up, published here once a validation has committed
// A checkpoint is exactly its file: before it is validated and before every promotion its file
// is hashed again (src/contained-files.ts), and one that no longer matches is rejected saying so.
// The registry keeps the SQL: each write takes the statuses the table lets it start from and
// applies only when the locked row is in one of them. A write that did not apply is either a
// rerun (the step was taken already: the row is returned as it is) or a refusal (thrown).
import type { Redis } from 'ioredis';
import type { LoadedFleet } from '../config/load-fleet.js';
import { fileMismatch } from '../contained-files.js';
import { ConflictError } from '../errors.js';
import type { Logger } from '../logger.js';
import { launchBacktests } from '../pipelines/research.js';
import type { summarise } from '../pipelines/summary.js';
import type { Trigger } from '../queues/payloads.js';
import type { QueueSet } from '../queues/queue-set.js';
import type { Checkpoint, RegisterInput, Written } from '../registry/checkpoints.js';
import type { Registry } from '../registry/index.js';
import { publishFeed } from './feed-signal.js';
import { baselineOf, comparisonAllowsPromotion, judge } from './judge.js';
import { prune } from './prune.js';
import { allowed, IllegalTransitionError, isPast, sourcesOf, type Step } from './transitions.js';

export interface CheckpointLifecycleDeps {
  registry: Registry;
  fleet: LoadedFleet;
  /** For the comparison backtests before a promotion. */
  queues: QueueSet;
  /** For the feed's wake-up, on the channel of this BullMQ prefix. */
  redis: Redis;
  prefix: string;
  logger: Logger;
}

type Summary = ReturnType<typeof summarise>;

/** A promotion refused because the checkpoint's file is no longer what was registered; it is rejected now. */
export class FileChangedError extends ConflictError {
  override name = 'FileChangedError';
}

function settled(w: Written, to: Step, rerun: (c: Checkpoint) => boolean): Checkpoint {
  if (w.changed || rerun(w.checkpoint)) return w.checkpoint;
  throw new IllegalTransitionError(w.checkpoint, to);
}

/** Cheap to make: it holds no connection of its own, so a processor may make one per job. */
export function createCheckpointLifecycle(deps: CheckpointLifecycleDeps) {
  const repo = deps.registry.checkpoints;
  const modelOf = (name: string) => {
    const model = deps.fleet.models[name];
    if (!model) throw new Error(`model ${name} is not in the fleet's configuration`);
    return model;
  };

  /** validated, superseded (or validating) -> rejected, the file's mismatch the reason. */
  const rejectChanged = (c: Checkpoint, mismatch: string, actor: string) =>
    repo.setVerdict(c.id, 'rejected', { from: sourcesOf('rejected'), actor, reason: mismatch, metrics: c.validationMetrics ?? {}, reasons: [mismatch] });

  /** An automatic promotion: a checkpoint whose file changed is left rejected, not thrown about. */
  const promoteUnlessChanged = async (id: number, actor: string, reason: string): Promise<Checkpoint> => {
    try {
      return await lifecycle.promote(id, actor, reason);
    } catch (err) {
      if (!(err instanceof FileChangedError)) throw err;
      deps.logger.warn({ checkpoint: id, reason: err.message }, 'checkpoint not promoted: its file changed');
      return (await repo.get(id))!;
    }
  };

  const lifecycle = {
    /** A checkpoint a training run reported -> registered; idempotent on the training job id. */
    register(input: RegisterInput, actor: string) {
      return repo.register(input, actor);
    },

    /** registered -> validating; a checkpoint past registered is left as it is (a rerun). */
    async startValidation(id: number, actor: string): Promise<Checkpoint> {
      const w = await repo.setValidating(id, { from: sourcesOf('validating'), actor, reason: 'validation started' });
      return settled(w, 'validating', (c) => isPast(c.status, 'registered'));
    },

    /** The verdict on a candidate's metrics, and the promoted checkpoint's it was held against. */
    async judge(candidate: Checkpoint, metrics: Record<string, unknown>) {
      const baseline = baselineOf(candidate.id, await repo.promoted(candidate.model));
      return { ...judge(modelOf(candidate.model), metrics, baseline), baseline };
    },

    /**
     * validating -> validated (with the next feed number, and the feed woken after the commit) or
     * rejected with the reasons. A checkpoint decided already is left as it is (a rerun).
     */
    async decide(id: number, v: { passed: boolean; metrics: Record<string, unknown>; reasons: string[]; actor: string }): Promise<Checkpoint> {
      const to = v.passed ? 'validated' : 'rejected';
      const reason = v.passed ? 'validation passed' : v.reasons.join('; ');
      // Only from validating: the table's later ways to rejected are for a file that changed.
      const w = await repo.setVerdict(id, to, { from: ['validating'], actor: v.actor, reason, metrics: v.metrics, reasons: v.reasons });
      const c = settled(w, to, (x) => isPast(x.status, 'validating'));
      // After the commit: a feed request woken now finds the checkpoint.
      if (c.status === 'validated' && c.feedSeq !== null) await publishFeed(deps.redis, deps.prefix, c.model, c.feedSeq);
      return c;
    },

    /**
     * What follows a verdict: a validated checkpoint is backtested against the promoted one first
     * (compareBeforePromotion; recordComparison takes it on), or promoted at once (autoPromote).
     * Then the model's old checkpoints are pruned.
     */
    async afterVerdict(c: Checkpoint, o: { actor: string; trigger: Trigger }): Promise<Checkpoint> {
      const model = modelOf(c.model);
      let final = c;
      if (c.status === 'validated') {
        const promoted = await repo.promoted(c.model);
        if (model.compareBeforePromotion && promoted && promoted.id !== c.id) {
          const pipelineId = `compare-${c.id}`;
          await deps.registry.pipelines.create({
            id: pipelineId,
            kind: 'comparison',
            model: c.model,
            spec: { model: c.model, primarySymbol: model.compareBeforePromotion.symbols[0], ...model.compareBeforePromotion },
            trainingJobId: c.trainingJobId,
            createdBy: o.actor,
          });
          await launchBacktests(deps, pipelineId, c.id, o.trigger);
        } else if (model.autoPromote) {
          final = await promoteUnlessChanged(c.id, o.actor, 'autoPromote is set for this model');
        }
      }
      await lifecycle.prune(c.model, o.actor);
      return final;
    },

    /** A comparison's summary goes into the lineage; with autoPromote, a validated candidate not worse is promoted. */
    async recordComparison(c: Checkpoint, pipelineId: string, summary: Summary, actor: string): Promise<void> {
      await repo.addLineage(c.id, 'comparison', { pipeline: pipelineId, ...summary });
      if (deps.fleet.models[c.model]?.autoPromote && comparisonAllowsPromotion(summary.overall) && c.status === 'validated') {
        await promoteUnlessChanged(c.id, actor, `autoPromote: ${summary.verdict}`);
      }
    },

    /**
     * Why the checkpoint's file is no longer exactly what was registered (a link, another size or
     * sha256), or undefined; a checkpoint whose file changed is rejected with that reason, when its
     * status allows (not the promoted one: FinColl checks what it loads, see the README).
     */
    async checkFile(c: Checkpoint, actor: string): Promise<string | undefined> {
      const mismatch = await fileMismatch(c.path, [modelOf(c.model).checkpointDir], c);
      if (mismatch && allowed(c.status, 'rejected')) await rejectChanged(c, mismatch, actor);
      return mismatch;
    },

    /**
     * validated or superseded -> promoted; the model's promoted one so far -> superseded. Again: no
     * change. A checkpoint whose file changed is rejected instead (FileChangedError, a conflict).
     */
    async promote(id: number, actor: string, reason: string): Promise<Checkpoint> {
      const c = await repo.get(id);
      if (c && !c.prunedAt && allowed(c.status, 'promoted')) {
        const mismatch = await lifecycle.checkFile(c, actor);
        if (mismatch) throw new FileChangedError(`checkpoint ${id} was not promoted and is rejected: ${mismatch}`);
      }
      const w = await repo.setPromoted(id, { from: sourcesOf('promoted'), actor, reason });
      return settled(w, 'promoted', (x) => x.status === 'promoted');
    },

    /**
     * The promoted checkpoint -> rolled_back; the newest earlier one that may be promoted, and
     * whose file is still what was registered, -> promoted. One whose file changed is rejected on
     * the way.
     */
    async rollback(model: string, actor: string, reason: string): Promise<{ from: Checkpoint; to: Checkpoint }> {
      const dir = modelOf(model).checkpointDir;
      for (;;) {
        const { from, to, refused } = await repo.rollBack(model, { from: sourcesOf('promoted'), actor, reason }, (c) => fileMismatch(c.path, [dir], c));
        if (!from) throw new ConflictError(`model ${model} has no promoted checkpoint to roll back`);
        if (!to) throw new ConflictError(`model ${model} has no earlier validated checkpoint to roll back to`);
        if (!refused) return { from, to };
        await rejectChanged(to, refused, actor);
      }
    },

    /** An instance of FinColl loaded this checkpoint (which keeps it from being pruned). */
    markLoaded(id: number, instance: string, details: unknown, by: string): Promise<void> {
      return repo.recordLoad(id, instance, details, by);
    },

    /** Retention for one model: see prune.ts. */
    prune(modelName: string, actor: string): Promise<number[]> {
      return prune(repo, modelName, modelOf(modelName), actor, deps.logger);
    },
  };
  return lifecycle;
}

export type CheckpointLifecycle = ReturnType<typeof createCheckpointLifecycle>;
