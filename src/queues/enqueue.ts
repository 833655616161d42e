// The one enqueue function: the API, the CLI and the scheduler all come through here, so a
// payload is validated, placed and stored the same way whoever sends it.
//
// With durable enqueues configured, no enqueue returns before its replica acknowledgement
// (QueueSet.confirmWritten); with an Idempotency-Key, a retry returns the first attempt's job.
//
// Two kinds get more than a plain add:
// - data-sync: deduplicated per (symbol, timeframe) while a sync of that key waits, so requests
//   do not pile up (the answer names the job already waiting);
// - training of a model with `freshData`: when some of its symbols' data is stale, the training
//   job is added as the parent of a flow whose children sync them; it waits until they finish.
import type { LoadedFleet } from '../config/load-fleet.js';
import type { MarketDataRepository } from '../registry/market-data.js';
import { parseInput } from '../validation.js';
import type { JobKind } from './kinds.js';
import { payloadSchemas, type JobData, type PayloadOf, type PipelineRef, type Trigger } from './payloads.js';
import { newJobId, placeJob } from './placement.js';
import { defaultJobOptions, type QueueSet } from './queue-set.js';
import { idempotentSuffix, recordIdempotencyKey, type IdempotentRequest } from './idempotency.js';

export interface EnqueueDeps {
  fleet: LoadedFleet;
  queues: QueueSet;
  /** When given, training of a model with `freshData` checks its symbols' last syncs. */
  marketData?: MarketDataRepository;
}

export interface EnqueueOptions {
  /** Suffix of the job id; the scheduler derives it from (schedule, fire time) for exactly-once. */
  idSuffix?: string;
  delayMs?: number;
  /** The job's place in a research pipeline. */
  pipeline?: PipelineRef;
  /** The client's Idempotency-Key: the job id derives from it, and a retry finds the first job. */
  idempotency?: IdempotentRequest;
}

export interface EnqueuedJob {
  id: string;
  kind: JobKind;
  queue: string;
  /** As added; for a replay, the job's state now (it may have run meanwhile). */
  state: string;
  /** A data sync of the same key was already waiting: this is its id, nothing new was added. */
  deduplicated?: boolean;
  /** A retry with an Idempotency-Key already used: this is the first attempt's job, nothing new was added. */
  replayed?: boolean;
  /** Data syncs this training job waits for. */
  waitsFor?: string[];
}

export function parsePayload(kind: JobKind, raw: unknown) {
  return parseInput(payloadSchemas[kind], raw ?? {}, `${kind} job`);
}

export const syncDedupId = (symbol: string, timeframe: string) => `data-sync:${symbol}:${timeframe}`;

async function staleSymbols(deps: EnqueueDeps, payload: PayloadOf<'training'>): Promise<{ symbols: string[]; timeframe: string }> {
  const model = deps.fleet.models[payload.model]!;
  if (!model.freshData || !deps.marketData) return { symbols: [], timeframe: '' };
  const { timeframe, maxAgeHours } = model.freshData;
  const symbols = payload.symbols ?? model.symbols;
  const latest = await deps.marketData.latest(symbols, timeframe);
  const fresh = new Set(latest.filter((s) => Date.now() - Date.parse(s.syncedAt) <= maxAgeHours * 3600_000).map((s) => s.symbol));
  return { symbols: symbols.filter((s) => !fresh.has(s)), timeframe };
}

export async function enqueue(
  deps: EnqueueDeps,
  kind: JobKind,
  raw: unknown,
  trigger: Trigger,
  options: EnqueueOptions = {},
): Promise<EnqueuedJob> {
  const job = await add(deps, kind, raw, trigger, options);
  await deps.queues.confirmWritten();
  return job;
}

async function add(deps: EnqueueDeps, kind: JobKind, raw: unknown, trigger: Trigger, options: EnqueueOptions): Promise<EnqueuedJob> {
  const payload = parsePayload(kind, raw);
  const spec = placeJob(deps.fleet, kind, payload as { model?: string });
  const entry = deps.queues.get(spec.name);
  if (!entry) throw new Error(`queue ${spec.name} is not open`);
  deps.queues.assertReachable();
  const data: JobData = { kind, payload, trigger, ...(options.pipeline ? { pipeline: options.pipeline } : {}) } as JobData;
  const id = newJobId(spec.name, options.idempotency ? idempotentSuffix(options.idempotency) : options.idSuffix);
  const delay = options.delayMs && options.delayMs > 0 ? options.delayMs : undefined;
  if (options.idempotency) {
    await recordIdempotencyKey(deps.queues.writeConnection, deps.queues.prefix, options.idempotency, id, { kind, payload, delay });
    const first = await entry.writer.getJob(id);
    if (first) return { id, kind, queue: spec.name, state: await first.getState(), replayed: true };
  }

  if (kind === 'data-sync') {
    const p = payload as PayloadOf<'data-sync'>;
    const job = await entry.writer.add(kind, data, { jobId: id, deduplication: { id: syncDedupId(p.symbol, p.timeframe) }, ...(delay ? { delay } : {}) });
    const deduplicated = job.id !== id;
    return { id: job.id!, kind, queue: spec.name, state: delay ? 'delayed' : 'waiting', ...(deduplicated ? { deduplicated } : {}) };
  }

  if (kind === 'training') {
    const stale = await staleSymbols(deps, payload as PayloadOf<'training'>);
    if (stale.symbols.length > 0) {
      const syncSpec = placeJob(deps.fleet, 'data-sync', {});
      const suffix = id.slice(spec.name.length + 1);
      const children = stale.symbols.map((symbol) => ({
        name: 'data-sync',
        queueName: syncSpec.name,
        data: {
          kind: 'data-sync',
          payload: parsePayload('data-sync', { symbol, timeframe: stale.timeframe }),
          trigger: { ...trigger, reason: 'system' as const, by: `fresh data for ${id}` },
        },
        opts: {
          ...defaultJobOptions(syncSpec),
          jobId: newJobId(syncSpec.name, `fresh-${suffix}-${symbol.replace(/[^A-Za-z0-9_-]/g, '_')}`),
          // A sync that fails for good must not hold the retrain for ever: it trains on what it has,
          // and its lineage says which syncs it got.
          ignoreDependencyOnFailure: true,
        },
      }));
      await deps.queues.flows.add({
        name: kind,
        queueName: spec.name,
        data,
        opts: { ...defaultJobOptions(spec), jobId: id },
        children,
      });
      return { id, kind, queue: spec.name, state: 'waiting-children', waitsFor: children.map((c) => c.opts.jobId) };
    }
  }

  await entry.writer.add(kind, data, { jobId: id, ...(delay ? { delay } : {}) });
  return { id, kind, queue: spec.name, state: delay ? 'delayed' : 'waiting' };
}
