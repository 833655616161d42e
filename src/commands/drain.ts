// `caelum-scheduler drain <host>` and `undrain <host>`: take a host, or one GPU of it, out of
// service and back, through the API (POST /api/workers/{host}/drain and /undrain).
import type { Env } from '../config/env.js';
import { ValidationError } from '../errors.js';
import { CLIENT_HELP, CLIENT_OPTIONS, clientFor, strictArgs } from './enqueue.js';

export const DRAIN_HELP = `Usage: caelum-scheduler drain <host> --reason <text> [--gpu <index>] [--now]

Starts no new job on the host, or on one GPU of it. Running jobs finish, unless --now hands them
back to their queues: they run again on another host of their pool, or here after undrain,
without using an attempt. The drain outlives worker restarts, and every job waiting on the host
names it in its waitingFor. Drain again to change the reason. Prints what is drained now.

Options:
  --reason <text>   why (required, one line, up to 200 characters)
  --gpu <index>     drain this GPU only
  --now             hand the running jobs it covers back instead of letting them finish
  -h, --help        this text

${CLIENT_HELP}`;

export const UNDRAIN_HELP = `Usage: caelum-scheduler undrain <host> [--gpu <index>]

Puts the host back in service: lifts its drain and the drain of every one of its GPUs. With
--gpu, lifts that GPU's own drain only (a drain of the whole host still covers it). Prints what
is still drained.

Options:
  --gpu <index>     lift this GPU's drain only
  -h, --help        this text

${CLIENT_HELP}`;

interface Drain {
  reason: string;
  by: string;
  at: string;
  now: boolean;
}
interface HostDrainState {
  host: string;
  drained: Drain | null;
  gpus: (Drain & { gpu: number })[];
}

/** Returns the process exit code. */
export async function drainCommand(command: 'drain' | 'undrain', args: string[], env: Env): Promise<number> {
  const { values, positionals } = strictArgs(args, {
    ...(command === 'drain' ? { reason: { type: 'string' }, now: { type: 'boolean' } } : {}),
    gpu: { type: 'string' },
    ...CLIENT_OPTIONS,
  });
  const [host, ...extra] = positionals;
  if (!host || extra.length > 0) throw new ValidationError(`name one host: caelum-scheduler ${command} <host>`);
  const body: Record<string, unknown> = {};
  if (typeof values.gpu === 'string') {
    if (!/^\d{1,6}$/.test(values.gpu)) throw new ValidationError(`--gpu: expected a GPU index (a whole number), got "${values.gpu}"`);
    body.gpu = Number(values.gpu);
  }
  if (command === 'drain') {
    if (typeof values.reason !== 'string') throw new ValidationError('--reason is required: say why (jobs waiting on the host show it)');
    body.reason = values.reason;
    if (values.now) body.now = true;
  }
  const api = clientFor(env, values, true);
  const state = await api.post<HostDrainState>(`/api/workers/${encodeURIComponent(host)}/${command}`, body);
  process.stdout.write(values.json ? JSON.stringify(state, null, 2) + '\n' : describe(state));
  return 0;
}

function describe(state: HostDrainState): string {
  const why = (d: Drain) => `drained: ${d.reason} (by ${d.by} at ${d.at}${d.now ? '; its running jobs handed back' : ''})`;
  const lines = [`${state.host}: ${state.drained ? why(state.drained) : 'in service'}`];
  for (const g of state.gpus) lines.push(`  GPU ${g.gpu} ${why(g)}`);
  return lines.join('\n') + '\n';
}
