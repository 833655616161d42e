// The fleet as code: the hosts of the source documents, the pools they form, the models each
// pool trains, and the schedules that retrain them. Commands are argument arrays, never shell
// strings; paths are relative to this file. The example programs in examples/ stand in for the
// FinVec scripts so the whole system runs without GPUs or market data: point `command` at the
// real scripts on a real fleet.
import { defineConfig } from 'caelum-scheduler/config';

const rtx3080 = { name: 'NVIDIA GeForce RTX 3080', memoryMiB: 10240 };

export default defineConfig({
  hosts: {
    'wsl-27': { description: 'control host (WSL)', gpus: [{ index: 0, ...rtx3080 }], cpuSlots: 4, labels: ['control'] },
    'gpu-44': { description: 'GPU server 1', gpus: [{ index: 0, ...rtx3080 }], cpuSlots: 2, labels: ['gpu'] },
    'gpu-22': { description: 'GPU server 2', gpus: [{ index: 0, ...rtx3080 }], cpuSlots: 2, labels: ['gpu'] },
    'gpu-62': { description: 'GPU server 3', gpus: [{ index: 0, ...rtx3080 }], cpuSlots: 2, labels: ['gpu'] },
  },
  pools: {
    llm1: ['wsl-27', 'gpu-62'],
    llm3: ['gpu-22'],
    llm5: ['gpu-44'],
    // Backtests and data syncs run anywhere.
    fleet: ['wsl-27', 'gpu-44', 'gpu-22', 'gpu-62'],
  },
  models: {
    'llm1-tech': {
      description: 'LLM-1, technology equities; retrained daily',
      pool: 'llm1',
      gpusPerRun: 1,
      // stopGraceSeconds: on a shutdown, a drain or a preemption the trainer has a minute to checkpoint.
      train: { command: ['node', 'examples/trainer.mjs', '--epochs', '5', '--epoch-ms', '1500'], timeoutSeconds: 6 * 3600, attempts: 3, stopGraceSeconds: 60 },
      validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 1800, attempts: 2 },
      // LLM-1 is deploy-tested: a FinColl test instance loads the candidate and is scored.
      validation: 'deploy-test',
      deployTest: {
        service: { command: ['node', 'examples/fincoll-stub.mjs', '--load-ms', '500'], timeoutSeconds: 600, healthPath: '/health' },
        accuracy: { command: ['node', 'examples/accuracy-check.mjs', '--samples', '400'], timeoutSeconds: 600 },
        health: { intervalSeconds: 1, timeoutSeconds: 5, retries: 3, startPeriodSeconds: 30 },
      },
      thresholds: { val_accuracy: { min: 0.55 } },
      maxRegression: 0.1,
      checkpointDir: 'var/checkpoints/llm1-tech',
      retention: 5,
      // Retrain on today's bars: symbols not synced in the last 30 hours are synced first.
      freshData: { timeframe: '1d', maxAgeHours: 30 },
      symbols: ['AAPL', 'MSFT', 'NVDA', 'GOOGL', 'AMZN', 'META'],
    },
    'llm3-yieldmax': {
      description: 'LLM-3, YieldMax option-income ETFs; retrained weekly',
      pool: 'llm3',
      gpusPerRun: 1,
      train: { command: ['node', 'examples/trainer.mjs', '--epochs', '8', '--epoch-ms', '1500'], timeoutSeconds: 12 * 3600, attempts: 3, stopGraceSeconds: 60 },
      validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 1800, attempts: 2 },
      thresholds: { val_accuracy: { min: 0.55 } },
      maxRegression: 0.05,
      checkpointDir: 'var/checkpoints/llm3-yieldmax',
      retention: 5,
      symbols: ['TSLY', 'NVDY', 'CONY', 'MSTY', 'APLY'],
    },
    'llm5-volatility': {
      description: 'LLM-5, volatility; trained on demand',
      pool: 'llm5',
      gpusPerRun: 1,
      train: { command: ['node', 'examples/trainer.mjs', '--epochs', '6', '--epoch-ms', '1500'], timeoutSeconds: 12 * 3600, attempts: 2, stopGraceSeconds: 60 },
      validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 1800, attempts: 2 },
      thresholds: { val_accuracy: { min: 0.5 } },
      maxRegression: 0.05,
      checkpointDir: 'var/checkpoints/llm5-volatility',
      retention: 5,
      symbols: ['SPY', 'QQQ', 'UVXY', 'VIXY'],
    },
  },
  // Backtests and data syncs are many short CPU jobs (a research sweep, a sync per symbol and
  // timeframe): warm runners pay node's start-up once per process, not once per job (README,
  // "Warm runners"). Trainings and validations stay cold: a fresh process per job.
  backtest: { pool: 'fleet', command: ['node', 'examples/backtester.mjs'], runner: { mode: 'warm', maxJobs: 500, maxRssMiB: 512, idleSeconds: 300 }, timeoutSeconds: 3600, attempts: 2 },
  dataSync: { pool: 'fleet', command: ['node', 'examples/data-syncer.mjs'], runner: { mode: 'warm', maxJobs: 500, maxRssMiB: 512, idleSeconds: 300 }, timeoutSeconds: 600, attempts: 3 },
  // When a GPU nvidia-smi reports is too unwell to lease (README, "GPU health"). To hold GPUs on
  // XIDs too, add kernelLog: '/var/log/kern.log' once the worker's user can read it (group adm).
  gpuHealth: { maxTemperatureC: 85, temperatureHysteresisC: 5, xidHoldSeconds: 600 },
  // Webhooks told of failed jobs, missed fires, stale data, lost workers, unwell GPUs and
  // checkpoint changes (README, "Notifications"). The scheduler process delivers them and reads
  // the secret from the environment variable named here. For example:
  //   notifications: {
  //     targets: { ops: { url: 'https://hooks.slack.com/services/…', secretEnv: 'CAELUM_WEBHOOK_SECRET' } },
  //   },
  schedules: {
    // Market data first: every trading day at 17:30 New York time, after the close, so the night's
    // retrains (02:00) and the weekend's (Saturday 03:00) train on the day's bars.
    'market-data-daily': {
      description: 'sync daily bars of every model\'s symbols after the US close',
      cron: '30 17 * * 1-5',
      timezone: 'America/New_York',
      enqueue: {
        kind: 'data-sync',
        symbols: ['AAPL', 'MSFT', 'NVDA', 'GOOGL', 'AMZN', 'META', 'TSLY', 'NVDY', 'CONY', 'MSTY', 'APLY', 'SPY', 'QQQ', 'UVXY', 'VIXY'],
        timeframe: '1d',
      },
      overlap: 'skip',
      catchUp: { windowSeconds: 12 * 3600, mode: 'latest' },
    },
    'llm1-tech-daily': {
      description: 'retrain LLM-1 every weekday night, after the market data sync',
      cron: '0 2 * * 2-6',
      timezone: 'America/New_York',
      // FinColl trades on it the next morning: it may preempt background trainings (see README).
      enqueue: { kind: 'training', model: 'llm1-tech', priorityClass: 'urgent' },
      overlap: 'skip',
    },
    'llm3-yieldmax-weekly': {
      description: 'retrain LLM-3 on Saturday morning',
      cron: '0 3 * * 6',
      timezone: 'America/New_York',
      enqueue: { kind: 'training', model: 'llm3-yieldmax' },
      overlap: 'skip',
    },
    'llm5-volatility-on-demand': {
      description: 'LLM-5 trains only when triggered',
      timezone: 'America/New_York',
      // On demand research retrains yield to the scheduled ones.
      enqueue: { kind: 'training', model: 'llm5-volatility', priorityClass: 'background' },
      overlap: 'skip',
    },
  },
});
