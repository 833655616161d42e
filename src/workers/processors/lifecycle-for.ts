import { createCheckpointLifecycle } from '../../checkpoints/lifecycle.js';
import type { JobContext } from '../job-context.js';

/** The checkpoint lifecycle for one job, made from its context (cheap: it opens nothing). */
export const lifecycleFor = (ctx: Pick<JobContext, 'registry' | 'fleet' | 'queues' | 'redis' | 'prefix' | 'log'>) =>
  createCheckpointLifecycle({ registry: ctx.registry, fleet: ctx.fleet, queues: ctx.queues, redis: ctx.redis, prefix: ctx.prefix, logger: ctx.log });
