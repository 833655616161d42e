// The checkpoint registry: registration, status writes with their history, FinColl's loads and
// the feed. Parameterised SQL only. Which status changes are allowed is the checkpoint
// lifecycle's decision (src/checkpoints/transitions.ts); each write here takes the statuses it
// may start from and, under the row lock, applies only when the row is in one of them.
import type pg from 'pg';
import { NotFoundError } from '../errors.js';
import { lockModel, withTransaction } from './transaction.js';
import { COLUMNS, labelFor, toCheckpoint, type Checkpoint, type CheckpointEvent, type CheckpointStatus, type FeedCheckpoint, type RegisterInput, type Row } from './checkpoint-rows.js';

export * from './checkpoint-rows.js';

export type Queryable = pg.Pool | pg.PoolClient;

async function insertEvent(
  db: Queryable,
  id: number,
  from: string | null,
  to: string,
  actor: string,
  reason: string | null,
  details?: unknown,
): Promise<void> {
  await db.query(
    'insert into checkpoint_events (checkpoint_id, from_status, to_status, actor, reason, details) values ($1, $2, $3, $4, $5, $6)',
    [id, from, to, actor, reason, details === undefined ? null : JSON.stringify(details)],
  );
}

async function lockRow(client: pg.PoolClient, id: number): Promise<Checkpoint> {
  const { rows } = await client.query<Row>(`select ${COLUMNS} from checkpoints where id = $1 for update`, [id]);
  if (!rows[0]) throw new NotFoundError(`no checkpoint ${id}`);
  return toCheckpoint(rows[0]);
}

/** A guarded status write: applied only when the row is in one of `from` and not pruned. */
export interface StatusWrite {
  from: readonly CheckpointStatus[];
  actor: string;
  reason: string;
}

/** The row after a guarded write, and whether the write applied (if not, the row as it stands). */
/** A recorded status change, with its checkpoint's model and label. */
export interface CheckpointChange {
  eventId: number;
  checkpointId: number;
  model: string;
  label: string;
  version: number;
  fromStatus: string | null;
  toStatus: CheckpointStatus;
  actor: string;
  reason: string | null;
  details: unknown;
  at: string;
}

export interface Written {
  checkpoint: Checkpoint;
  changed: boolean;
}

async function guarded(
  pool: pg.Pool,
  id: number,
  w: StatusWrite,
  write: (client: pg.PoolClient, c: Checkpoint) => Promise<Checkpoint>,
): Promise<Written> {
  return withTransaction(pool, async (client) => {
    const c = await lockRow(client, id);
    if (c.prunedAt || !w.from.includes(c.status)) return { checkpoint: c, changed: false };
    return { checkpoint: await write(client, c), changed: true };
  });
}

