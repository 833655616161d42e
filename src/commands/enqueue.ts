// `caelum-scheduler enqueue <kind> ...`: adds a job through the same enqueue function as the API.
import os from 'node:os';
import { parseArgs } from 'node:util';
import type { Env } from '../config/env.js';
import { DEFAULT_REDIS_URL } from '../config/env.js';
import { loadFleet } from '../config/load-fleet.js';
import { ValidationError } from '../errors.js';
import type { Logger } from '../logger.js';
import { enqueue } from '../queues/enqueue.js';
import { isJobKind, JOB_KINDS } from '../queues/kinds.js';
import { QueueSet } from '../queues/queue-set.js';
import { closeRedis, createRedis, waitForRedis } from '../redis.js';

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
  -h, --help            this text

Environment: REDIS_URL, CAELUM_CONFIG, CAELUM_PREFIX.`;

function scalar(value: string): string | number | boolean {
  if (value === 'true' || value === 'false') return value === 'true';
  const n = Number(value);
  return value.trim() !== '' && Number.isFinite(n) ? n : value;
}

export function payloadFromArgs(args: string[]): { kind: string; payload: Record<string, unknown> } {
  let parsed;
  try {
    parsed = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      model: { type: 'string' },
      symbols: { type: 'string' },
      symbol: { type: 'string' },
      timeframe: { type: 'string' },
      source: { type: 'string' },
      checkpoint: { type: 'string' },
      param: { type: 'string', multiple: true },
      data: { type: 'string' },
    },
  });
  } catch (err) {
    // node:util names the bad flag in its message; keep it, drop the stack.
    throw new ValidationError(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  const kind = positionals[0];
  if (!kind || positionals.length > 1) throw new ValidationError(`name one job kind: ${JOB_KINDS.join(', ')}`);
  let payload: Record<string, unknown> = {};
  if (values.data) {
    try {
      payload = JSON.parse(values.data) as Record<string, unknown>;
    } catch {
      throw new ValidationError('--data is not valid JSON', [{ path: 'data', message: 'not valid JSON' }]);
    }
  }
  if (values.model) payload.model = values.model;
  if (values.symbols) payload.symbols = values.symbols.split(',').map((s) => s.trim()).filter(Boolean);
  if (values.symbol) payload.symbol = values.symbol;
  if (values.timeframe) payload.timeframe = values.timeframe;
  if (values.source) payload.source = values.source;
  if (values.checkpoint) payload.checkpoint = values.checkpoint === 'promoted' ? 'promoted' : scalar(values.checkpoint);
  for (const p of values.param ?? []) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new ValidationError(`--param ${p}: expected key=value`, [{ path: 'params', message: `expected key=value, got "${p}"` }]);
    payload.params = { ...(payload.params as object | undefined), [p.slice(0, eq)]: scalar(p.slice(eq + 1)) };
  }
  return { kind, payload };
}

export async function enqueueCommand(args: string[], env: Env, logger: Logger): Promise<void> {
  const { kind, payload } = payloadFromArgs(args);
  if (!isJobKind(kind)) throw new ValidationError(`unknown job kind "${kind}"; known: ${JOB_KINDS.join(', ')}`);
  const fleet = await loadFleet(env.configPath);
  const url = env.redisUrl ?? DEFAULT_REDIS_URL;
  const redis = createRedis(url, 'producer', logger);
  const queues = new QueueSet(fleet, redis, env.prefix, logger);
  try {
    await waitForRedis(redis, url);
    const job = await enqueue({ fleet, queues }, kind, payload, {
      reason: 'cli',
      by: os.userInfo().username,
      at: new Date().toISOString(),
    });
    process.stdout.write(JSON.stringify(job) + '\n');
  } finally {
    await queues.close();
    await closeRedis(redis);
  }
}
