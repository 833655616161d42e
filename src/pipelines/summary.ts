// The summary of a research pipeline: per symbol and overall sharpe, return, drawdown and win
// rate of the new checkpoint, and the same for the promoted one on the same symbols and window.
import type { BacktestRow } from '../registry/backtests.js';

const METRICS = ['sharpeRatio', 'totalReturn', 'maxDrawdown', 'winRate'] as const;
type Figures = Record<(typeof METRICS)[number], number | null> & { trades: number };

function figures(rows: BacktestRow[]): Figures | null {
  if (rows.length === 0) return null;
  const avg = (k: (typeof METRICS)[number]) => {
    const vs = rows.map((r) => r[k]).filter((v): v is number => v !== null);
    return vs.length ? +(vs.reduce((a, b) => a + b, 0) / vs.length).toFixed(4) : null;
  };
  return {
    sharpeRatio: avg('sharpeRatio'),
    totalReturn: avg('totalReturn'),
    maxDrawdown: avg('maxDrawdown'),
    winRate: avg('winRate'),
    trades: rows.reduce((a, r) => a + (r.trades ?? 0), 0),
  };
}

const delta = (a: Figures | null, b: Figures | null) =>
  a && b && a.sharpeRatio !== null && b.sharpeRatio !== null ? +(a.sharpeRatio - b.sharpeRatio).toFixed(4) : null;

export function summarise(
  symbols: string[],
  candidate: { id: number; label: string },
  live: { id: number; label: string } | null,
  rows: BacktestRow[],
  failed: { job: string; reason: string }[],
) {
  const of = (checkpointId: number, symbol?: string) =>
    rows.filter((r) => r.checkpointId === checkpointId && (symbol === undefined || r.symbol === symbol));
  const perSymbol = symbols.map((symbol) => {
    const c = figures(of(candidate.id, symbol));
    const l = live ? figures(of(live.id, symbol)) : null;
    return { symbol, candidate: c, promoted: l, sharpeDelta: delta(c, l) };
  });
  const overallCandidate = figures(of(candidate.id));
  const overallLive = live ? figures(of(live.id)) : null;
  const d = delta(overallCandidate, overallLive);
  return {
    checkpoint: candidate,
    promoted: live,
    symbols: perSymbol,
    overall: { candidate: overallCandidate, promoted: overallLive, sharpeDelta: d },
    verdict:
      d === null ? 'no promoted checkpoint to compare with' : d > 0 ? 'better than the promoted checkpoint' : d < 0 ? 'worse than the promoted checkpoint' : 'the same as the promoted checkpoint',
    failed,
  };
}
