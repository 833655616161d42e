// `--wait`: follows a job until it ends, drawing its progress (epoch, percent, ETA, the newest
// metrics) on one line on a terminal, or a line per change elsewhere; the exit code is the job's
// outcome. It asks the API once a second: one cheap read, from a process run by a person.
import type { ApiClient } from './api-client.js';

interface JobView {
  id: string;
  state: string;
  progress: unknown;
  startedAt?: string;
  failureReason?: string;
  waitingFor?: string;
  attempts: { made: number; max: number };
  result: unknown;
}

const BAR = 24;

export function describeProgress(view: JobView, now = Date.now()): string {
  const p = (typeof view.progress === 'object' && view.progress ? view.progress : {}) as {
    percent?: number;
    epoch?: number;
    epochs?: number;
    metrics?: Record<string, unknown>;
  };
  if (view.state !== 'active') {
    return `${view.id}  ${view.state}${view.waitingFor ? `: ${view.waitingFor}` : ''}`;
  }
  const percent = typeof p.percent === 'number' ? p.percent : p.epoch && p.epochs ? (p.epoch / p.epochs) * 100 : 0;
  const filled = Math.round((percent / 100) * BAR);
  const elapsed = view.startedAt ? (now - Date.parse(view.startedAt)) / 1000 : 0;
  const eta = percent > 0 ? Math.round((elapsed * (100 - percent)) / percent) : null;
  const metrics = Object.entries(p.metrics ?? {})
    .map(([k, v]) => `${k}=${typeof v === 'number' ? +v.toFixed(4) : String(v)}`)
    .join(' ');
  return [
    `[${'#'.repeat(filled)}${'-'.repeat(BAR - filled)}] ${percent.toFixed(0).padStart(3)}%`,
    p.epoch !== undefined ? `epoch ${p.epoch}/${p.epochs ?? '?'}` : '',
    eta !== null ? `ETA ${eta}s` : '',
    metrics,
  ]
    .filter(Boolean)
    .join('  ');
}

/** Follows the job; resolves with its final view. */
export async function watchJob(api: ApiClient, id: string, out: NodeJS.WriteStream, intervalMs = 1000): Promise<JobView> {
  const tty = Boolean(out.isTTY);
  let last = '';
  for (;;) {
    const view = await api.get<JobView>(`/api/jobs/${encodeURIComponent(id)}`);
    const line = describeProgress(view);
    if (line !== last) {
      out.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
      last = line;
    }
    if (view.state === 'completed' || view.state === 'failed') {
      if (tty) out.write('\n');
      return view;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
