// Retention: each model keeps its newest N checkpoints (never the promoted one, never one FinColl
// has loaded: the registry's pruneCandidates). An older one is marked pruned first, through the
// transition table, and only then is its file deleted, and only when it lies inside the model's
// checkpoint folder (a file elsewhere is not ours to delete). A checkpoint promoted meanwhile is
// not marked, so its file stays.
import { rm } from 'node:fs/promises';
import type { ModelConfig } from '../config/fleet-schema.js';
import type { Logger } from '../logger.js';
import { isInside } from '../paths.js';
import type { CheckpointRepository } from '../registry/checkpoints.js';
import { sourcesOf } from './transitions.js';

export async function prune(
  repo: CheckpointRepository,
  modelName: string,
  model: Pick<ModelConfig, 'retention' | 'checkpointDir'>,
  actor: string,
  logger: Logger,
): Promise<number[]> {
  const pruned: number[] = [];
  for (const c of await repo.pruneCandidates(modelName, model.retention)) {
    const { changed } = await repo.markPruned(c.id, { from: sourcesOf('pruned'), actor, reason: `retention keeps the newest ${model.retention}` });
    if (!changed) continue;
    pruned.push(c.id);
    if (isInside(c.path, model.checkpointDir)) {
      await rm(c.path, { force: true }).catch((err: unknown) => logger.warn({ err, path: c.path }, 'could not delete a pruned checkpoint file'));
    }
  }
  if (pruned.length) logger.info({ model: modelName, pruned }, 'pruned old checkpoints');
  return pruned;
}
