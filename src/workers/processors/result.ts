// What differs between the kinds when a job runs: where its output goes and what its result
// holds. The command itself always comes from workers.config.ts (via the queue's spec).
import path from 'node:path';
import type { LoadedFleet } from '../../config/load-fleet.js';
import type { JobKind } from '../../queues/kinds.js';
import type { QueueSpec } from '../../queues/placement.js';
import { describeCheckpoint, type CheckpointFile } from '../checkpoint-file.js';
import type { ProtocolEvent } from '../protocol.js';

export interface JobRunResult {
  host: string;
  gpus: number[];
  durationMs: number;
  metrics: Record<string, unknown>;
  /** The child's `result` event, without its `event` field. */
  result: Record<string, unknown> | null;
  checkpoints: (CheckpointFile & { metrics: Record<string, unknown> })[];
}

/** The configured folder a kind's outputs lie in: the model's checkpoint folder, or the data folder's outputs. */
export function outputRootFor(fleet: LoadedFleet, spec: QueueSpec, dataDir: string): string {
  const model = spec.model ? fleet.models[spec.model] : undefined;
  return model && (spec.kind === 'training' || spec.kind === 'deploy-test') ? model.checkpointDir : path.join(dataDir, 'outputs');
}

/**
 * Each start of a job (`attempt`: BullMQ's attemptsStarted, so a stalled job's rerun counts too)
 * writes in a folder of its own: a rerun never writes over what an earlier start wrote and
 * perhaps registered.
 */
export function outputDirFor(fleet: LoadedFleet, spec: QueueSpec, jobId: string, attempt: number, dataDir: string): string {
  const root = outputRootFor(fleet, spec, dataDir);
  const job = spec.kind === 'training' ? jobId : spec.kind === 'deploy-test' ? `deploy-tests/${jobId}` : `${spec.kind}/${jobId}`;
  return path.join(root, job, `attempt-${attempt}`);
}

/** Folders a reported checkpoint may lie in: the job's output folder and the model's checkpoint folder. */
function allowedDirs(fleet: LoadedFleet, spec: QueueSpec, outputDir: string): string[] {
  const model = spec.model ? fleet.models[spec.model] : undefined;
  return model ? [outputDir, model.checkpointDir] : [outputDir];
}

export async function buildResult(input: {
  fleet: LoadedFleet;
  spec: QueueSpec;
  kind: JobKind;
  host: string;
  gpus: number[];
  outputDir: string;
  cwd: string;
  durationMs: number;
  events: ProtocolEvent[];
}): Promise<JobRunResult> {
  const strip = (e: ProtocolEvent) => {
    const { event: _event, ...rest } = e;
    return rest as Record<string, unknown>;
  };
  const resultEvent = [...input.events].reverse().find((e) => e.event === 'result');
  const checkpoints: JobRunResult['checkpoints'] = [];
  if (input.kind === 'training') {
    for (const e of input.events) {
      if (e.event !== 'checkpoint') continue;
      const file = await describeCheckpoint(e.path, input.cwd, allowedDirs(input.fleet, input.spec, input.outputDir));
      checkpoints.push({ ...file, metrics: (e.metrics as Record<string, unknown> | undefined) ?? {} });
    }
  }
  return {
    host: input.host,
    gpus: input.gpus,
    durationMs: input.durationMs,
    metrics: (resultEvent?.metrics as Record<string, unknown> | undefined) ?? checkpoints.at(-1)?.metrics ?? {},
    result: resultEvent ? strip(resultEvent) : null,
    checkpoints,
  };
}
