// backtest_results: one row per (backtest job, symbol), idempotent on both; and the queries a
// researcher asks of them, computed in SQL.
import type pg from 'pg';

export interface BacktestRow {
  jobId: string;
  model: string;
  checkpointId: number | null;
  symbol: string;
  timeframe: string;
  windowFrom: string | null;
  windowTo: string | null;
  sharpeRatio: number | null;
  totalReturn: number | null;
  maxDrawdown: number | null;
  winRate: number | null;
  trades: number | null;
  createdAt?: string;
}

export const GROUP_BY = ['model', 'symbol', 'checkpoint'] as const;
export type GroupBy = (typeof GROUP_BY)[number];
// Column names come from this fixed map, never from the request.
const GROUP_COLUMN: Record<GroupBy, string> = { model: 'model', symbol: 'symbol', checkpoint: 'checkpoint_id' };

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

function toRow(r: Record<string, unknown>): BacktestRow {
  return {
    jobId: r.job_id as string,
    model: r.model as string,
    checkpointId: num(r.checkpoint_id),
    symbol: r.symbol as string,
    timeframe: r.timeframe as string,
    windowFrom: r.window_from ? (r.window_from as Date).toISOString() : null,
    windowTo: r.window_to ? (r.window_to as Date).toISOString() : null,
    sharpeRatio: num(r.sharpe_ratio),
    totalReturn: num(r.total_return),
    maxDrawdown: num(r.max_drawdown),
    winRate: num(r.win_rate),
    trades: num(r.trades),
    createdAt: (r.created_at as Date).toISOString(),
  };
}

export function createBacktestRepository(pool: pg.Pool) {
  return {
    /** Records a job's rows; a rerun of the same job records nothing new. */
    async record(rows: BacktestRow[]): Promise<number> {
      if (rows.length === 0) return 0;
      const { rowCount } = await pool.query(
        `insert into backtest_results (job_id, model, checkpoint_id, symbol, timeframe, window_from, window_to,
           sharpe_ratio, total_return, max_drawdown, win_rate, trades)
         select * from unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[],
           $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::int[])
         on conflict (job_id, symbol) do nothing`,
        [
          rows.map((r) => r.jobId),
          rows.map((r) => r.model),
          rows.map((r) => r.checkpointId),
          rows.map((r) => r.symbol),
          rows.map((r) => r.timeframe),
          rows.map((r) => r.windowFrom),
          rows.map((r) => r.windowTo),
          rows.map((r) => r.sharpeRatio),
          rows.map((r) => r.totalReturn),
          rows.map((r) => r.maxDrawdown),
          rows.map((r) => r.winRate),
          rows.map((r) => r.trades),
        ],
      );
      return rowCount ?? 0;
    },

    async list(q: { model?: string; symbol?: string; checkpointId?: number; since?: string; limit: number; offset: number }) {
      const { rows } = await pool.query(
        `select *, count(*) over () as total from backtest_results
         where ($1::text is null or model = $1) and ($2::text is null or symbol = $2)
           and ($3::bigint is null or checkpoint_id = $3) and ($4::timestamptz is null or created_at >= $4)
         order by created_at desc, id desc limit $5 offset $6`,
        [q.model ?? null, q.symbol ?? null, q.checkpointId ?? null, q.since ?? null, q.limit, q.offset],
      );
      return { results: rows.map(toRow), total: rows[0] ? Number(rows[0].total) : 0 };
    },

    async forJobs(jobIds: string[]): Promise<BacktestRow[]> {
      const { rows } = await pool.query('select * from backtest_results where job_id = any($1::text[]) order by symbol', [jobIds]);
      return rows.map(toRow);
    },

    /** Averages, best and count per group, e.g. "average sharpe ratio per model over the last week". */
    async summary(q: { groupBy: GroupBy; since?: string; model?: string }) {
      const column = GROUP_COLUMN[q.groupBy];
      const { rows } = await pool.query(
        `select ${column}::text as key, count(*)::int as count,
                avg(sharpe_ratio) as avg_sharpe_ratio, max(sharpe_ratio) as best_sharpe_ratio,
                avg(total_return) as avg_total_return, max(total_return) as best_total_return,
                avg(max_drawdown) as avg_max_drawdown, avg(win_rate) as avg_win_rate, sum(trades)::int as trades
         from backtest_results
         where ($1::timestamptz is null or created_at >= $1) and ($2::text is null or model = $2)
         group by ${column} order by avg(sharpe_ratio) desc nulls last`,
        [q.since ?? null, q.model ?? null],
      );
      return rows.map((r) => ({
        [q.groupBy]: r.key,
        count: r.count,
        avgSharpeRatio: num(r.avg_sharpe_ratio),
        bestSharpeRatio: num(r.best_sharpe_ratio),
        avgTotalReturn: num(r.avg_total_return),
        bestTotalReturn: num(r.best_total_return),
        avgMaxDrawdown: num(r.avg_max_drawdown),
        avgWinRate: num(r.avg_win_rate),
        trades: r.trades,
      }));
    },
  };
}

export type BacktestRepository = ReturnType<typeof createBacktestRepository>;
