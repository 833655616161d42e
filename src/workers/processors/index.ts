import type { JobKind } from '../../queues/kinds.js';
import type { Processor } from '../job-context.js';
import { deployTest } from './deploy-test.js';
import { dataSync } from './data-sync.js';
import { backtest } from './backtest.js';
import { train } from './training.js';

/** One processor per kind of work. */
export const PROCESSORS: Record<JobKind, Processor> = {
  training: train,
  'deploy-test': deployTest,
  backtest,
  'data-sync': dataSync,
};
