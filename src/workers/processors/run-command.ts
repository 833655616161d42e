// The plain processor (backtests and data syncs for now): run the queue's command, and return
// what it reported.
import type { Processor } from '../job-context.js';
import { buildResult } from './result.js';

export const runQueueCommand: Processor = async (ctx) => {
  const { events, outcome } = await ctx.run(ctx.spec.command);
  return buildResult({
    fleet: ctx.fleet,
    spec: ctx.spec,
    kind: ctx.spec.kind,
    host: ctx.hostId,
    gpus: ctx.lease.gpus.map((g) => g.index),
    outputDir: ctx.outputDir,
    cwd: ctx.spec.command.cwd ?? '.',
    durationMs: outcome.durationMs,
    events,
  });
};
