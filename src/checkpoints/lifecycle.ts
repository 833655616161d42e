// The checkpoint lifecycle in one place: every status change of a checkpoint goes through here
// (the worker's processors and the API call it, never the registry's writes directly).
//   transitions.ts  the table of allowed steps, and IllegalTransitionError for any other
//   judge.ts        the verdicts: thresholds, the margin against the promoted one, comparisons
//   prune.ts        retention: mark pruned, then delete the file
//   feed-signal.ts  the FinColl feed's wake-up, published here once a validation has committed
// The registry keeps the SQL: each write takes the statuses the table lets it start from and
// applies only when the locked row is in one of them. A write that did not apply is either a
// rerun (the step was taken already: the row is returned as it is) or a refusal (thrown).
import type { Redis } from 'ioredis';
import type { LoadedFleet } from '../config/load-fleet.js';
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
import { IllegalTransitionError, isPast, sourcesOf, type Step } from './transitions.js';

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
      const w = await repo.setVerdict(id, to, { from: sourcesOf(to), actor: v.actor, reason, metrics: v.metrics, reasons: v.reasons });
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
          final = await lifecycle.promote(c.id, o.actor, 'autoPromote is set for this model');
        }
      }
      await lifecycle.prune(c.model, o.actor);
      return final;
    },

    /** A comparison's summary goes into the lineage; with autoPromote, a validated candidate not worse is promoted. */
    async recordComparison(c: Checkpoint, pipelineId: string, summary: Summary, actor: string): Promise<void> {
      await repo.addLineage(c.id, 'comparison', { pipeline: pipelineId, ...summary });
      if (deps.fleet.models[c.model]?.autoPromote && comparisonAllowsPromotion(summary.overall) && c.status === 'validated') {
        await lifecycle.promote(c.id, actor, `autoPromote: ${summary.verdict}`);
      }
    },

    /** validated or superseded -> promoted; the model's promoted one so far -> superseded. Again: no change. */
    async promote(id: number, actor: string, reason: string): Promise<Checkpoint> {
      const w = await repo.setPromoted(id, { from: sourcesOf('promoted'), actor, reason });
      return settled(w, 'promoted', (c) => c.status === 'promoted');
    },

    /** The promoted checkpoint -> rolled_back; the newest earlier one that may be promoted -> promoted. */
    async rollback(model: string, actor: string, reason: string): Promise<{ from: Checkpoint; to: Checkpoint }> {
      const { from, to } = await repo.rollBack(model, { from: sourcesOf('promoted'), actor, reason });
      if (!from) throw new ConflictError(`model ${model} has no promoted checkpoint to roll back`);
      if (!to) throw new ConflictError(`model ${model} has no earlier validated checkpoint to roll back to`);
      return { from, to };
    },

    /** An instance of FinColl loaded this checkpoint (which keeps it from being pruned). */
    markLoaded(id: number, instance: string, details: unknown): Promise<void> {
      return repo.recordLoad(id, instance, details);
    },

    /** Retention for one model: see prune.ts. */
    prune(modelName: string, actor: string): Promise<number[]> {
      return prune(repo, modelName, modelOf(modelName), actor, deps.logger);
    },
  };
  return lifecycle;
}

export type CheckpointLifecycle = ReturnType<typeof createCheckpointLifecycle>;
