// Keeps the newest N checkpoints of a model (never the promoted one, never one FinColl has
// loaded); older ones are marked pruned and their file deleted when it lies inside the model's
// checkpoint folder (a file elsewhere is not ours to delete).
import { rm } from 'node:fs/promises';
import type { ModelConfig } from '../config/fleet-schema.js';
import type { Logger } from '../logger.js';
import { isInside } from '../paths.js';
import type { CheckpointRepository } from './checkpoints.js';

export async function prune(
  repo: CheckpointRepository,
  modelName: string,
  model: Pick<ModelConfig, 'retention' | 'checkpointDir'>,
  actor: string,
  logger: Logger,
): Promise<number[]> {
  const candidates = await repo.pruneCandidates(modelName, model.retention);
  for (const c of candidates) {
    if (isInside(c.path, model.checkpointDir)) {
      await rm(c.path, { force: true }).catch((err: unknown) => logger.warn({ err, path: c.path }, 'could not delete a pruned checkpoint file'));
    }
    await repo.markPruned(c.id, actor, `retention keeps the newest ${model.retention}`);
  }
  if (candidates.length) logger.info({ model: modelName, pruned: candidates.map((c) => c.id) }, 'pruned old checkpoints');
  return candidates.map((c) => c.id);
}