export function createCheckpointRepository(pool: pg.Pool) {
  return {
    /** Idempotent on the training job id: a rerun of the same job returns the existing row. */
    async register(input: RegisterInput, actor: string): Promise<{ checkpoint: Checkpoint; created: boolean }> {
      return withTransaction(pool, async (client) => {
        const existing = await client.query<Row>(`select ${COLUMNS} from checkpoints where training_job_id = $1`, [input.trainingJobId]);
        if (existing.rows[0]) return { checkpoint: toCheckpoint(existing.rows[0]), created: false };
        await lockModel(client, input.model);
        const { rows: v } = await client.query<{ next: number }>(
          'select coalesce(max(version), 0) + 1 as next from checkpoints where model = $1',
          [input.model],
        );
        const version = v[0]!.next;
        const { rows } = await client.query<Row>(
          `insert into checkpoints (model, version, label, path, size_bytes, sha256, metrics, training_job_id, trigger, lineage, status)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'registered')
           on conflict (training_job_id) do nothing
           returning ${COLUMNS}`,
          [
            input.model,
            version,
            labelFor(input.model, input.versionMajor, version),
            input.path,
            input.sizeBytes,
            input.sha256,
            JSON.stringify(input.metrics),
            input.trainingJobId,
            JSON.stringify(input.trigger),
            JSON.stringify(input.lineage ?? {}),
          ],
        );
        if (!rows[0]) {
          const again = await client.query<Row>(`select ${COLUMNS} from checkpoints where training_job_id = $1`, [input.trainingJobId]);
          return { checkpoint: toCheckpoint(again.rows[0]!), created: false };
        }
        const checkpoint = toCheckpoint(rows[0]);
        await insertEvent(client, checkpoint.id, null, 'registered', actor, 'training reported a checkpoint', {
          trainingJobId: input.trainingJobId,
        });
        return { checkpoint, created: true };
      });
    },

    async get(id: number): Promise<Checkpoint | undefined> {
      const { rows } = await pool.query<Row>(`select ${COLUMNS} from checkpoints where id = $1`, [id]);
      return rows[0] ? toCheckpoint(rows[0]) : undefined;
    },

    async list(q: { model?: string; status?: CheckpointStatus; limit: number; offset: number }) {
      const { rows } = await pool.query<Row & { total: string }>(
        `select ${COLUMNS}, count(*) over () as total from checkpoints
         where ($1::text is null or model = $1) and ($2::text is null or status = $2)
         order by created_at desc, id desc limit $3 offset $4`,
        [q.model ?? null, q.status ?? null, q.limit, q.offset],
      );
      return { checkpoints: rows.map(toCheckpoint), total: rows[0] ? Number(rows[0].total) : 0 };
    },

    async history(id: number): Promise<CheckpointEvent[]> {
      const { rows } = await pool.query<{ from_status: string | null; to_status: string; actor: string; reason: string | null; details: unknown; created_at: Date }>(
        'select from_status, to_status, actor, reason, details, created_at from checkpoint_events where checkpoint_id = $1 order by id',
        [id],
      );
      return rows.map((r) => ({ fromStatus: r.from_status, toStatus: r.to_status, actor: r.actor, reason: r.reason, details: r.details, at: r.created_at.toISOString() }));
    },

    /**
     * Status changes to one of `statuses` recorded after `since`, oldest first, with the model and
     * label of their checkpoint: what the notifier tells of. Pruning marks (a status "changed" to
     * itself) are not changes.
     */
    async changesSince(since: Date, statuses: readonly CheckpointStatus[], limit = 10_000): Promise<CheckpointChange[]> {
      const { rows } = await pool.query<{
        id: string; checkpoint_id: string; from_status: string | null; to_status: CheckpointStatus; actor: string; reason: string | null;
        details: unknown; created_at: Date; model: string; label: string; version: number;
      }>(
        `select e.id, e.checkpoint_id, e.from_status, e.to_status, e.actor, e.reason, e.details, e.created_at, c.model, c.label, c.version
         from checkpoint_events e join checkpoints c on c.id = e.checkpoint_id
         where e.created_at > $1 and e.to_status = any($2::text[]) and e.from_status is distinct from e.to_status
         order by e.id limit $3`,
        [since, statuses, limit],
      );
      return rows.map((r) => ({
        eventId: Number(r.id),
        checkpointId: Number(r.checkpoint_id),
        model: r.model,
        label: r.label,
        version: r.version,
        fromStatus: r.from_status,
        toStatus: r.to_status,
        actor: r.actor,
        reason: r.reason,
        details: r.details,
        at: r.created_at.toISOString(),
      }));
    },

    async loads(id: number) {
      const { rows } = await pool.query<{ instance: string; details: unknown; loaded_at: Date; reported_by: string | null }>(
        'select instance, details, loaded_at, reported_by from checkpoint_loads where checkpoint_id = $1 order by id',
        [id],
      );
      return rows.map((r) => ({ instance: r.instance, details: r.details, at: r.loaded_at.toISOString(), by: r.reported_by }));
    },

    async promoted(model: string): Promise<Checkpoint | undefined> {
      const { rows } = await pool.query<Row>(`select ${COLUMNS} from checkpoints where model = $1 and status = 'promoted'`, [model]);
      return rows[0] ? toCheckpoint(rows[0]) : undefined;
    },

    /** -> validating, when the row is in one of `w.from` and not pruned. */
    async setValidating(id: number, w: StatusWrite): Promise<Written> {
      return guarded(pool, id, w, async (client, c) => {
        await client.query("update checkpoints set status = 'validating', updated_at = now() where id = $1", [id]);
        await insertEvent(client, id, c.status, 'validating', w.actor, w.reason);
        return { ...c, status: 'validating' };
      });
    },

    /** -> validated (with the next feed sequence number) or rejected (with reasons), guarded like setValidating. */
    async setVerdict(
      id: number,
      to: 'validated' | 'rejected',
      w: StatusWrite & { metrics: Record<string, unknown>; reasons: string[] },
    ): Promise<Written> {
      return guarded(pool, id, w, async (client, c) => {
        const { rows } = await client.query<Row>(
          `update checkpoints set status = $2, validation_metrics = $3, rejection_reasons = $4,
             feed_seq = case when $2 = 'validated' then nextval('checkpoint_feed_seq') else null end,
             updated_at = now()
           where id = $1 returning ${COLUMNS}`,
          [id, to, JSON.stringify(w.metrics), to === 'rejected' ? JSON.stringify(w.reasons) : null],
        );
        await insertEvent(client, id, c.status, to, w.actor, w.reason, { metrics: w.metrics });
        return toCheckpoint(rows[0]!);
      });
    },

    /** -> promoted, guarded like setValidating; the model's promoted checkpoint so far becomes superseded. */
    async setPromoted(id: number, w: StatusWrite): Promise<Written> {
      return guarded(pool, id, w, async (client, target) => {
        await lockModel(client, target.model);
        const current = await client.query<{ id: string }>("select id from checkpoints where model = $1 and status = 'promoted' for update", [target.model]);
        for (const r of current.rows) {
          await client.query("update checkpoints set status = 'superseded', updated_at = now() where id = $1", [r.id]);
          await insertEvent(client, Number(r.id), 'promoted', 'superseded', w.actor, `superseded by checkpoint ${id}`);
        }
        const { rows } = await client.query<Row>(
          `update checkpoints set status = 'promoted', updated_at = now() where id = $1 returning ${COLUMNS}`,
          [id],
        );
        await insertEvent(client, id, target.status, 'promoted', w.actor, w.reason);
        return toCheckpoint(rows[0]!);
      });
    },

    /**
     * The model's promoted checkpoint -> rolled_back, and the newest earlier one whose status is
     * in `w.from` (not pruned) -> promoted. Changes nothing unless both exist; says which were found.
     * `check` may refuse the one found (the reason comes back as `refused`, nothing changes); it
     * runs under the model's lock, so keep it to what must hold at the moment of the change.
     */
    async rollBack(
      model: string,
      w: StatusWrite,
      check: (to: Checkpoint) => Promise<string | undefined> = async () => undefined,
    ): Promise<{ from?: Checkpoint; to?: Checkpoint; refused?: string }> {
      return withTransaction(pool, async (client) => {
        await lockModel(client, model);
        const cur = await client.query<Row>(`select ${COLUMNS} from checkpoints where model = $1 and status = 'promoted' for update`, [model]);
        if (!cur.rows[0]) return {};
        const from = toCheckpoint(cur.rows[0]);
        const prev = await client.query<Row>(
          `select ${COLUMNS} from checkpoints
           where model = $1 and status = any($3::text[]) and version < $2 and pruned_at is null
           order by version desc limit 1 for update`,
          [model, from.version, w.from],
        );
        if (!prev.rows[0]) return { from };
        const to = toCheckpoint(prev.rows[0]);
        const refused = await check(to);
        if (refused) return { from, to, refused };
        await client.query("update checkpoints set status = 'rolled_back', updated_at = now() where id = $1", [from.id]);
        await insertEvent(client, from.id, 'promoted', 'rolled_back', w.actor, w.reason, { rolledBackTo: to.id });
        const { rows } = await client.query<Row>(
          `update checkpoints set status = 'promoted', updated_at = now() where id = $1 returning ${COLUMNS}`,
          [to.id],
        );
        await insertEvent(client, to.id, to.status, 'promoted', w.actor, `rollback from checkpoint ${from.id}: ${w.reason}`);
        return { from: { ...from, status: 'rolled_back' }, to: toCheckpoint(rows[0]!) };
      });
    },

    /** Adds one entry to a checkpoint's lineage (e.g. its comparison with the promoted one). */
    async addLineage(id: number, key: string, value: unknown): Promise<void> {
      await pool.query('update checkpoints set lineage = lineage || jsonb_build_object($2::text, $3::jsonb), updated_at = now() where id = $1', [
        id,
        key,
        JSON.stringify(value),
      ]);
    },

    /** `by`: the name of the token that reported it. */
    async recordLoad(id: number, instance: string, details: unknown, by: string): Promise<void> {
      const c = await this.get(id);
      if (!c) throw new NotFoundError(`no checkpoint ${id}`);
      await pool.query('insert into checkpoint_loads (checkpoint_id, instance, details, reported_by) values ($1, $2, $3, $4)', [
        id,
        instance,
        details === undefined ? null : JSON.stringify(details),
        by,
      ]);
    },

    /**
     * Validated checkpoints after the cursor, oldest first, each with when validation passed
     * (from its status history), so FinColl can tell how fresh what it loads is.
     */
    /** When each model's feed last advanced: its newest validation (models with none are absent). */
    async lastValidatedAt(): Promise<Map<string, Date>> {
      const { rows } = await pool.query<{ model: string; at: Date }>(
        `select c.model, max(e.created_at) as at from checkpoint_events e join checkpoints c on c.id = e.checkpoint_id
         where e.to_status = 'validated' group by c.model`,
      );
      return new Map(rows.map((r) => [r.model, r.at]));
    },

    /** Each model's newest feed sequence (models with nothing validated yet are absent). */
    async feedHeads(): Promise<Map<string, number>> {
      const { rows } = await pool.query<{ model: string; seq: string }>(
        'select model, max(feed_seq) as seq from checkpoints where feed_seq is not null group by model',
      );
      return new Map(rows.map((r) => [r.model, Number(r.seq)]));
    },

    async feed(q: { model?: string; after: number; limit: number }): Promise<FeedCheckpoint[]> {
      const { rows } = await pool.query<Row & { validated_at: Date }>(
        `select ${COLUMNS},
           (select min(e.created_at) from checkpoint_events e
            where e.checkpoint_id = checkpoints.id and e.to_status = 'validated') as validated_at
         from checkpoints
         where feed_seq > $1 and ($2::text is null or model = $2)
         order by feed_seq limit $3`,
        [q.after, q.model ?? null, q.limit],
      );
      return rows.map((r) => ({ ...toCheckpoint(r), validatedAt: r.validated_at.toISOString() }));
    },

    /**
     * Checkpoints to prune: beyond the newest `keep` of the model, never the promoted one, never
     * the one an instance of FinColl most recently reported loaded.
     */
    async pruneCandidates(model: string, keep: number): Promise<Checkpoint[]> {
      const { rows } = await pool.query<Row>(
        `with ranked as (
           select ${COLUMNS}, row_number() over (order by version desc) as rank
           from checkpoints where model = $1 and pruned_at is null
         ), loaded as (
           select distinct on (instance) checkpoint_id from checkpoint_loads order by instance, id desc
         )
         select ${COLUMNS} from ranked
         where rank > $2 and status <> 'promoted' and id not in (select checkpoint_id from loaded)
         order by version`,
        [model, keep],
      );
      return rows.map(toCheckpoint);
    },

    /** Sets pruned_at, guarded like setValidating; the status stays, the event says pruned. */
    async markPruned(id: number, w: StatusWrite): Promise<Written> {
      return guarded(pool, id, w, async (client, c) => {
        const { rows } = await client.query<Row>(`update checkpoints set pruned_at = now(), updated_at = now() where id = $1 returning ${COLUMNS}`, [id]);
        await insertEvent(client, id, c.status, c.status, w.actor, w.reason, { pruned: true });
        return toCheckpoint(rows[0]!);
      });
    },
  };
}

export type CheckpointRepository = ReturnType<typeof createCheckpointRepository>;
