// Models: per model, the live (promoted) checkpoint and the ones after it, with their status and
// metrics against the model's thresholds and against the live one; promote and roll back, each
// with a confirmation and a reason. A checkpoint's page (checkpoint.js) has its lineage,
// validation runs and FinColl's loads. The list polls, and the FinColl feed's long-poll wakes it
// as soon as a checkpoint is validated.
import { useEffect, useRef } from 'preact/hooks';
import { api, query } from './api.js';
import { html } from './html.js';
import { usePoll } from './live.js';
import { ActionButton, ErrorNote, Loading, StatusBadge, Time, useConfirm } from './ui.js';
import { CheckpointDetail } from './checkpoint.js';
import { MetricList } from './metrics.js';

const POLL_MS = 5000;
const FEED_WAIT_SECONDS = 25;
/** Statuses a checkpoint may be promoted from (the lifecycle's table: src/checkpoints/transitions.ts). */
const PROMOTABLE = new Set(['validated', 'superseded']);

/** Wakes `onNew` when the FinColl feed has a checkpoint of `model` after `cursor()`; a held request, not a poll. */
function useFeedWake(model, cursor, onNew) {
  const latest = useRef({ cursor, onNew });
  latest.current = { cursor, onNew };
  useEffect(() => {
    const stop = new AbortController();
    const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    (async () => {
      // The feed's own cursor, so the loop does not ask again from the list's cursor while the
      // list it woke is still being read.
      let seen = 0;
      while (!stop.signal.aborted) {
        const listed = latest.current.cursor();
        if (listed === undefined) {
          await pause(500);
          continue;
        }
        try {
          const after = Math.max(listed, seen);
          const page = await api(`api/checkpoints/feed?${query({ model, after, wait: FEED_WAIT_SECONDS })}`, { signal: stop.signal });
          seen = Math.max(seen, Number(page.cursor));
          if (page.checkpoints.length) latest.current.onNew();
        } catch {
          if (!stop.signal.aborted) await pause(5000);
        }
      }
    })();
    return () => stop.abort();
  }, [model]);
}

function CheckpointRow({ c, model, live, me, ask, refresh }) {
  const promote = () =>
    ask({
      title: `Promote ${c.label}`,
      confirmLabel: 'Promote',
      children: html`<p>${c.label} becomes the live checkpoint of ${model.name}${live ? html`; ${live.label} is superseded` : ''}. FinColl loads it from the feed.</p>`,
      onConfirm: (reason) => api(`api/checkpoints/${c.id}/promote`, { method: 'POST', body: reason ? { reason } : {} }),
      onClose: refresh,
    });
  return html`<tr>
    <td data-label="Checkpoint"><a href=${`#/models/${encodeURIComponent(model.name)}/${c.id}`}>${c.label}</a> <span class="muted">#${c.id}</span></td>
    <td data-label="Status"><${StatusBadge} status=${c.status} />${c.prunedAt ? html` <span class="muted">pruned</span>` : null}</td>
    <td data-label="Registered"><${Time} iso=${c.createdAt} /></td>
    <td data-label="Metrics"><${MetricList} checkpoint=${c} model=${model} live=${live} />
      ${c.rejectionReasons?.length ? html`<p class="fail">✗ ${c.rejectionReasons.join('; ')}</p>` : null}</td>
    <td data-label="Actions">${PROMOTABLE.has(c.status) && !c.prunedAt ? html`<${ActionButton} me=${me} onClick=${promote} aria-label=${`Promote ${c.label}`}>Promote…<//>` : null}</td>
  </tr>`;
}

function CheckpointTable({ rows, ...rest }) {
  return html`<table class="checkpoints">
    <thead><tr><th scope="col">Checkpoint</th><th scope="col">Status</th><th scope="col">Registered</th><th scope="col">Metrics</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
    <tbody>${rows.map((c) => html`<${CheckpointRow} key=${c.id} c=${c} ...${rest} />`)}</tbody>
  </table>`;
}

function ModelView({ model, me, selected }) {
  const { data, error, refresh } = usePoll(() => api(`api/checkpoints?${query({ model: model.name, limit: 50 })}`), POLL_MS, [model.name]);
  const { ask, dialog } = useConfirm();
  useFeedWake(model.name, () => (data ? Math.max(0, ...data.checkpoints.map((c) => c.feedSeq ?? 0)) : undefined), refresh);
  if (!data) return error ? html`<${ErrorNote} error=${error} />` : html`<${Loading} />`;
  const checkpoints = data.checkpoints;
  const live = checkpoints.find((c) => c.status === 'promoted');
  const newer = live ? checkpoints.filter((c) => c.version > live.version) : checkpoints;
  const older = live ? checkpoints.filter((c) => c.version < live.version) : [];
  const rollback = () =>
    ask({
      title: `Roll back ${model.name}`,
      confirmLabel: 'Roll back',
      children: html`<p>${live.label} is marked rolled back and the previous validated checkpoint of ${model.name} becomes live.</p>`,
      onConfirm: (reason) => api(`api/models/${encodeURIComponent(model.name)}/rollback`, { method: 'POST', body: reason ? { reason } : {} }),
      onClose: refresh,
    });
  const rows = { model, live, me, ask, refresh };
  return html`<section aria-labelledby="model-title">
    <h2 id="model-title">${model.name}</h2>
    <p class="meta">pool ${model.pool} · ${model.gpusPerRun} GPU${model.gpusPerRun === 1 ? '' : 's'} a run · ${model.priorityClass} ·
      validated by ${model.validation}${model.autoPromote ? ', promoted automatically' : ''} · may be ${Math.round(model.maxRegression * 100)}% worse than live at most · keeps ${model.retention}</p>
    <${ErrorNote} error=${error} />
    <div class="live">
      <h3>Live</h3>
      ${live
        ? html`<p><a href=${`#/models/${encodeURIComponent(model.name)}/${live.id}`}>${live.label}</a> <${StatusBadge} status="promoted" /> since <${Time} iso=${live.updatedAt} /></p>
            <${MetricList} checkpoint=${live} model=${model} live=${null} />
            <div class="actions"><${ActionButton} me=${me} onClick=${rollback}>Roll back…<//></div>`
        : html`<p class="muted">No checkpoint is live: promote a validated one.</p>`}
    </div>
    <h3>${live ? 'After the live one' : 'Checkpoints'}</h3>
    ${newer.length ? html`<${CheckpointTable} rows=${newer} ...${rows} />` : html`<p class="muted">None yet.</p>`}
    ${older.length ? html`<details><summary>Earlier checkpoints (${older.length})</summary><${CheckpointTable} rows=${older} ...${rows} /></details>` : null}
    ${selected ? html`<${CheckpointDetail} id=${selected} model=${model} live=${live} />` : null}
    ${dialog}
  </section>`;
}

export function ModelsPage({ me, fleet, params }) {
  const [name, id] = params;
  const model = fleet.models.find((m) => m.name === name) ?? fleet.models[0];
  if (!model) return html`<h1>Models</h1><p class="muted">The fleet has no models.</p>`;
  return html`<h1>Models</h1>
    <nav class="tabs" aria-label="Models">
      ${fleet.models.map((m) => html`<a href=${`#/models/${encodeURIComponent(m.name)}`} aria-current=${m === model ? 'page' : undefined}>${m.name}</a>`)}
    </nav>
    <${ModelView} key=${model.name} model=${model} me=${me} selected=${id ? Number(id) : undefined} />`;
}
