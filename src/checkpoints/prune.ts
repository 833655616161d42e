// Retention: each model keeps its newest N checkpoints (never the promoted one, never one FinColl
// has loaded: the registry's pruneCandidates). An older one is marked pruned first, through the
// transition table, and only then is its file deleted, and only when it is a regular file inside
// the model's checkpoint folder reached through no symbolic link (a file elsewhere is not ours to
// delete, and a link is never followed: src/contained-files.ts). A checkpoint promoted meanwhile
// is not marked, so its file stays.
import type { ModelConfig } from '../config/fleet-schema.js';
import { removeInside } from '../contained-files.js';
import type { Logger } from '../logger.js';
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
    const kept = await removeInside(c.path, model.checkpointDir).catch((err: unknown) => {
      logger.warn({ err, path: c.path }, 'could not delete a pruned checkpoint file');
      return undefined;
    });
    if (kept) logger.warn({ checkpoint: c.id, path: c.path, reason: kept }, 'left a pruned checkpoint file alone');
  }
  if (pruned.length) logger.info({ model: modelName, pruned }, 'pruned old checkpoints');
  return pruned;
}
