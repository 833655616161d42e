// `jobs`, `workers`, `schedules`, `checkpoints`: tables (or --json) from the API.
import type { Env } from '../config/env.js';
import { ValidationError } from '../errors.js';
import { CLIENT_OPTIONS, clientFor, strictArgs } from './enqueue.js';
import { table } from './table.js';

type Row = Record<string, unknown>;
const pct = (p: unknown) => {
  const v = p as { percent?: number } | number | null;
  if (typeof v === 'number') return `${v}%`;
  return v && typeof v.percent === 'number' ? `${v.percent}%` : '-';
};

export const LIST_COMMANDS = ['jobs', 'workers', 'schedules', 'checkpoints'] as const;
export type ListCommand = (typeof LIST_COMMANDS)[number];

export const LIST_HELP: Record<ListCommand, string> = {
  jobs: 'Usage: caelum-scheduler jobs [--kind <kind>] [--state <state>] [--limit <n>]\n\nRecent jobs, newest first.',
  workers: 'Usage: caelum-scheduler workers\n\nLive host workers, their GPUs, running jobs and drains.',
  schedules: 'Usage: caelum-scheduler schedules\n\nSchedules with their next fire and last outcome.',
  checkpoints: 'Usage: caelum-scheduler checkpoints [--model <model>]\n\nThe checkpoint registry, newest first.',
};

export async function listCommand(command: ListCommand, args: string[], env: Env): Promise<number> {
  const { values, positionals } = strictArgs(args, {
    kind: { type: 'string' },
    state: { type: 'string' },
    model: { type: 'string' },
    limit: { type: 'string' },
    ...CLIENT_OPTIONS,
  });
  if (positionals.length) throw new ValidationError(`${command} takes no arguments (got ${positionals.join(' ')})`);
  const api = clientFor(env, values, false);
  const q = new URLSearchParams();
  for (const k of ['kind', 'state', 'model', 'limit'] as const) if (typeof values[k] === 'string') q.set(k, values[k] as string);
  const qs = q.size ? `?${q}` : '';
  const out = (data: unknown, text: () => string) => process.stdout.write(values.json ? JSON.stringify(data, null, 2) + '\n' : text());
  switch (command) {
    case 'jobs': {
      const data = await api.get<{ jobs: Row[]; total: number }>(`/api/jobs${qs}`);
      out(data, () =>
        table(
          ['ID', 'KIND', 'STATE', 'MODEL', 'PROGRESS', 'ATTEMPTS', 'CREATED'],
          data.jobs.map((j) => [j.id as string, j.kind as string, j.state as string, (j.model as string) ?? null, pct(j.progress), `${(j.attempts as { made: number }).made}/${(j.attempts as { max: number }).max}`, j.createdAt as string]),
        ) + `${data.jobs.length} of ${data.total}\n`,
      );
      break;
    }
    case 'workers': {
      const data = await api.get<{ workers: Row[] }>('/api/workers');
      out(data, () =>
        table(
          ['HOST', 'GPUS (busy/total)', 'CPU SLOTS', 'RUNNING', 'DRAINED', 'VERSION', 'HEARTBEAT'],
          data.workers.map((w) => {
            const gpus = w.gpus as { index: number; jobId: string | null; drained?: { reason: string } }[];
            const cpu = w.cpuSlots as { used: number; total: number };
            const host = w.drained as { reason: string } | undefined;
            const drained = host ? host.reason : gpus.flatMap((g) => (g.drained ? [`GPU ${g.index}: ${g.drained.reason}`] : [])).join(', ');
            return [w.host as string, `${gpus.filter((g) => g.jobId).length}/${gpus.length}`, `${cpu.used}/${cpu.total}`, (w.running as { id: string }[]).map((r) => r.id).join(', ') || null, drained || null, w.version as string, w.at as string];
          }),
        ),
      );
      break;
    }
    case 'schedules': {
      const data = await api.get<{ schedules: Row[] }>('/api/schedules');
      out(data, () =>
        table(
          ['NAME', 'CRON', 'TIME ZONE', 'OVERLAP', 'PAUSED', 'NEXT FIRE', 'LAST OUTCOME'],
          data.schedules.map((s) => [s.name as string, (s.cron as string) ?? 'on demand', s.timezone as string, s.overlap as string, s.paused ? 'yes' : 'no', (s.nextFires as string[])[0] ?? null, (s.lastFire as { outcome?: string } | null)?.outcome ?? null]),
        ),
      );
      break;
    }
    case 'checkpoints': {
      const data = await api.get<{ checkpoints: Row[]; total: number }>(`/api/checkpoints${qs}`);
      out(data, () =>
        table(
          ['ID', 'LABEL', 'STATUS', 'METRICS', 'CREATED'],
          data.checkpoints.map((c) => [c.id as number, c.label as string, `${c.status as string}${c.prunedAt ? ' (pruned)' : ''}`, Object.entries((c.validationMetrics ?? c.metrics) as Row).map(([k, v]) => `${k}=${String(v)}`).join(' '), c.createdAt as string]),
        ) + `${data.checkpoints.length} of ${data.total}\n`,
      );
      break;
    }
  }
  return 0;
}
