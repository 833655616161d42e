// The research pipeline of the source documents: train a model on a primary symbol, backtest the
// checkpoint it produced on many symbols in parallel (and, when a model has a promoted
// checkpoint, that one on the same symbols and window, for comparison), then summarise.
//
// Shape: the training job carries `pipeline: {id, role: 'training'}`. When it has registered its
// checkpoint, the training processor adds a BullMQ flow: a summary step (a backtest-queue job
// with role 'summary') whose children are the backtests, one per symbol and checkpoint. A
// backtest that fails for good does not stall the pipeline: children are added with
// `ignoreDependencyOnFailure`, so the summary runs on what succeeded and lists what failed. A
// training job that fails for good fails the pipeline. Job ids derive from the pipeline id, so
// a rerun adds nothing twice.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { LoadedFleet } from '../config/load-fleet.js';
import { enqueue } from '../queues/enqueue.js';
import { knownModel, paramsSchema, symbolSchema, TIMEFRAMES, windowSchema, type JobData, type Trigger } from '../queues/payloads.js';
import { newJobId, placeJob } from '../queues/placement.js';
import { defaultJobOptions, type QueueSet } from '../queues/queue-set.js';
import type { Registry } from '../registry/index.js';

export const researchBody = (fleet: LoadedFleet) =>
  z.strictObject({
    model: knownModel(fleet),
    primarySymbol: symbolSchema,
    symbols: z.array(symbolSchema).min(1).max(50),
    timeframe: z.enum(TIMEFRAMES).default('1d'),
    trainWindow: windowSchema.optional(),
    testWindow: windowSchema.optional(),
    params: paramsSchema.default({}),
  });
export type ResearchSpec = z.output<ReturnType<typeof researchBody>>;

export interface PipelineDeps {
  fleet: LoadedFleet;
  queues: QueueSet;
  registry: Registry;
}

const safe = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, '_');

/** The deterministic job ids of a pipeline's steps. */
export function pipelineJobIds(id: string, symbols: string[], withLive: boolean) {
  const backtest = (s: string, live: boolean) => newJobId('backtest', `research-${id}-${live ? 'live-' : ''}${safe(s)}`);
  return {
    training: (queue: string) => newJobId(queue, `research-${id}`),
    summary: newJobId('backtest', `research-${id}-summary`),
    candidates: symbols.map((s) => ({ symbol: s, id: backtest(s, false) })),
    live: withLive ? symbols.map((s) => ({ symbol: s, id: backtest(s, true) })) : [],
  };
}

/**
 * Writes the pipeline to Postgres first and enqueues its training job only after, so a request
 * that fails changes nothing: with Postgres away nothing is enqueued (no GPU trains for a
 * pipeline nobody can follow), and when the enqueue fails the row is taken back. (Not one
 * transaction around both: enqueueing a model with `freshData` reads Postgres, and the embedded
 * pool has a single connection.)
 */
export async function startResearch(deps: PipelineDeps, spec: ResearchSpec, by: string): Promise<{ id: string; trainingJobId: string }> {
  const id = randomUUID();
  const trigger: Trigger = { reason: 'pipeline', by: `${by} (pipeline ${id})`, at: new Date().toISOString() };
  const trainingJobId = pipelineJobIds(id, [], false).training(placeJob(deps.fleet, 'training', spec).name);
  await deps.registry.pipelines.create({ id, model: spec.model, spec, trainingJobId, createdBy: by });
  try {
    await enqueue(
      { fleet: deps.fleet, queues: deps.queues, marketData: deps.registry.marketData },
      'training',
      { model: spec.model, params: spec.params, symbols: [spec.primarySymbol], ...(spec.trainWindow ? { datasetWindow: spec.trainWindow } : {}) },
      trigger,
      { idSuffix: `research-${id}`, pipeline: { id, role: 'training' } },
    );
  } catch (err) {
    await deps.registry.pipelines.discard(id).catch(() => undefined);
    throw err;
  }
  return { id, trainingJobId };
}

/** Called by the training processor once the pipeline's checkpoint is registered. */
export async function launchBacktests(deps: PipelineDeps, pipelineId: string, checkpointId: number, trigger: Trigger): Promise<string | undefined> {
  const pipeline = await deps.registry.pipelines.get(pipelineId);
  if (!pipeline || pipeline.summaryJobId) return pipeline?.summaryJobId ?? undefined; // already launched (a rerun)
  const spec = pipeline.spec as ResearchSpec;
  const promoted = await deps.registry.checkpoints.promoted(spec.model);
  const live = promoted && promoted.id !== checkpointId ? promoted : undefined;
  const ids = pipelineJobIds(pipelineId, spec.symbols, Boolean(live));
  const backtestSpec = placeJob(deps.fleet, 'backtest', {});
  const step = (symbols: string[], checkpoint: number, role: 'backtest' | 'summary'): JobData<'backtest'> => ({
    kind: 'backtest',
    payload: { model: spec.model, checkpoint, symbols, timeframe: spec.timeframe, ...(spec.testWindow ? { window: spec.testWindow } : {}) },
    trigger: { ...trigger, reason: 'pipeline', by: `pipeline ${pipelineId}` },
    pipeline: { id: pipelineId, role },
  });
  const child = (symbol: string, id: string, checkpoint: number) => ({
    name: 'backtest',
    queueName: backtestSpec.name,
    data: step([symbol], checkpoint, 'backtest'),
    opts: { ...defaultJobOptions(backtestSpec), jobId: id, ignoreDependencyOnFailure: true },
  });
  await deps.queues.flows.add({
    name: 'backtest',
    queueName: backtestSpec.name,
    data: step(spec.symbols, checkpointId, 'summary'),
    opts: { ...defaultJobOptions(backtestSpec), jobId: ids.summary },
    children: [
      ...ids.candidates.map((c) => child(c.symbol, c.id, checkpointId)),
      ...(live ? ids.live.map((c) => child(c.symbol, c.id, live.id)) : []),
    ],
  });
  await deps.registry.pipelines.setBacktests(pipelineId, checkpointId, ids.summary);
  return ids.summary;
}
