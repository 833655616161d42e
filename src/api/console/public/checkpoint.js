// One checkpoint: where it came from (its training job and what triggered it, each attempt and
// where it resumed, the market-data syncs it trained on), its validation runs with their
// health-check logs, its comparison with the live checkpoint, FinColl's load reports, and every
// change of its status. Reads GET /api/checkpoints/{id}.
import { api } from './api.js';
import { html } from './html.js';
import { usePoll } from './live.js';
import { duration, ErrorNote, fmt, JobLink, Loading, StatusBadge, Time } from './ui.js';
import { MetricList } from './metrics.js';

const POLL_MS = 3000;

/** A flat object as a definition list: trigger fields, a load's details. */
const Fields = ({ value }) =>
  value && typeof value === 'object' && Object.keys(value).length
    ? html`<dl class="fields">${Object.entries(value).map(([k, v]) => html`<dt>${k}</dt><dd>${typeof v === 'object' && v !== null ? JSON.stringify(v) : fmt(v)}</dd>`)}</dl>`
    : html`<span class="muted">—</span>`;

/** How an attempt ended. The lineage is written when the checkpoint is registered, while the last attempt still runs. */
const ending = (a, last) => a.endedHow ?? (last ? 'registered this checkpoint' : 'no end recorded (its worker died)');

function Attempts({ attempts }) {
  if (!attempts?.length) return null;
  return html`<h4>Attempts</h4>
    <table class="attempts"><thead><tr><th scope="col">#</th><th scope="col">Host</th><th scope="col">Started</th><th scope="col">Resumed from</th><th scope="col">Ended</th></tr></thead>
    <tbody>${attempts.map((a, i) => html`<tr>
      <td data-label="#">${a.attempt}</td><td data-label="Host">${a.host}</td><td data-label="Started"><${Time} iso=${a.startedAt} /></td>
      <td data-label="Resumed from">${a.resumedFrom ? html`<code>${a.resumedFrom.path.split('/').pop()}</code>${a.resumedFrom.epoch !== null ? ` (epoch ${a.resumedFrom.epoch})` : ''}` : 'the start'}</td>
      <td data-label="Ended">${ending(a, i === attempts.length - 1)}${a.endedAt ? html` · <${Time} iso=${a.endedAt} />` : ''}</td>
    </tr>`)}</tbody></table>`;
}

function DataLineage({ lineage }) {
  const { syncedFirst = [], syncsFailed = [], dataSyncs = [] } = lineage;
  if (!syncedFirst.length && !syncsFailed.length && !dataSyncs.length) return null;
  return html`<h4>Market data</h4>
    ${syncedFirst.length ? html`<p>Synced first: ${syncedFirst.map((s, i) => html`${i ? ', ' : ''}<${JobLink} id=${s.job} />`)}</p>` : null}
    ${syncsFailed.length ? html`<ul>${syncsFailed.map((s) => html`<li class="fail">✗ sync <${JobLink} id=${s.job} /> failed: ${s.reason}</li>`)}</ul>` : null}
    ${dataSyncs.length
      ? html`<table class="syncs"><thead><tr><th scope="col">Symbol</th><th scope="col">Synced</th><th scope="col">Fence</th></tr></thead>
          <tbody>${dataSyncs.map((s) => html`<tr><td data-label="Symbol">${s.symbol} ${s.timeframe}</td><td data-label="Synced"><${Time} iso=${s.syncedAt} /></td><td data-label="Fence">${s.fence}</td></tr>`)}</tbody></table>`
      : null}`;
}

function Validations({ runs }) {
  if (!runs.length) return html`<p class="muted">No validation run yet.</p>`;
  return html`<ol class="validations">${runs.map((r) => html`<li>
    <p><${StatusBadge} status=${r.status} /> ${r.action} on ${r.host}, attempt ${r.attempt} · started <${Time} iso=${r.startedAt} />${r.durationMs !== null ? ` · took ${duration(r.durationMs / 1000)}` : ''}${' · '}<${JobLink} id=${r.jobId} /></p>
    ${r.metrics ? html`<${Fields} value=${r.metrics} />` : null}
    ${r.reasons?.length ? html`<ul>${r.reasons.map((x) => html`<li class="fail">✗ ${x}</li>`)}</ul>` : null}
    ${r.logs ? html`<details><summary>Health-check log</summary><pre class="log">${r.logs}</pre></details>` : null}
  </li>`)}</ol>`;
}

function Comparison({ comparison, checkpoint, model, live }) {
  return html`
    ${live && live.id !== checkpoint.id
      ? html`<p>Against the live ${live.label}:</p><${MetricList} checkpoint=${checkpoint} model=${model} live=${live} />`
      : html`<p class="muted">${live ? 'This is the live checkpoint.' : 'No live checkpoint to compare with.'}</p>`}
    ${comparison
      ? html`<p>Backtests before promotion: <strong>${comparison.verdict}</strong>${comparison.overall?.sharpeDelta !== null && comparison.overall?.sharpeDelta !== undefined ? ` (sharpe ${comparison.overall.sharpeDelta >= 0 ? '+' : ''}${fmt(comparison.overall.sharpeDelta)})` : ''}</p>`
      : null}`;
}

export function CheckpointDetail({ id, model, live }) {
  const { data, error } = usePoll(() => api(`api/checkpoints/${id}`), POLL_MS, [id]);
  if (!data) return html`<section class="card detail">${error ? html`<${ErrorNote} error=${error} />` : html`<${Loading} />`}</section>`;
  const { checkpoint: c, lineage, history, loads } = data;
  return html`<section class="card detail" aria-labelledby="detail-title">
    <h2 id="detail-title">${c.label} <${StatusBadge} status=${c.status} /></h2>
    <${ErrorNote} error=${error} />
    <p class="meta">#${c.id} · ${(c.sizeBytes / 1024).toFixed(1)} KiB · sha256 <code title=${c.sha256}>${c.sha256.slice(0, 12)}…</code> · <code class="path">${c.path}</code></p>
    <h3>Metrics</h3>
    <${MetricList} checkpoint=${c} model=${model} live=${null} />
    <h3>Lineage</h3>
    <p>Trained by <${JobLink} id=${lineage.trainingJobId} /></p>
    <h4>Trigger</h4>
    <${Fields} value=${lineage.trigger} />
    <${Attempts} attempts=${c.lineage.attempts} />
    <${DataLineage} lineage=${c.lineage} />
    <h3>Validation runs</h3>
    <${Validations} runs=${lineage.validations} />
    <h3>Compared with the live checkpoint</h3>
    <${Comparison} comparison=${c.lineage.comparison} checkpoint=${c} model=${model} live=${live} />
    <h3>FinColl loads</h3>
    ${loads.length ? html`<ul>${loads.map((l) => html`<li><strong>${l.instance}</strong> loaded it <${Time} iso=${l.at} /></li>`)}</ul>` : html`<p class="muted">No FinColl instance has reported loading it.</p>`}
    <h3>History</h3>
    <ol class="history">${history.map((e) => html`<li><${Time} iso=${e.at} />: ${e.fromStatus ?? 'new'} → <strong>${e.toStatus.replace('_', ' ')}</strong> by ${e.actor}${e.reason ? ` — ${e.reason}` : ''}</li>`)}</ol>
  </section>`;
}
