// Data: each market-data key with its last sync, its age against the freshness the models ask
// of it, the fencing token that wrote it and who syncs it now; stale keys first, marked in words.
// Reads GET /api/data-sync.
import { api } from './api.js';
import { html } from './html.js';
import { usePoll } from './live.js';
import { Badge, duration, ErrorNote, JobLink, Loading, Time } from './ui.js';

const POLL_MS = 10000;

function Freshness({ k }) {
  if (k.stale) return html`<${Badge} kind="bad">stale<//> ${k.lastSync ? `older than ${k.maxAgeHours} h` : 'never synced'}`;
  if (k.maxAgeHours !== null) return html`<${Badge} kind="good">fresh<//> <span class="muted">within ${k.maxAgeHours} h</span>`;
  return html`<span class="muted">no model asks for it fresh</span>`;
}

export function DataPage() {
  const { data, error } = usePoll(() => api('api/data-sync'), POLL_MS);
  if (!data) return html`<h1>Data</h1>${error ? html`<${ErrorNote} error=${error} />` : html`<${Loading} />`}`;
  // Stale keys first; the API's order (symbol, timeframe) within each group.
  const keys = [...data.keys].sort((a, b) => Number(b.stale) - Number(a.stale));
  const stale = keys.filter((k) => k.stale).length;
  return html`<h1>Data</h1>
    <p class="summary">${keys.length} market-data key${keys.length === 1 ? '' : 's'} · ${stale ? html`<strong>${stale} stale</strong>` : 'none stale'}</p>
    <${ErrorNote} error=${error} />
    ${keys.length
      ? html`<table class="data">
          <thead><tr><th scope="col">Key</th><th scope="col">Freshness</th><th scope="col">Last sync</th><th scope="col">Age</th><th scope="col">Fence</th><th scope="col">Now</th></tr></thead>
          <tbody>${keys.map((k) => html`<tr class=${k.stale ? 'stale' : ''}>
            <th scope="row" data-label="Key">${k.symbol} <span class="muted">${k.timeframe}</span></th>
            <td data-label="Freshness"><${Freshness} k=${k} /></td>
            <td data-label="Last sync">${k.lastSync ? html`<${Time} iso=${k.lastSync.at} /> · ${k.lastSync.rows} rows<div><${JobLink} id=${k.lastSync.jobId} /></div>` : '—'}</td>
            <td data-label="Age">${duration(k.ageSeconds)}</td>
            <td data-label="Fence">${k.fence ?? '—'}</td>
            <td data-label="Now">${k.holder ? html`<${Badge} kind="busy">syncing<//> fence ${k.holder.fence}<div><${JobLink} id=${k.holder.jobId} /></div>` : 'idle'}</td>
          </tr>`)}</tbody>
        </table>`
      : html`<p class="muted">No market data has been synced, and no model asks for any.</p>`}`;
}
