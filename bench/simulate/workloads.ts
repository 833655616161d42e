// The shipped workloads: the fleet of workers.config.ts, the GPU benchmark's 8 hosts x 4 GPUs, and
// 512 hosts x 8 GPUs with 50,000 jobs. Each is a fleet (parsed by the project's own loader, so the
// queues, pools and timeouts are the ones a worker would serve) and a seeded job plan.
import path from 'node:path';
import { loadFleet, parseFleet, type LoadedFleet } from '../../src/config/load-fleet.js';
import type { FleetInput } from '../../src/config/fleet-schema.js';
import { GPU_POOLS, GPU_SIZES, gpuFleet, gpuModel } from '../fleets.js';
import { REPO_ROOT } from '../lib.js';
import type { PlannedJob } from './jobs.js';
import { planJobs, poolGpus, type JobKind, type PlanSpec } from './plan.js';

export interface Workload {
  name: string;
  title: string;
  fleet: LoadedFleet;
  jobs: PlannedJob[];
  /** How the jobs were drawn, for the report. */
  about: string;
}

export interface WorkloadOverrides {
  jobs?: number;
  seed?: number;
  load?: number;
}

const MIN = 60_000;
const HOUR = 60 * MIN;

function describe(spec: PlanSpec): string {
  const kinds = spec.mix.map((k) => `${k.queue} (weight ${k.weight}, median ${fmtMinutes(k.medianMs)}, sigma ${k.sigma})`).join('; ');
  return (
    `${spec.jobs} jobs, seed ${spec.seed}; offered load ${spec.load} of each pool's GPUs; ` +
    `${Math.round(spec.burstShare * 100)}% of the jobs in bursts of ${spec.burstSize}, the rest Poisson; ` +
    `run times lognormal, below the command's timeout: ${kinds}`
  );
}

const fmtMinutes = (ms: number) => (ms >= HOUR ? `${+(ms / HOUR).toFixed(2)} h` : `${+(ms / MIN).toFixed(2)} min`);

function build(name: string, title: string, fleet: LoadedFleet, spec: PlanSpec, o: WorkloadOverrides): Workload {
  const s = { ...spec, ...(o.jobs ? { jobs: o.jobs } : {}), ...(o.seed !== undefined ? { seed: o.seed } : {}), ...(o.load ? { load: o.load } : {}) };
  return { name, title, fleet, jobs: planJobs(fleet, s), about: describe(s) };
}

/**
 * The fleet of workers.config.ts: every model's training, expected to run an eighth of its
 * timeout, each as often as its pool's GPUs allow (so every pool's arrivals span about as long).
 */
async function configFleet(o: WorkloadOverrides): Promise<Workload> {
  const fleet = await loadFleet(path.join(REPO_ROOT, 'workers.config.ts'));
  const mix: JobKind[] = Object.entries(fleet.models)
    .filter(([, m]) => m.gpusPerRun > 0)
    .map(([model, m]) => {
      const medianMs = (m.train.timeoutSeconds * 1000) / 8;
      return { queue: `training-${model}`, weight: +((poolGpus(fleet, m.pool) * HOUR) / (m.gpusPerRun * medianMs)).toFixed(2), medianMs, sigma: 0.6, epochs: 10 };
    });
  const hosts = Object.keys(fleet.hosts).length;
  return build('config', `workers.config.ts (${hosts} hosts)`, fleet, { jobs: 300, seed: 1, mix, load: 0.85, burstShare: 0.2, burstSize: 6 }, o);
}

/** The GPU benchmark's fleet (bench/fleets.ts): 8 hosts x 4 GPUs in 2 pools, 1/2/4-GPU models. */
function benchFleet(o: WorkloadOverrides): Workload {
  const median = (gpus: number) => (gpus === 1 ? 3 : gpus === 2 ? 5 : 8) * MIN;
  const fleet = gpuFleet(8, 4, path.join(REPO_ROOT, 'var', 'simulate'), (gpus) => (10 * median(gpus)) / 1000);
  const weight = (gpus: number) => (gpus === 1 ? 5 : gpus === 2 ? 3 : 2);
  const mix = GPU_POOLS.flatMap((pool) =>
    GPU_SIZES.map((gpus) => ({ queue: `training-${gpuModel(pool, gpus)}`, weight: weight(gpus), medianMs: median(gpus), sigma: 1, epochs: 10 })),
  );
  return build('8x4', '8 hosts x 4 GPUs, 2 pools', fleet, { jobs: 2_000, seed: 2, mix, load: 0.9, burstShare: 0.2, burstSize: 20 }, o);
}

const LARGE_POOLS = { 'pool-a': 192, 'pool-b': 128, 'pool-c': 128, 'pool-d': 64 } as const;
const LARGE_SIZES = [
  { gpus: 1, weight: 40, medianMs: 6 * MIN },
  { gpus: 2, weight: 25, medianMs: 10 * MIN },
  { gpus: 4, weight: 20, medianMs: 15 * MIN },
  { gpus: 8, weight: 15, medianMs: 20 * MIN },
] as const;

/** 512 hosts x 8 GPUs in 4 pools of 64-192 hosts, each pool with 1/2/4/8-GPU models. */
function largeFleet(o: WorkloadOverrides): Workload {
  const gpu = (index: number) => ({ index, name: `Fake GPU ${index}`, memoryMiB: 81920 });
  const hosts: FleetInput['hosts'] = {};
  const pools: Record<string, string[]> = {};
  let n = 0;
  for (const [pool, count] of Object.entries(LARGE_POOLS)) {
    pools[pool] = [];
    for (let i = 0; i < count; i++) {
      const id = `node-${String(++n).padStart(3, '0')}`;
      hosts[id] = { gpus: Array.from({ length: 8 }, (_, g) => gpu(g)), cpuSlots: 2 };
      pools[pool].push(id);
    }
  }
  pools.everyone = Object.keys(hosts);
  const models: FleetInput['models'] = {};
  const mix: JobKind[] = [];
  for (const pool of Object.keys(LARGE_POOLS)) {
    for (const size of LARGE_SIZES) {
      const model = `${pool}-g${size.gpus}`;
      models[model] = {
        pool,
        gpusPerRun: size.gpus,
        train: { command: ['/bin/sh', 'bench/sleeper.sh'], timeoutSeconds: (10 * size.medianMs) / 1000 },
        validate: { command: ['true'], timeoutSeconds: 60 },
        checkpointDir: `var/simulate/${model}`,
      };
      mix.push({ queue: `training-${model}`, weight: size.weight * LARGE_POOLS[pool as keyof typeof LARGE_POOLS], medianMs: size.medianMs, sigma: 1, epochs: 20 });
    }
  }
  const fleet = parseFleet(
    { hosts, pools, models, backtest: { pool: 'everyone', command: ['true'], timeoutSeconds: 60 }, dataSync: { pool: 'everyone', command: ['true'], timeoutSeconds: 60 } },
    '(simulated 512 x 8 fleet)',
    REPO_ROOT,
  );
  return build('512x8', '512 hosts x 8 GPUs, 4 pools', fleet, { jobs: 50_000, seed: 3, mix, load: 0.9, burstShare: 0.2, burstSize: 100 }, o);
}

export const WORKLOADS: Record<string, (o: WorkloadOverrides) => Workload | Promise<Workload>> = {
  config: configFleet,
  '8x4': benchFleet,
  '512x8': largeFleet,
};
