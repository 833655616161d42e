// Schedule state in Postgres: fires (claimed once under a unique key, leased to their claimer
// until they are given an outcome, taken over when the lease runs out) and the paused flag.
// Lease times are Postgres's clock, the one clock every replica shares. Parameterised SQL only.
import type pg from 'pg';
import { withTransaction, writeAlone } from './transaction.js';

export type FireSource = 'cron' | 'catch-up' | 'trigger' | 'resume';
export type FireOutcome = 'claimed' | 'enqueued' | 'skipped' | 'missed' | 'failed';

export interface Fire {
  id: number;
  schedule: string;
  scheduledFor: string;
  manual: boolean;
  source: FireSource;
  outcome: FireOutcome;
  jobIds: string[];
  reason: string | null;
  actor: string;
  interval: { start: string; end: string } | null;
  createdAt: string;
  /** The replica that claimed the fire (null on fires recorded before claims were leased). */
  claimedBy: string | null;
  /** The replica that took the claim over when its lease ran out, and finished it. */
  repairedBy: string | null;
  repairedAt: string | null;
}

export interface ScheduleState {
  schedule: string;
  knownSince: string;
  paused: boolean;
  pausedBy: string | null;
  pausedReason: string | null;
  pausedAt: string | null;
  resumedAt: string | null;
}

const FIRE_COLUMNS =
  'id, schedule, scheduled_for, manual, source, outcome, job_ids, reason, actor, interval_start, interval_end, created_at, claimed_by, repaired_by, repaired_at';

interface FireRow {
  id: string;
  schedule: string;
  scheduled_for: Date;
  manual: boolean;
  source: FireSource;
  outcome: FireOutcome;
  job_ids: string[];
  reason: string | null;
  actor: string;
  interval_start: Date | null;
  interval_end: Date | null;
  created_at: Date;
  claimed_by: string | null;
  repaired_by: string | null;
  repaired_at: Date | null;
}

const toFire = (r: FireRow): Fire => ({
  id: Number(r.id),
  schedule: r.schedule,
  scheduledFor: r.scheduled_for.toISOString(),
  manual: r.manual,
  source: r.source,
  outcome: r.outcome,
  jobIds: r.job_ids,
  reason: r.reason,
  actor: r.actor,
  interval: r.interval_start && r.interval_end ? { start: r.interval_start.toISOString(), end: r.interval_end.toISOString() } : null,
  createdAt: r.created_at.toISOString(),
  claimedBy: r.claimed_by,
  repairedBy: r.repaired_by,
  repairedAt: r.repaired_at?.toISOString() ?? null,
});

const iso = (d: Date | null) => d?.toISOString() ?? null;

