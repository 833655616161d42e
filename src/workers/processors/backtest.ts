// Backtests: run the backtester on a checkpoint (an id, `promoted`, or none for the model as it
// stands), record one backtest_results row per symbol (idempotent on the job; retried while
// Postgres is away, like checkpoint registration), and return the figures. A job with the
// pipeline role `summary` runs no command: it aggregates its children's results.
import { UnrecoverableError } from 'bullmq';
import { summarise } from '../../pipelines/summary.js';
import type { PayloadOf } from '../../queues/payloads.js';
import type { BacktestRow } from '../../registry/backtests.js';
import { retryTransient } from '../../registry/retry.js';
import type { JobContext, Processor } from '../job-context.js';
import { lifecycleFor } from './lifecycle-for.js';
import { REGISTRATION_RETRY_MS } from './training.js';

interface SymbolResult {
  symbol: string;
  sharpe_ratio?: number;
  total_return?: number;
  max_drawdown?: number;
  win_rate?: number;
  trades?: number;
}

async function summaryStep(ctx: JobContext) {
  const p = ctx.job.data.payload as PayloadOf<'backtest'>;
  const pipelineId = ctx.job.data.pipeline!.id;
  const [values, failures] = await Promise.all([ctx.job.getChildrenValues(), ctx.job.getIgnoredChildrenFailures()]);
  const childIds = [...Object.keys(values), ...Object.keys(failures)].map((k) => k.split(':').at(-1)!);
  const rows = await ctx.registry.backtests.forJobs(childIds);
  const checkpoint = await ctx.registry.checkpoints.get(p.checkpoint as number);
  const liveIds = [...new Set(rows.map((r) => r.checkpointId).filter((c): c is number => c !== null && c !== checkpoint?.id))];
  const live = liveIds[0] !== undefined ? await ctx.registry.checkpoints.get(liveIds[0]) : undefined;
  const summary = summarise(
    p.symbols,
    { id: checkpoint!.id, label: checkpoint!.label },
    live ? { id: live.id, label: live.label } : null,
    rows,
    Object.entries(failures).map(([key, reason]) => ({ job: key.split(':').at(-1)!, reason })),
  );
  await ctx.registry.pipelines.setSummary(pipelineId, summary);
  const pipeline = await ctx.registry.pipelines.get(pipelineId);
  if (pipeline?.kind === 'comparison' && checkpoint) {
    await lifecycleFor(ctx).recordComparison(checkpoint, pipelineId, summary, `worker ${ctx.hostId} (job ${ctx.job.id})`);
  }
  return summary;
}

export const backtest: Processor = async (ctx) => {
  if (ctx.job.data.pipeline?.role === 'summary') return summaryStep(ctx);
  const p = ctx.job.data.payload as PayloadOf<'backtest'>;
  const checkpoint =
    p.checkpoint === undefined
      ? undefined
      : p.checkpoint === 'promoted'
        ? await ctx.registry.checkpoints.promoted(p.model)
        : await ctx.registry.checkpoints.get(p.checkpoint);
  if (p.checkpoint !== undefined && !checkpoint) {
    throw new UnrecoverableError(p.checkpoint === 'promoted' ? `model ${p.model} has no promoted checkpoint` : `no checkpoint ${p.checkpoint}`);
  }
  if (checkpoint && checkpoint.model !== p.model) throw new UnrecoverableError(`checkpoint ${checkpoint.id} belongs to ${checkpoint.model}, not ${p.model}`);
  const env: Record<string, string> = checkpoint
    ? { CAELUM_CHECKPOINT_ID: String(checkpoint.id), CAELUM_CHECKPOINT_PATH: checkpoint.path, CAELUM_CHECKPOINT_LABEL: checkpoint.label }
    : {};
  const { events, outcome } = await ctx.run(ctx.spec.command, env);
  ctx.releaseCapacity();
  const result = [...events].reverse().find((e) => e.event === 'result');
  const perSymbol = ((result?.symbols as SymbolResult[] | undefined) ?? []).filter((s) => p.symbols.includes(s.symbol));
  const rows: BacktestRow[] = perSymbol.map((s) => ({
    jobId: ctx.job.id!,
    model: p.model,
    checkpointId: checkpoint?.id ?? null,
    symbol: s.symbol,
    timeframe: p.timeframe,
    windowFrom: p.window?.from ?? null,
    windowTo: p.window?.to ?? null,
    sharpeRatio: s.sharpe_ratio ?? null,
    totalReturn: s.total_return ?? null,
    maxDrawdown: s.max_drawdown ?? null,
    winRate: s.win_rate ?? null,
    trades: s.trades ?? null,
  }));
  await retryTransient('recording backtest results', () => ctx.registry.backtests.record(rows), {
    signal: ctx.signal,
    logger: ctx.log,
    maxMs: REGISTRATION_RETRY_MS,
  });
  return {
    host: ctx.hostId,
    durationMs: outcome.durationMs,
    model: p.model,
    checkpoint: checkpoint ? { id: checkpoint.id, label: checkpoint.label } : null,
    timeframe: p.timeframe,
    window: p.window ?? null,
    metrics: (result?.metrics as Record<string, unknown> | undefined) ?? {},
    symbols: perSymbol,
  };
};
