// The fleet of the Redis-cost benchmark (bench/redis-ops.ts): two GPU hosts in one pool, a model
// whose training and validation are the example programs (length from the job's params), and a
// daily schedule so that the scheduler arms a timer and otherwise idles.
import { defineConfig } from '../src/config/define-config.js';

const gpu = (index: number) => ({ index, name: `Bench GPU ${index}`, memoryMiB: 8192 });
const node = (script: string) => ({ command: ['node', `examples/${script}`], cwd: '..', timeoutSeconds: 120 });

export default defineConfig({
  hosts: { 'bench-a': { gpus: [gpu(0), gpu(1)], cpuSlots: 2 }, 'bench-b': { gpus: [gpu(0), gpu(1)], cpuSlots: 2 } },
  pools: { all: ['bench-a', 'bench-b'] },
  models: {
    // Keeps every checkpoint of the run: retention would prune one before its validation ran.
    ops: { pool: 'all', gpusPerRun: 1, train: node('trainer.mjs'), validate: node('validator.mjs'), checkpointDir: '../var/bench-checkpoints/ops', retention: 1000 },
  },
  backtest: { pool: 'all', ...node('backtester.mjs') },
  dataSync: { pool: 'all', ...node('data-syncer.mjs') },
  schedules: {
    'ops-nightly': { cron: '0 3 * * *', timezone: 'UTC', enqueue: { kind: 'training', model: 'ops' } },
  },
});