export function createScheduleRepository(pool: pg.Pool) {
  return {
    /** Records that a schedule exists (from now on missed fires count) and returns its state. */
    async ensure(schedule: string): Promise<ScheduleState> {
      await pool.query('insert into schedule_state (schedule) values ($1) on conflict (schedule) do nothing', [schedule]);
      return (await this.state(schedule))!;
    },

    async state(schedule: string): Promise<ScheduleState | undefined> {
      const { rows } = await pool.query(
        'select schedule, known_since, paused, paused_by, paused_reason, paused_at, resumed_at from schedule_state where schedule = $1',
        [schedule],
      );
      const r = rows[0];
      if (!r) return undefined;
      return {
        schedule: r.schedule,
        knownSince: (r.known_since as Date).toISOString(),
        paused: r.paused,
        pausedBy: r.paused_by,
        pausedReason: r.paused_reason,
        pausedAt: iso(r.paused_at),
        resumedAt: iso(r.resumed_at),
      };
    },

    /**
     * Claims a fire for `claimedBy`, leased for `leaseMs`. Exactly one caller gets it, however
     * many replicas try; a paused schedule's cron fires are not claimed at all (manual triggers are).
     */
    async claim(f: {
      schedule: string;
      scheduledFor: Date;
      manual: boolean;
      source: FireSource;
      actor: string;
      interval: { start: Date; end: Date } | null;
      claimedBy: string;
      leaseMs: number;
    }): Promise<Fire | undefined> {
      const { rows } = await pool.query<FireRow>(
        `insert into schedule_fires (schedule, scheduled_for, manual, source, outcome, actor, interval_start, interval_end, claimed_by, claimed_until)
         select $1, $2, $3, $4, 'claimed', $5, $6, $7, $8, now() + $9::int * interval '1 millisecond'
         where $3 or not exists (select 1 from schedule_state where schedule = $1 and paused)
         on conflict (schedule, scheduled_for, manual) do nothing
         returning ${FIRE_COLUMNS}`,
        [f.schedule, f.scheduledFor, f.manual, f.source, f.actor, f.interval?.start ?? null, f.interval?.end ?? null, f.claimedBy, f.leaseMs],
      );
      return rows[0] ? toFire(rows[0]) : undefined;
    },

    /**
     * Gives a claimed fire its outcome, if `by` still holds the claim (it claimed the fire, or took
     * it over, last); false when another replica has taken it over or settled it meanwhile.
     */
    async settle(id: number, by: string, outcome: Exclude<FireOutcome, 'claimed'>, jobIds: string[], reason: string | null): Promise<boolean> {
      const { rowCount } = await pool.query(
        `update schedule_fires set outcome = $3, job_ids = $4, reason = $5, updated_at = now()
         where id = $1 and outcome = 'claimed' and coalesce(repaired_by, claimed_by) is not distinct from $2`,
        [id, by, outcome, jobIds, reason],
      );
      return rowCount === 1;
    },

    /**
     * Takes over, for `by`, up to `limit` claimed fires of these schedules whose lease has run out
     * (their claimer died or hangs between claiming and settling), each leased anew for `leaseMs`.
     * Replicas repairing at once never take the same fire.
     */
    async takeOverExpired(schedules: string[], by: string, leaseMs: number, limit = 50): Promise<(Fire & { abandonedBy: string | null })[]> {
      const { rows } = await pool.query<FireRow & { abandoned_by: string | null }>(
        `with expired as (
           select id, coalesce(repaired_by, claimed_by) as abandoned_by from schedule_fires
           where outcome = 'claimed' and schedule = any($1::text[])
             -- a claim made before claims were leased: the old rule, 60 s after it was made
             and coalesce(claimed_until, updated_at + interval '60 seconds') < now()
           order by scheduled_for
           limit $4
           for update skip locked
         )
         update schedule_fires f
            set repaired_by = $2, repaired_at = now(), claimed_until = now() + $3::int * interval '1 millisecond', updated_at = now()
           from expired where f.id = expired.id
         returning ${FIRE_COLUMNS.split(', ').map((c) => `f.${c}`).join(', ')}, expired.abandoned_by`,
        [schedules, by, leaseMs, limit],
      );
      return rows.map((r) => ({ ...toFire(r), abandonedBy: r.abandoned_by }));
    },

    /** Records fires that will not run (outside the catch-up window), once each. */
    async recordMissed(schedule: string, times: Date[], reason: string): Promise<void> {
      if (times.length === 0) return;
      await pool.query(
        `insert into schedule_fires (schedule, scheduled_for, manual, source, outcome, reason, actor)
         select $1, t, false, 'catch-up', 'missed', $3, 'scheduler' from unnest($2::timestamptz[]) as t
         on conflict (schedule, scheduled_for, manual) do nothing`,
        [schedule, times, reason],
      );
    },

    /** Fires settled as missed or failed after `since`, oldest first, with when that was recorded. */
    async problemsSince(since: Date, limit = 10_000): Promise<(Fire & { settledAt: string })[]> {
      const { rows } = await pool.query<FireRow & { updated_at: Date }>(
        `select ${FIRE_COLUMNS}, updated_at from schedule_fires
         where outcome in ('missed', 'failed') and updated_at > $1 order by updated_at, id limit $2`,
        [since, limit],
      );
      return rows.map((r) => ({ ...toFire(r), settledAt: r.updated_at.toISOString() }));
    },

    /** The newest non-manual fire, whatever its outcome: catch-up starts after it. */
    async lastScheduled(schedule: string): Promise<Fire | undefined> {
      const { rows } = await pool.query<FireRow>(
        `select ${FIRE_COLUMNS} from schedule_fires where schedule = $1 and not manual order by scheduled_for desc limit 1`,
        [schedule],
      );
      return rows[0] ? toFire(rows[0]) : undefined;
    },

    /** Job ids of the newest enqueued fires: the runs the overlap policy looks at. */
    async recentJobIds(schedule: string, limit = 10): Promise<string[]> {
      const { rows } = await pool.query<{ job_ids: string[] }>(
        `select job_ids from schedule_fires where schedule = $1 and outcome = 'enqueued' order by scheduled_for desc limit $2`,
        [schedule, limit],
      );
      return rows.flatMap((r) => r.job_ids);
    },

    async lastEnqueued(schedule: string): Promise<Fire | undefined> {
      const { rows } = await pool.query<FireRow>(
        `select ${FIRE_COLUMNS} from schedule_fires where schedule = $1 and outcome = 'enqueued' order by scheduled_for desc limit 1`,
        [schedule],
      );
      return rows[0] ? toFire(rows[0]) : undefined;
    },

    async history(schedule: string, limit: number): Promise<Fire[]> {
      const { rows } = await pool.query<FireRow>(
        `select ${FIRE_COLUMNS} from schedule_fires where schedule = $1 order by scheduled_for desc, id desc limit $2`,
        [schedule, limit],
      );
      return rows.map(toFire);
    },

    /** The newest fire of each schedule, for the list view. */
    async lastFires(): Promise<Map<string, Fire>> {
      const { rows } = await pool.query<FireRow>(
        `select distinct on (schedule) ${FIRE_COLUMNS} from schedule_fires order by schedule, scheduled_for desc, id desc`,
      );
      return new Map(rows.map((r) => [r.schedule, toFire(r)]));
    },

    async allStates(): Promise<Map<string, ScheduleState>> {
      const { rows } = await pool.query('select schedule from schedule_state');
      const states = await Promise.all(rows.map((r) => this.state(r.schedule as string)));
      return new Map(states.filter((s): s is ScheduleState => s !== undefined).map((s) => [s.schedule, s]));
    },

    /**
     * Pausing a paused schedule changes nothing (the first pause's who and why stand). One
     * statement in its own transaction, so a pause that fails leaves no trace (not even the
     * schedule's state row), however late it reaches Postgres.
     */
    async pause(schedule: string, by: string, reason: string | null): Promise<ScheduleState> {
      await writeAlone(
        pool,
        `insert into schedule_state (schedule, paused, paused_by, paused_reason, paused_at) values ($1, true, $2, $3, now())
         on conflict (schedule) do update set paused = true, paused_by = $2, paused_reason = $3, paused_at = now(), updated_at = now()
         where not schedule_state.paused`,
        [schedule, by, reason],
      );
      return (await this.state(schedule))!;
    },

    /**
     * Resuming sets the point catch-up starts from, so fires missed while paused are not replayed.
     * One transaction: a resume that fails leaves no trace.
     */
    async resume(schedule: string): Promise<{ state: ScheduleState; wasPaused: boolean; pausedAt: string | null }> {
      const before = await withTransaction(pool, async (client) => {
        await client.query('insert into schedule_state (schedule) values ($1) on conflict (schedule) do nothing', [schedule]);
        const { rows } = await client.query<{ paused: boolean; paused_at: Date | null }>(
          'select paused, paused_at from schedule_state where schedule = $1 for update',
          [schedule],
        );
        await client.query(`update schedule_state set paused = false, resumed_at = now(), updated_at = now() where schedule = $1 and paused`, [schedule]);
        return rows[0]!;
      });
      return { state: (await this.state(schedule))!, wasPaused: before.paused, pausedAt: iso(before.paused_at) };
    },
  };
}

export type ScheduleRepository = ReturnType<typeof createScheduleRepository>;
