// Small fleets built in code for tests: two hosts with fake GPUs, two pools, two models.
import path from 'node:path';
import { parseFleet, type LoadedFleet } from '../../src/config/load-fleet.js';
import type { FleetInput } from '../../src/config/fleet-schema.js';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

const fakeGpu = (index: number) => ({ index, name: `Fake GPU ${index}`, memoryMiB: 8192 });

export function testFleetInput(overrides: Partial<FleetInput> = {}): FleetInput {
  return {
    hosts: {
      'host-a': { gpus: [fakeGpu(0), fakeGpu(1)], cpuSlots: 2 },
      'host-b': { gpus: [fakeGpu(0)], cpuSlots: 1 },
    },
    pools: { alpha: ['host-a'], beta: ['host-b'], everyone: ['host-a', 'host-b'] },
    models: {
      'model-a': {
        pool: 'alpha',
        gpusPerRun: 2,
        train: { command: ['node', 'examples/trainer.mjs'], timeoutSeconds: 60 },
        validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 60 },
        checkpointDir: 'var/test-checkpoints/model-a',
      },
      'model-b': {
        pool: 'beta',
        train: { command: ['node', 'examples/trainer.mjs'], timeoutSeconds: 60 },
        validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 60 },
        checkpointDir: 'var/test-checkpoints/model-b',
      },
    },
    backtest: { pool: 'everyone', command: ['node', 'examples/backtester.mjs'], timeoutSeconds: 60 },
    dataSync: { pool: 'everyone', command: ['node', 'examples/data-syncer.mjs'], timeoutSeconds: 60 },
    ...overrides,
  };
}

export function testFleet(overrides: Partial<FleetInput> = {}): LoadedFleet {
  return parseFleet(testFleetInput(overrides), '(test)', REPO_ROOT);
}

type ModelInput = FleetInput['models'][string];

/** A model's validation by deploy test against the FinColl stub (examples/), quick to get healthy. */
export const stubDeployTest = {
  validation: 'deploy-test',
  deployTest: {
    service: { command: ['node', 'examples/fincoll-stub.mjs', '--load-ms', '300'], timeoutSeconds: 60 },
    accuracy: { command: ['node', 'examples/accuracy-check.mjs', '--samples', '200'], timeoutSeconds: 60 },
    health: { intervalSeconds: 0.2, timeoutSeconds: 5, retries: 3, startPeriodSeconds: 5 },
  },
  // 200 samples of a ~0.7 accurate stub: keep the bar where chance cannot trip it.
  thresholds: { val_accuracy: { min: 0.5 } },
} satisfies Partial<ModelInput>;

/** A fleet of `hosts` in one pool that serves every model, backtests and data syncs (the example programs). */
export function onePoolFleet(label: string, hosts: FleetInput['hosts'], models: Record<string, Omit<ModelInput, 'pool'>>): LoadedFleet {
  const pool = 'all';
  const example = (name: string) => ({ pool, command: ['node', `examples/${name}.mjs`], timeoutSeconds: 30 });
  return parseFleet(
    {
      hosts,
      pools: { [pool]: Object.keys(hosts) },
      models: Object.fromEntries(Object.entries(models).map(([name, m]) => [name, { ...m, pool }])),
      backtest: example('backtester'),
      dataSync: example('data-syncer'),
    },
    label,
    REPO_ROOT,
  );
}
