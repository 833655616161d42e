// A checkpoint lifecycle over a test file's own Postgres schema, with the real Redis and queues
// under a prefix of its own.
import type pg from 'pg';
import { createCheckpointLifecycle, type CheckpointLifecycle } from '../../src/checkpoints/lifecycle.js';
import type { LoadedFleet } from '../../src/config/load-fleet.js';
import { QueueSet } from '../../src/queues/queue-set.js';
import { closeRedis, createRedis, waitForRedis } from '../../src/redis.js';
import { createRegistry, type Registry } from '../../src/registry/index.js';
import { testFleet } from './fleet.js';
import { testLogger } from './logger.js';
import { deletePrefix } from './redis.js';
import { REDIS_URL, uniqueName } from './servers.js';

export interface LifecycleHarness {
  lifecycle: CheckpointLifecycle;
  registry: Registry;
  prefix: string;
  close(): Promise<void>;
}

export async function startLifecycle(pool: pg.Pool, fleet: LoadedFleet = testFleet()): Promise<LifecycleHarness> {
  const prefix = uniqueName('lifecycle');
  const redis = createRedis(REDIS_URL, 'producer', testLogger);
  await waitForRedis(redis, REDIS_URL);
  const queues = new QueueSet(fleet, redis, prefix, testLogger);
  const registry = createRegistry(pool);
  return {
    lifecycle: createCheckpointLifecycle({ registry, fleet, queues, redis, prefix, logger: testLogger }),
    registry,
    prefix,
    async close() {
      await queues.close();
      await closeRedis(redis);
      await deletePrefix(prefix);
    },
  };
}
