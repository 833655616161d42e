// `caelum-scheduler enqueue <kind> ...`: adds a job through the API (the same enqueue function
// serves it) and, with --wait, follows it to the end with a progress line.
import { parseArgs } from 'node:util';
import type { Env } from '../config/env.js';
import { ValidationError } from '../errors.js';
import { isJobKind, JOB_KINDS } from '../queues/kinds.js';
import { apiClient } from './api-client.js';
import { followCheckpoints, watchJob } from './watch-job.js';

export const CLIENT_HELP = `Connection (every command that talks to the API):
  --url <url>           the API (default CAELUM_API_URL, else http://127.0.0.1:$PORT)
  --token <token>       a bearer token (default CAELUM_API_TOKEN, else CAELUM_READ_TOKEN for reads)
  --json                print JSON instead of text`;

export const ENQUEUE_HELP = `Usage: caelum-scheduler enqueue <kind> [options]

Adds a job to its queue (kinds: ${JOB_KINDS.join(', ')}) and prints {id, kind, queue, state}.

Options:
  --model <name>        model (training, deploy-test, backtest)
  --symbols <A,B,...>   symbols (backtest, training)
  --symbol <S>          symbol (data-sync)
  --timeframe <tf>      e.g. 1d, 1h (backtest, data-sync)
  --source <name>       data source (data-sync)
  --checkpoint <id>     checkpoint id, or "promoted" for backtest
  --param <k=v>         a training parameter; repeat for more
  --data <json>         the whole payload as JSON (flags above override its fields)
  --wait                follow the job: a live progress line; exit 0 when it completes, 1 when it fails.
                        A training then prints the checkpoint it registered and its validation verdict
  -h, --help            this text

${CLIENT_HELP}`;

export const CLIENT_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
} as const;

function scalar(value: string): string | number | boolean {
  if (value === 'true' || value === 'false') return value === 'true';
  const n = Number(value);
  return value.trim() !== '' && Number.isFinite(n) ? n : value;
}

type Options = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>;
export type ArgValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export function strictArgs(args: string[], options: Options): { values: ArgValues; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as ArgValues, positionals };
  } catch (err) {
    // node:util names the bad flag in its message; keep it, drop the stack.
    throw new ValidationError(err instanceof Error ? err.message : String(err));
  }
}

export function clientFor(env: Env, values: ArgValues, write: boolean) {
  const url = typeof values.url === 'string' ? values.url : (env.apiUrl ?? `http://127.0.0.1:${env.port}`);
  if (typeof values.token === 'string') return apiClient({ url, token: values.token, tokenFrom: '--token' });
  if (write || env.apiToken) return apiClient({ url, token: env.apiToken, tokenFrom: 'CAELUM_API_TOKEN' });
  return apiClient({ url, token: env.readToken, tokenFrom: 'CAELUM_READ_TOKEN' });
}

export function payloadFromArgs(args: string[]) {
  const { values, positionals } = strictArgs(args, {
    model: { type: 'string' },
    symbols: { type: 'string' },
    symbol: { type: 'string' },
    timeframe: { type: 'string' },
    source: { type: 'string' },
    checkpoint: { type: 'string' },
    param: { type: 'string', multiple: true },
    data: { type: 'string' },
    wait: { type: 'boolean' },
    ...CLIENT_OPTIONS,
  });
  const kind = positionals[0];
  if (!kind || positionals.length > 1) throw new ValidationError(`name one job kind: ${JOB_KINDS.join(', ')}`);
  let payload: Record<string, unknown> = {};
  if (typeof values.data === 'string') {
    try {
      payload = JSON.parse(values.data) as Record<string, unknown>;
    } catch {
      throw new ValidationError('--data is not valid JSON', [{ path: 'data', message: 'not valid JSON' }]);
    }
  }
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  if (str(values.model)) payload.model = values.model;
  if (str(values.symbols)) payload.symbols = str(values.symbols)!.split(',').map((s) => s.trim()).filter(Boolean);
  if (str(values.symbol)) payload.symbol = values.symbol;
  if (str(values.timeframe)) payload.timeframe = values.timeframe;
  if (str(values.source)) payload.source = values.source;
  if (str(values.checkpoint)) payload.checkpoint = values.checkpoint === 'promoted' ? 'promoted' : scalar(str(values.checkpoint)!);
  for (const p of (values.param as string[] | undefined) ?? []) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new ValidationError(`--param ${p}: expected key=value`, [{ path: 'params', message: `expected key=value, got "${p}"` }]);
    payload.params = { ...(payload.params as object | undefined), [p.slice(0, eq)]: scalar(p.slice(eq + 1)) };
  }
  return { kind, payload, values };
}

/** Returns the process exit code. */
export async function enqueueCommand(args: string[], env: Env): Promise<number> {
  const { kind, payload, values } = payloadFromArgs(args);
  if (!isJobKind(kind)) throw new ValidationError(`unknown job kind "${kind}"; known: ${JOB_KINDS.join(', ')}`);
  const api = clientFor(env, values, true);
  const job = await api.postIdempotent<{ id: string; state: string; waitsFor?: string[] }>(`/api/jobs/${kind}`, payload, (err, ms) =>
    process.stderr.write(`${err.message.split('\n')[0]}; trying again in ${ms / 1000} s (the same request: it adds one job however often it arrives)\n`),
  );
  if (!values.wait) {
    process.stdout.write((values.json ? JSON.stringify(job) : `${job.id}  ${job.state}`) + '\n');
    return 0;
  }
  if (!values.json) process.stdout.write(`${job.id}  enqueued\n`);
  const out = values.json ? (process.stderr as NodeJS.WriteStream) : process.stdout;
  const final = await watchJob(api, job.id, out, { waitsFor: job.waitsFor });
  if (values.json) process.stdout.write(JSON.stringify(final) + '\n');
  else if (final.state === 'failed') process.stdout.write(`failed: ${final.failureReason ?? 'unknown reason'}\n`);
  else {
    process.stdout.write(`completed\n`);
    if (kind === 'training') await followCheckpoints(api, final, process.stdout);
  }
  return final.state === 'completed' ? 0 : 1;
}
