// deployment_history: one row per validation or deploy-test run (per attempt of its job).
import type pg from 'pg';

export interface DeploymentStart {
  jobId: string;
  attempt: number;
  service: string;
  model: string;
  checkpointId: number | null;
  version: string | null;
  action: 'validate' | 'deploy-test';
  host: string;
}

export interface DeploymentRecord extends DeploymentStart {
  id: number;
  status: 'running' | 'passed' | 'failed' | 'error';
  metrics: Record<string, unknown> | null;
  reasons: string[] | null;
  logs: string | null;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
}

export function createDeploymentRepository(pool: pg.Pool) {
  return {
    /** Idempotent per (job, attempt): a rerun of the same attempt reuses its row. */
    async start(d: DeploymentStart): Promise<number> {
      const { rows } = await pool.query<{ id: string }>(
        `insert into deployment_history (job_id, attempt, service, model, checkpoint_id, version, action, host, status)
         values ($1, $2, $3, $4, $5, $6, $7, $8, 'running')
         on conflict (job_id, attempt) do update set host = excluded.host, status = 'running', started_at = now()
         returning id`,
        [d.jobId, d.attempt, d.service, d.model, d.checkpointId, d.version, d.action, d.host],
      );
      return Number(rows[0]!.id);
    },

    async finish(
      id: number,
      r: { status: 'passed' | 'failed' | 'error'; metrics?: Record<string, unknown>; reasons?: string[]; logs?: string },
    ): Promise<void> {
      await pool.query(
        `update deployment_history set status = $2, metrics = $3, reasons = $4, logs = $5, finished_at = now(),
           duration_ms = (extract(epoch from now() - started_at) * 1000)::int
         where id = $1`,
        [id, r.status, r.metrics ? JSON.stringify(r.metrics) : null, r.reasons ? JSON.stringify(r.reasons) : null, r.logs ?? null],
      );
    },

    async forCheckpoint(checkpointId: number): Promise<DeploymentRecord[]> {
      const { rows } = await pool.query(
        `select id, job_id, attempt, service, model, checkpoint_id, version, action, host, status, metrics, reasons, logs,
                started_at, finished_at, duration_ms
         from deployment_history where checkpoint_id = $1 order by id`,
        [checkpointId],
      );
      return rows.map((r) => ({
        id: Number(r.id),
        jobId: r.job_id,
        attempt: r.attempt,
        service: r.service,
        model: r.model,
        checkpointId: r.checkpoint_id === null ? null : Number(r.checkpoint_id),
        version: r.version,
        action: r.action,
        host: r.host,
        status: r.status,
        metrics: r.metrics,
        reasons: r.reasons,
        logs: r.logs,
        startedAt: (r.started_at as Date).toISOString(),
        finishedAt: r.finished_at ? (r.finished_at as Date).toISOString() : null,
        durationMs: r.duration_ms,
      }));
    },
  };
}

export type DeploymentRepository = ReturnType<typeof createDeploymentRepository>;
