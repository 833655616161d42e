// Failures: jobs that failed for good since a chosen time, newest first, with the reason and the
// tail of the log; retry one from here. Reads GET /api/failures.
import { useState } from 'preact/hooks';
import { api, query } from './api.js';
import { html } from './html.js';
import { usePoll } from './live.js';
import { ActionButton, ErrorNote, JobLink, Loading, Time, useConfirm } from './ui.js';

const POLL_MS = 10000;
const HOUR = 3600_000;
const PRESETS = [
  ['last hour', HOUR],
  ['since yesterday', 24 * HOUR],
  ['last 7 days', 7 * 24 * HOUR],
  ['last 30 days', 30 * 24 * HOUR],
];

/** A Date as the value of a datetime-local input (local time, minutes). */
const localInput = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);

/** What the job was about, from its payload: the symbol of a sync, the model of a training. */
function subject(f) {
  const p = f.payload ?? {};
  if (f.kind === 'data-sync') return `${p.symbol ?? ''} ${p.timeframe ?? ''}`;
  if (f.kind === 'backtest') return `${p.model ?? ''} on ${(p.symbols ?? []).join(', ')}`;
  if (f.kind === 'deploy-test') return `${p.model ?? ''}${p.checkpoint ? ` checkpoint ${p.checkpoint}` : ''}`;
  return f.model ?? '';
}

function Failure({ f, me, ask, refresh }) {
  const retry = () =>
    ask({ title: 'Retry the job', confirmLabel: 'Retry', children: html`<p>${f.id} goes back to waiting and runs again.</p>`,
      onConfirm: () => api(`api/jobs/${encodeURIComponent(f.id)}/retry`, { method: 'POST' }), onClose: refresh });
  return html`<li class="card failure">
    <p><strong>${f.kind} ${subject(f)}</strong> failed <${Time} iso=${f.finishedAt} /> after ${f.attempts.made} of ${f.attempts.max} attempt${f.attempts.max === 1 ? '' : 's'}</p>
    <${JobLink} id=${f.id} />
    <p class="reason"><span class="fail">✗</span> ${f.failureReason}</p>
    ${f.logs.length ? html`<details><summary>Log tail (${f.logs.length} line${f.logs.length === 1 ? '' : 's'})</summary><pre class="log">${f.logs.join('\n')}</pre></details>` : html`<p class="muted">No log lines.</p>`}
    <div class="actions"><${ActionButton} me=${me} onClick=${retry}>Retry…<//></div>
  </li>`;
}

export function FailuresPage({ me }) {
  const [since, setSince] = useState(() => new Date(Date.now() - 24 * HOUR));
  const { data, error, refresh } = usePoll(() => api(`api/failures?${query({ since: since.toISOString(), limit: 100 })}`), POLL_MS, [since.getTime()]);
  const { ask, dialog } = useConfirm();
  return html`<h1>Failures</h1>
    <form class="since" onSubmit=${(e) => e.preventDefault()}>
      <label for="since">Failed since</label>
      <input id="since" type="datetime-local" value=${localInput(since)} onChange=${(e) => e.currentTarget.value && setSince(new Date(e.currentTarget.value))} />
      ${PRESETS.map(([label, ms]) => html`<button type="button" onClick=${() => setSince(new Date(Date.now() - ms))}>${label}</button>`)}
    </form>
    <${ErrorNote} error=${error} />
    ${data
      ? html`<p class="summary">${data.total} job${data.total === 1 ? '' : 's'} failed for good since ${new Date(data.since).toLocaleString()} (<${Time} iso=${data.since} />)${data.total > data.failures.length ? ` (newest ${data.failures.length} shown)` : ''}</p>
          ${data.failures.length ? html`<ul class="failures">${data.failures.map((f) => html`<${Failure} key=${f.id} f=${f} me=${me} ask=${ask} refresh=${refresh} />`)}</ul>` : html`<p class="muted">Nothing failed in that time.</p>`}`
      : error ? null : html`<${Loading} />`}
    ${dialog}`;
}
