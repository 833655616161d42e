// Research pipelines: what was asked, which jobs make it up, and the summary once it is in.
import type pg from 'pg';
import { writeAlone } from './transaction.js';

export interface Pipeline {
  id: string;
  kind: 'research' | 'comparison';
  model: string;
  spec: Record<string, unknown>;
  trainingJobId: string;
  checkpointId: number | null;
  summaryJobId: string | null;
  summary: Record<string, unknown> | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

const toPipeline = (r: Record<string, unknown>): Pipeline => ({
  id: r.id as string,
  kind: r.kind as 'research' | 'comparison',
  model: r.model as string,
  spec: r.spec as Record<string, unknown>,
  trainingJobId: r.training_job_id as string,
  checkpointId: r.checkpoint_id === null ? null : Number(r.checkpoint_id),
  summaryJobId: (r.summary_job_id as string | null) ?? null,
  summary: (r.summary as Record<string, unknown> | null) ?? null,
  createdBy: r.created_by as string,
  createdAt: (r.created_at as Date).toISOString(),
  updatedAt: (r.updated_at as Date).toISOString(),
});

export function createPipelineRepository(pool: pg.Pool) {
  return {
    async create(p: { id: string; kind?: 'research' | 'comparison'; model: string; spec: object; trainingJobId: string; createdBy: string }): Promise<void> {
      await writeAlone(
        pool,
        `insert into pipelines (id, kind, model, spec, training_job_id, created_by) values ($1, $6, $2, $3, $4, $5)
         on conflict (id) do nothing`,
        [p.id, p.model, JSON.stringify(p.spec), p.trainingJobId, p.createdBy, p.kind ?? 'research'],
      );
    },
    /** Deletes a pipeline that never got going (its training job could not be enqueued). */
    async discard(id: string): Promise<void> {
      await pool.query('delete from pipelines where id = $1 and checkpoint_id is null and summary_job_id is null', [id]);
    },
    async get(id: string): Promise<Pipeline | undefined> {
      const { rows } = await pool.query('select * from pipelines where id = $1', [id]);
      return rows[0] ? toPipeline(rows[0]) : undefined;
    },
    async setBacktests(id: string, checkpointId: number, summaryJobId: string): Promise<void> {
      await pool.query('update pipelines set checkpoint_id = $2, summary_job_id = $3, updated_at = now() where id = $1', [id, checkpointId, summaryJobId]);
    },
    async setSummary(id: string, summary: object): Promise<void> {
      await pool.query('update pipelines set summary = $2, updated_at = now() where id = $1', [id, JSON.stringify(summary)]);
    },
  };
}

export type PipelineRepository = ReturnType<typeof createPipelineRepository>;
