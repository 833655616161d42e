// The Postgres side of the scheduler: migrations, checkpoints, deployment history and backtest
// results. One repository per table family, each made from the pool it is handed.
import type pg from 'pg';
import { createCheckpointRepository } from './checkpoints.js';
import { createDeploymentRepository } from './deployments.js';
import { createScheduleRepository } from './schedules.js';
import { createMarketDataRepository } from './market-data.js';
import { createBacktestRepository } from './backtests.js';
import { createPipelineRepository } from './pipelines.js';
import { createTrainingRunRepository } from './training-runs.js';

export function createRegistry(pool: pg.Pool) {
  return {
    pool,
    checkpoints: createCheckpointRepository(pool),
    deployments: createDeploymentRepository(pool),
    schedules: createScheduleRepository(pool),
    marketData: createMarketDataRepository(pool),
    backtests: createBacktestRepository(pool),
    pipelines: createPipelineRepository(pool),
    trainingRuns: createTrainingRunRepository(pool),
  };
}

export type Registry = ReturnType<typeof createRegistry>;
