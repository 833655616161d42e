// Fleets of the benchmarks, built in code with parseFleet (as test/helpers/fleet.ts does).
import os from 'node:os';
import path from 'node:path';
import { parseFleet, type LoadedFleet } from '../src/config/load-fleet.js';
import type { FleetInput } from '../src/config/fleet-schema.js';
import { REPO_ROOT } from './lib.js';

const fakeGpu = (index: number) => ({ index, name: `Fake GPU ${index}`, memoryMiB: 8192 });
const validator = { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 60 };

/** How the backtest command meets its processes: cold (the default) or warm (README, "Warm runners"). */
export type BenchRunner = NonNullable<FleetInput['backtest']>['runner'];

/**
 * One host with `cpuSlots` CPU slots (our worker's concurrency for CPU jobs) whose backtests run
 * `command`, cold unless `runner` says warm. Attempts 1, so a failing command shows as a failure
 * rather than a retry.
 */
export function cpuFleetInput(cpuSlots: number, command: string[], schedules: FleetInput['schedules'] = {}, runner?: BenchRunner): FleetInput {
  return {
    hosts: { 'bench-host': { gpus: [fakeGpu(0)], cpuSlots } },
    pools: { bench: ['bench-host'] },
    models: {
      'bench-model': {
        pool: 'bench',
        gpusPerRun: 1,
        train: { command: ['node', 'examples/trainer.mjs'], timeoutSeconds: 60, attempts: 1 },
        validate: validator,
        // Never written: the CPU benchmarks run no training.
        checkpointDir: path.join(os.tmpdir(), 'caelum-bench-unused', 'bench-model'),
      },
    },
    backtest: { pool: 'bench', command, timeoutSeconds: 60, attempts: 1, ...(runner ? { runner } : {}) },
    dataSync: { pool: 'bench', command: ['node', 'examples/data-syncer.mjs'], timeoutSeconds: 60 },
    schedules,
  };
}

/** cpuFleetInput, parsed as the processes parse it. */
export function cpuFleet(cpuSlots: number, command: string[], schedules: FleetInput['schedules'] = {}, runner?: BenchRunner): LoadedFleet {
  return parseFleet(cpuFleetInput(cpuSlots, command, schedules, runner), '(bench cpu fleet)', REPO_ROOT);
}

export const GPU_SIZES = [1, 2, 4] as const;
export const GPU_POOLS = ['east', 'west'] as const;
export const gpuModel = (pool: string, gpus: number) => `${pool}-g${gpus}`;
export const gpuHostIds = (hosts: number) => Array.from({ length: hosts }, (_, i) => `fake-${i + 1}`);

/**
 * `hosts` fake hosts with `gpusPerHost` GPUs each, split into two pools; models of 1, 2, 4 GPUs per
 * pool, whose training times out after `trainTimeoutSeconds(gpus)`.
 */
export function gpuFleet(hosts: number, gpusPerHost: number, checkpointRoot: string, trainTimeoutSeconds: (gpus: number) => number = () => 60): LoadedFleet {
  const ids = gpuHostIds(hosts);
  const half = Math.ceil(hosts / 2);
  const pools: Record<string, string[]> = { [GPU_POOLS[0]]: ids.slice(0, half), [GPU_POOLS[1]]: ids.slice(half), everyone: ids };
  const models: FleetInput['models'] = {};
  for (const pool of GPU_POOLS) {
    for (const gpus of GPU_SIZES) {
      models[gpuModel(pool, gpus)] = {
        pool,
        gpusPerRun: gpus,
        train: { command: ['/bin/sh', 'bench/sleeper.sh'], timeoutSeconds: trainTimeoutSeconds(gpus), attempts: 1 },
        validate: validator,
        checkpointDir: path.join(checkpointRoot, gpuModel(pool, gpus)),
      };
    }
  }
  const input: FleetInput = {
    hosts: Object.fromEntries(ids.map((id) => [id, { gpus: Array.from({ length: gpusPerHost }, (_, i) => fakeGpu(i)), cpuSlots: 1 }])),
    pools,
    models,
    backtest: { pool: 'everyone', command: ['true'], timeoutSeconds: 60 },
    dataSync: { pool: 'everyone', command: ['true'], timeoutSeconds: 60 },
  };
  return parseFleet(input, '(bench gpu fleet)', REPO_ROOT);
}
