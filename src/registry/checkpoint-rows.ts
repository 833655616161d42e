// The checkpoint row as the service sees it: statuses, the TypeScript shapes, the columns read
// and their mapping from SQL rows, the label scheme. Types and pure mapping only; the SQL that
// reads and writes rows is in checkpoints.ts.
export const CHECKPOINT_STATUSES = [
  'registered',
  'validating',
  'validated',
  'promoted',
  'superseded',
  'rolled_back',
  'rejected',
] as const;
export type CheckpointStatus = (typeof CHECKPOINT_STATUSES)[number];

export interface Checkpoint {
  id: number;
  model: string;
  version: number;
  label: string;
  path: string;
  sizeBytes: number;
  sha256: string;
  metrics: Record<string, unknown>;
  validationMetrics: Record<string, unknown> | null;
  trainingJobId: string;
  trigger: Record<string, unknown>;
  /** What it was trained on: the market-data syncs (and later, comparisons). */
  lineage: Record<string, unknown>;
  status: CheckpointStatus;
  rejectionReasons: string[] | null;
  feedSeq: number | null;
  prunedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A feed entry: validation gave it a feed number at `validatedAt` (ISO time). */
export interface FeedCheckpoint extends Checkpoint {
  validatedAt: string;
}

export interface CheckpointEvent {
  fromStatus: string | null;
  toStatus: string;
  actor: string;
  reason: string | null;
  details: unknown;
  at: string;
}

export const COLUMNS = `id, model, version, label, path, size_bytes, sha256, metrics, validation_metrics, training_job_id,
  trigger, lineage, status, rejection_reasons, feed_seq, pruned_at, created_at, updated_at`;

export interface Row {
  id: string;
  model: string;
  version: number;
  label: string;
  path: string;
  size_bytes: string;
  sha256: string;
  metrics: Record<string, unknown>;
  validation_metrics: Record<string, unknown> | null;
  training_job_id: string;
  trigger: Record<string, unknown>;
  lineage: Record<string, unknown>;
  status: CheckpointStatus;
  rejection_reasons: string[] | null;
  feed_seq: string | null;
  pruned_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export function toCheckpoint(r: Row): Checkpoint {
  return {
    id: Number(r.id),
    model: r.model,
    version: r.version,
    label: r.label,
    path: r.path,
    sizeBytes: Number(r.size_bytes),
    sha256: r.sha256,
    metrics: r.metrics,
    validationMetrics: r.validation_metrics,
    trainingJobId: r.training_job_id,
    trigger: r.trigger,
    lineage: r.lineage,
    status: r.status,
    rejectionReasons: r.rejection_reasons,
    feedSeq: r.feed_seq === null ? null : Number(r.feed_seq),
    prunedAt: r.pruned_at?.toISOString() ?? null,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

/** The label scheme: `<model>-v<major>.<version>.0`, e.g. llm1-tech-v1.7.0 (see README). */
export const labelFor = (model: string, major: number, version: number) => `${model}-v${major}.${version}.0`;

export interface RegisterInput {
  model: string;
  versionMajor: number;
  path: string;
  sizeBytes: number;
  sha256: string;
  metrics: Record<string, unknown>;
  trainingJobId: string;
  trigger: Record<string, unknown>;
  lineage?: Record<string, unknown>;
}
