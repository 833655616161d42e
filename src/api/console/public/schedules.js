// Schedules: what fires next and how the last fire went; pause, resume and trigger. A trigger the
// overlap policy would skip is refused (409) with the reason, and can be forced. Reads
// GET /api/schedules.
import { api } from './api.js';
import { html } from './html.js';
import { usePoll } from './live.js';
import { ActionButton, Badge, ErrorNote, JobLink, Loading, Time, useConfirm } from './ui.js';

const POLL_MS = 10000;

const what = (e) => (e.kind === 'training' ? `training ${e.model}` : e.kind === 'data-sync' ? `data sync of ${e.symbols?.length ?? 0} symbols` : e.kind);

function ForceBox({ onChange }) {
  return html`<p><label><input type="checkbox" onChange=${(e) => onChange(e.currentTarget.checked)} /> Run even if the overlap policy would skip it (force)</label></p>`;
}

function ScheduleRow({ s, me, ask, refresh }) {
  const base = `api/schedules/${encodeURIComponent(s.name)}`;
  // Each dialog's checkbox and its confirm share one object, made when the dialog opens.
  const pause = () =>
    ask({ title: `Pause ${s.name}`, confirmLabel: 'Pause', children: html`<p>It does not fire until resumed. A trigger still runs it.</p>`,
      onConfirm: (reason) => api(`${base}/pause`, { method: 'POST', body: reason ? { reason } : {} }), onClose: refresh });
  const resume = (flags = { catchUp: false }) =>
    ask({ title: `Resume ${s.name}`, confirmLabel: 'Resume', children: html`<p>It fires again on its schedule.</p>`,
      extra: html`<p><label><input type="checkbox" onChange=${(e) => (flags.catchUp = e.currentTarget.checked)} /> Catch up the fires missed while paused</label></p>`,
      onConfirm: () => api(`${base}/resume`, { method: 'POST', body: { catchUp: flags.catchUp } }), onClose: refresh });
  const trigger = (flags = { force: false }) =>
    ask({ title: `Trigger ${s.name}`, confirmLabel: 'Run now', children: html`<p>Enqueues ${what(s.enqueue)} now.</p>`,
      extra: html`<${ForceBox} onChange=${(v) => (flags.force = v)} />`,
      onConfirm: () => api(`${base}/trigger`, { method: 'POST', body: { force: flags.force } }), onClose: refresh });
  const last = s.lastFire;
  return html`<tr>
    <th scope="row" data-label="Schedule">${s.name}${s.description ? html`<div class="muted">${s.description}</div>` : null}</th>
    <td data-label="Runs">${what(s.enqueue)}<div class="muted">${s.cron ? `${s.cron} (${s.timezone})` : 'on demand only'} · overlap ${s.overlap}</div></td>
    <td data-label="Next fires">${s.paused
      ? html`<${Badge} kind="warn">paused<//> by ${s.paused.by}, <${Time} iso=${s.paused.at} />${s.paused.reason ? html`: ${s.paused.reason}` : ''}`
      : s.nextFires.length
        ? html`<${Time} iso=${s.nextFires[0]} /> <span class="muted">(${new Date(s.nextFires[0]).toLocaleString()})</span>
            ${s.nextFires.length > 1 ? html`<div class="muted">then ${s.nextFires.slice(1, 3).map((f) => new Date(f).toLocaleString()).join(', ')}</div>` : null}`
        : html`<span class="muted">only when triggered</span>`}</td>
    <td data-label="Last fire">${last
      ? html`<${Badge} kind=${last.outcome === 'enqueued' ? 'good' : last.outcome === 'skipped' ? 'neutral' : 'bad'}>${last.outcome}<//> <${Time} iso=${last.scheduledFor} />
          ${last.reason ? html`<div class="muted">${last.reason}</div>` : null}
          ${(last.jobIds ?? []).map((id) => html`<div><${JobLink} id=${id} /></div>`)}`
      : html`<span class="muted">never</span>`}</td>
    <td data-label="Actions"><div class="actions">
      ${s.paused
        ? html`<${ActionButton} me=${me} onClick=${() => resume()} aria-label=${`Resume ${s.name}`}>Resume…<//>`
        : html`<${ActionButton} me=${me} onClick=${pause} aria-label=${`Pause ${s.name}`}>Pause…<//>`}
      <${ActionButton} me=${me} onClick=${() => trigger()} aria-label=${`Trigger ${s.name}`}>Trigger…<//>
    </div></td>
  </tr>`;
}

export function SchedulesPage({ me }) {
  const { data, error, refresh } = usePoll(() => api('api/schedules'), POLL_MS);
  const { ask, dialog } = useConfirm();
  return html`<h1>Schedules</h1>
    <${ErrorNote} error=${error} />
    ${data
      ? html`<table class="schedules">
          <thead><tr><th scope="col">Schedule</th><th scope="col">Runs</th><th scope="col">Next fire</th><th scope="col">Last fire</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>${data.schedules.map((s) => html`<${ScheduleRow} key=${s.name} s=${s} me=${me} ask=${ask} refresh=${refresh} />`)}</tbody>
        </table>`
      : error ? null : html`<${Loading} />`}
    ${dialog}`;
}
