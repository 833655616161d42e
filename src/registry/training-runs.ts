// A training job's runs in Postgres: each start (attempt) with the checkpoint it resumed from and
// how it ended, and each checkpoint it reported, recorded when reported (migration 007). The
// worker resumes a rerun from these and the final checkpoint's lineage lists the attempts.
// Parameterised SQL only.
import type pg from 'pg';

export interface TrainingAttempt {
  attempt: number;
  host: string;
  startedAt: string;
  resumedFrom: { path: string; epoch: number | null; attempt: number | null } | null;
  endedAt: string | null;
  endedHow: string | null;
}

export interface ReportedCheckpoint {
  id: number;
  jobId: string;
  attempt: number;
  epoch: number | null;
  path: string;
  sizeBytes: number;
  sha256: string;
  reportedAt: string;
}

interface AttemptRow {
  attempt: number;
  host: string;
  started_at: Date;
  resumed_from_path: string | null;
  resumed_from_epoch: number | null;
  resumed_from_attempt: number | null;
  ended_at: Date | null;
  ended_how: string | null;
}

interface CheckpointRow {
  id: string;
  job_id: string;
  attempt: number;
  epoch: number | null;
  path: string;
  size_bytes: string;
  sha256: string;
  reported_at: Date;
}

const toCheckpoint = (r: CheckpointRow): ReportedCheckpoint => ({
  id: Number(r.id),
  jobId: r.job_id,
  attempt: r.attempt,
  epoch: r.epoch,
  path: r.path,
  sizeBytes: Number(r.size_bytes),
  sha256: r.sha256,
  reportedAt: r.reported_at.toISOString(),
});

export function createTrainingRunRepository(pool: pg.Pool) {
  return {
    /** Records a start; a second record of the same start (a retry of this call) changes nothing. */
    async startAttempt(jobId: string, attempt: number, host: string, resumedFrom: ReportedCheckpoint | undefined): Promise<void> {
      await pool.query(
        `insert into training_attempts (job_id, attempt, host, resumed_from_path, resumed_from_epoch, resumed_from_attempt)
         values ($1, $2, $3, $4, $5, $6) on conflict (job_id, attempt) do nothing`,
        [jobId, attempt, host, resumedFrom?.path ?? null, resumedFrom?.epoch ?? null, resumedFrom?.attempt ?? null],
      );
    },

    async endAttempt(jobId: string, attempt: number, how: string): Promise<void> {
      await pool.query('update training_attempts set ended_at = now(), ended_how = $3 where job_id = $1 and attempt = $2 and ended_at is null', [
        jobId,
        attempt,
        how,
      ]);
    },

    /** Records a reported checkpoint once (the same file with the same digest again is the same report). */
    async recordCheckpoint(c: Omit<ReportedCheckpoint, 'id' | 'reportedAt'>): Promise<void> {
      await pool.query(
        `insert into training_checkpoints (job_id, attempt, epoch, path, size_bytes, sha256) values ($1, $2, $3, $4, $5, $6)
         on conflict (job_id, path, sha256) do nothing`,
        [c.jobId, c.attempt, c.epoch, c.path, c.sizeBytes, c.sha256],
      );
    },

    /** The job's reported checkpoints, newest first. */
    async checkpoints(jobId: string, limit = 20): Promise<ReportedCheckpoint[]> {
      const { rows } = await pool.query<CheckpointRow>(
        'select id, job_id, attempt, epoch, path, size_bytes, sha256, reported_at from training_checkpoints where job_id = $1 order by id desc limit $2',
        [jobId, limit],
      );
      return rows.map(toCheckpoint);
    },

    async attempts(jobId: string): Promise<TrainingAttempt[]> {
      const { rows } = await pool.query<AttemptRow>(
        `select attempt, host, started_at, resumed_from_path, resumed_from_epoch, resumed_from_attempt, ended_at, ended_how
         from training_attempts where job_id = $1 order by attempt`,
        [jobId],
      );
      return rows.map((r) => ({
        attempt: r.attempt,
        host: r.host,
        startedAt: r.started_at.toISOString(),
        resumedFrom: r.resumed_from_path ? { path: r.resumed_from_path, epoch: r.resumed_from_epoch, attempt: r.resumed_from_attempt } : null,
        endedAt: r.ended_at?.toISOString() ?? null,
        endedHow: r.ended_how,
      }));
    },
  };
}

export type TrainingRunRepository = ReturnType<typeof createTrainingRunRepository>;
