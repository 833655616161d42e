// `--wait`: follows a job until it ends, drawing its progress (epoch, percent, ETA, the newest
// metrics) on one line on a terminal, or a line per change elsewhere; the exit code is the job's
// outcome. It asks the API once a second: one cheap read, from a process run by a person.
import { percentDone } from '../queues/progress.js';
import type { ApiClient } from './api-client.js';

export interface JobView {
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
const ENDED = new Set(['completed', 'failed']);

/** A job in `waiting-children` is a training whose market data is synced first. */
export interface Syncs {
  done: number;
  total: number;
}

export function describeProgress(view: JobView, now = Date.now(), syncs?: Syncs): string {
  const p = (typeof view.progress === 'object' && view.progress ? view.progress : {}) as {
    percent?: number;
    epoch?: number;
    epochs?: number;
    metrics?: Record<string, unknown>;
  };
  if (view.state === 'waiting-children') {
    const count = syncs ? `: ${syncs.done} of ${syncs.total} ${syncs.total === 1 ? 'sync' : 'syncs'} done` : '';
    return `${view.id}  waiting-children: syncing market data first${count}; training starts when the syncs end`;
  }
  if (view.state !== 'active') {
    return `${view.id}  ${view.state}${view.waitingFor ? `: ${view.waitingFor}` : ''}`;
  }
  const percent = percentDone(p) ?? 0;
  const filled = Math.round((percent / 100) * BAR);
  const elapsed = view.startedAt ? (now - Date.parse(view.startedAt)) / 1000 : 0;
  const eta = percent > 0 ? Math.round((elapsed * (100 - percent)) / percent) : null;
  return [
    `[${'#'.repeat(filled)}${'-'.repeat(BAR - filled)}] ${percent.toFixed(0).padStart(3)}%`,
    p.epoch !== undefined ? `epoch ${p.epoch}/${p.epochs ?? '?'}` : '',
    eta !== null ? `ETA ${eta}s` : '',
    formatMetrics(p.metrics),
  ]
    .filter(Boolean)
    .join('  ');
}

export function formatMetrics(metrics: Record<string, unknown> | null | undefined): string {
  return Object.entries(metrics ?? {})
    .map(([k, v]) => `${k}=${typeof v === 'number' ? +v.toFixed(4) : String(v)}`)
    .join(' ');
}

async function countSyncs(api: ApiClient, ids: string[]): Promise<Syncs> {
  const states = await Promise.all(ids.map((id) => api.get<JobView>(`/api/jobs/${encodeURIComponent(id)}`).then((v) => v.state, () => 'gone')));
  return { done: states.filter((s) => ENDED.has(s)).length, total: ids.length };
}

/**
 * Follows the job; resolves with its final view. `waitsFor` are the market-data syncs the
 * enqueue answer named, counted while the job waits for them.
 */
export async function watchJob(
  api: ApiClient,
  id: string,
  out: NodeJS.WriteStream,
  opts: { intervalMs?: number; waitsFor?: string[] } = {},
): Promise<JobView> {
  const tty = Boolean(out.isTTY);
  let last = '';
  for (;;) {
    const view = await api.get<JobView>(`/api/jobs/${encodeURIComponent(id)}`);
    if (ENDED.has(view.state)) {
      if (tty && last) out.write('\n');
      return view;
    }
    const syncs = view.state === 'waiting-children' && opts.waitsFor?.length ? await countSyncs(api, opts.waitsFor) : undefined;
    const line = describeProgress(view, Date.now(), syncs);
    if (line !== last) {
      out.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
      last = line;
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 1000));
  }
}

interface CheckpointView {
  checkpoint: { id: number; label: string; status: string; validationMetrics: Record<string, unknown> | null; rejectionReasons: string[] | null };
}

const UNDECIDED = new Set(['registered', 'validating']);

/**
 * After a training: each checkpoint it registered (label, status), then, once validation has
 * decided, the verdict: validated (or promoted at once) with its metrics, or rejected and why.
 */
export async function followCheckpoints(api: ApiClient, final: JobView, out: NodeJS.WriteStream, intervalMs = 1000): Promise<void> {
  const registered = (final.result as { registered?: { id: number; label: string }[] } | null)?.registered ?? [];
  if (registered.length === 0) {
    out.write('no checkpoint was registered (the trainer reported none)\n');
    return;
  }
  for (const { id } of registered) {
    let view = await api.get<CheckpointView>(`/api/checkpoints/${id}`);
    out.write(`checkpoint ${view.checkpoint.label} (id ${id}): ${view.checkpoint.status}${UNDECIDED.has(view.checkpoint.status) ? '; waiting for its validation' : ''}\n`);
    while (UNDECIDED.has(view.checkpoint.status)) {
      await new Promise((r) => setTimeout(r, intervalMs));
      view = await api.get<CheckpointView>(`/api/checkpoints/${id}`);
    }
    const c = view.checkpoint;
    const why = c.status === 'rejected' ? (c.rejectionReasons ?? []).join('; ') : formatMetrics(c.validationMetrics);
    out.write(`validation of ${c.label}: ${c.status}${why ? `  ${why}` : ''}\n`);
  }
}
