// `caelum-scheduler research`: starts a research pipeline through the API and, with --wait,
// shows its steps with their progress until the summary, which it prints as a table.
import type { Env } from '../config/env.js';
import { ValidationError } from '../errors.js';
import { CLIENT_HELP, CLIENT_OPTIONS, clientFor, strictArgs } from './enqueue.js';
import { table } from './table.js';

export const RESEARCH_HELP = `Usage: caelum-scheduler research --model <model> --symbols <A,B,...> [options]

Trains the model on the primary symbol, backtests the checkpoint it produces (and the promoted
one) on every symbol in parallel, and summarises.

Options:
  --model <name>          the model
  --symbols <A,B,...>     symbols to backtest on
  --primary <S>           symbol to train on (default: the first of --symbols)
  --timeframe <tf>        e.g. 1d (default 1d)
  --test-from, --test-to  the backtest window (dates)
  --wait                  follow it to the summary; exit 0 when it completes, 1 when it fails

${CLIENT_HELP}`;

interface Step {
  id: string;
  state: string;
  progress: unknown;
  symbol?: string;
  checkpoint?: string;
}
interface Figures {
  sharpeRatio: number | null;
  totalReturn: number | null;
  maxDrawdown: number | null;
  winRate: number | null;
}
interface PipelineView {
  id: string;
  state: string;
  steps: { training: Step; backtests: Step[]; summary: Step };
  summary: {
    checkpoint: { label: string };
    promoted: { label: string } | null;
    symbols: { symbol: string; candidate: Figures | null; promoted: Figures | null; sharpeDelta: number | null }[];
    overall: { candidate: Figures | null; promoted: Figures | null; sharpeDelta: number | null };
    verdict: string;
    failed: { job: string; reason: string }[];
  } | null;
}

const pct = (p: unknown) => {
  const v = p as { percent?: number } | null;
  return v && typeof v.percent === 'number' ? ` ${v.percent}%` : '';
};

export function stepsLine(view: PipelineView): string {
  const b = view.steps.backtests;
  const done = b.filter((s) => s.state === 'completed' || s.state === 'failed').length;
  return `${view.state}  training: ${view.steps.training.state}${pct(view.steps.training.progress)}  backtests: ${done}/${b.length || '?'} done  summary: ${view.steps.summary.state}`;
}

export function summaryTable(s: NonNullable<PipelineView['summary']>): string {
  const f = (x: Figures | null) => (x ? [x.sharpeRatio, x.totalReturn, x.maxDrawdown, x.winRate] : [null, null, null, null]);
  const rows = [
    ...s.symbols.map((r) => [r.symbol, ...f(r.candidate), r.promoted?.sharpeRatio ?? null, r.sharpeDelta]),
    ['overall', ...f(s.overall.candidate), s.overall.promoted?.sharpeRatio ?? null, s.overall.sharpeDelta],
  ];
  return (
    `${s.checkpoint.label} against ${s.promoted?.label ?? 'no promoted checkpoint'}: ${s.verdict}\n` +
    table(['SYMBOL', 'SHARPE', 'RETURN', 'DRAWDOWN', 'WIN RATE', 'PROMOTED SHARPE', 'DELTA'], rows) +
    s.failed.map((x) => `failed: ${x.job}: ${x.reason}\n`).join('')
  );
}

export async function researchCommand(args: string[], env: Env): Promise<number> {
  const { values, positionals } = strictArgs(args, {
    model: { type: 'string' },
    symbols: { type: 'string' },
    primary: { type: 'string' },
    timeframe: { type: 'string' },
    'test-from': { type: 'string' },
    'test-to': { type: 'string' },
    wait: { type: 'boolean' },
    ...CLIENT_OPTIONS,
  });
  if (positionals.length) throw new ValidationError(`research takes no arguments (got ${positionals.join(' ')})`);
  const symbols = typeof values.symbols === 'string' ? values.symbols.split(',').map((s) => s.trim()).filter(Boolean) : [];
  const body = {
    model: values.model,
    primarySymbol: (values.primary as string | undefined) ?? symbols[0],
    symbols,
    ...(values.timeframe ? { timeframe: values.timeframe } : {}),
    ...(values['test-from'] || values['test-to'] ? { testWindow: { from: values['test-from'], to: values['test-to'] } } : {}),
  };
  const api = clientFor(env, values, true);
  const started = await api.post<{ id: string }>('/api/pipelines/research', body);
  if (!values.wait) {
    process.stdout.write((values.json ? JSON.stringify(started) : started.id) + '\n');
    return 0;
  }
  const out = values.json ? process.stderr : process.stdout;
  out.write(`pipeline ${started.id}  started (GET /api/pipelines/${started.id} shows it)\n`);
  let last = '';
  for (;;) {
    const view = await api.get<PipelineView>(`/api/pipelines/${started.id}`);
    const line = stepsLine(view);
    if (line !== last) {
      out.write(out.isTTY ? `\r\x1b[2K${line}` : `${line}\n`);
      last = line;
    }
    if (view.state === 'completed' || view.state === 'failed') {
      if (out.isTTY) out.write('\n');
      if (values.json) process.stdout.write(JSON.stringify(view) + '\n');
      else if (view.summary) process.stdout.write(summaryTable(view.summary));
      return view.state === 'completed' ? 0 : 1;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
