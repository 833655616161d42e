// Small parts every page uses: times, progress bars, status badges, job links, error notes, and
// the action button that is disabled (saying why) when the token lacks the scope it needs.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.js';

const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const UNITS = [
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1],
];

/** "in 3 minutes", "5 hours ago". */
export function relative(iso, now = Date.now()) {
  if (!iso) return '—';
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === 'second') return rtf.format(Math.round(seconds / size), unit);
  }
  return '—';
}

/** 95 -> "1 min 35 s". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** A time shown relative, exact on hover and to screen readers. */
export const Time = ({ iso }) =>
  iso ? html`<time datetime=${iso} title=${new Date(iso).toLocaleString()}>${relative(iso)}</time>` : html`<span>—</span>`;

export const fmt = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4).replace(/0+$/, '').replace(/\.$/, '')) : v === null || v === undefined ? '—' : String(v));

/** A progress bar with its figure in text beside it (not by the bar alone). */
export const Progress = ({ percent, label }) =>
  percent === null || percent === undefined
    ? html`<span class="muted">no progress reported yet</span>`
    : html`<span class="progress">
        <progress max="100" value=${percent} aria-label=${label}></progress>
        <span class="progress-figure">${Math.round(percent)}%</span>
      </span>`;

/** A status word in a badge; the colour only repeats what the word says. */
export const Badge = ({ kind, children }) => html`<span class=${`badge badge-${kind}`}>${children}</span>`;

const BADGE_OF = {
  registered: 'neutral',
  validating: 'busy',
  validated: 'good',
  promoted: 'live',
  superseded: 'neutral',
  rolled_back: 'warn',
  rejected: 'bad',
  active: 'busy',
  waiting: 'neutral',
  failed: 'bad',
  completed: 'good',
  passed: 'good',
  error: 'bad',
  running: 'busy',
};
export const StatusBadge = ({ status }) => html`<${Badge} kind=${BADGE_OF[status] ?? 'neutral'}>${String(status).replace('_', ' ')}<//>`;

/** The queue part of a job id (`<queue>.<suffix>`). */
export const queueOf = (jobId) => jobId.slice(0, jobId.indexOf('.'));

/** A job id with a link to its page in Bull Board (which asks for the operator token itself). */
export const JobLink = ({ id }) =>
  id
    ? html`<span class="job"><code class="job-id">${id}</code>
        <a class="board-link" href=${`../admin/queues/queue/${encodeURIComponent(queueOf(id))}/${encodeURIComponent(id)}`} target="_blank" rel="noopener">Bull Board<span class="sr-only"> page of job ${id}</span></a></span>`
    : html`<span>—</span>`;

export const ErrorNote = ({ error }) =>
  error ? html`<p class="error" role="alert">${error.status ? `${error.status}: ` : ''}${error.message}</p>` : null;

export const Loading = () => html`<p class="muted" aria-live="polite">Loading…</p>`;

/** Why a token without `operate` sees a disabled button (the banner in app.js has this id). */
export const NEEDS_OPERATE = 'needs-operate';

/** A button for an action that changes state: disabled, saying why, unless the token has `scope`. */
export function ActionButton({ me, scope = 'operate', onClick, children, kind = '', ...rest }) {
  const allowed = me?.scopes?.includes(scope) ?? false;
  const why = `Needs the ${scope} scope; this token has ${me?.scopes?.join(', ') || 'none'}.`;
  return html`<button type="button" class=${`action ${kind}`} onClick=${onClick} disabled=${!allowed}
    title=${allowed ? undefined : why} aria-describedby=${allowed ? undefined : NEEDS_OPERATE} ...${rest}>${children}</button>`;
}

/**
 * A modal that asks before a change: what will happen, an optional or required reason, and the
 * API's answer when it refuses. `onConfirm(reason)` returns a promise; the dialog closes when it
 * resolves and shows the error when it rejects.
 */
export function ConfirmDialog({ title, children, confirmLabel, reasonRequired = false, onConfirm, onClose, extra }) {
  const dialog = useRef(null);
  const [reason, setReason] = useState('');
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    dialog.current?.showModal();
  }, []);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await onConfirm(reason.trim());
      onClose(true);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return html`<dialog ref=${dialog} class="confirm" aria-labelledby="confirm-title" onClose=${() => onClose(false)}>
    <form onSubmit=${submit}>
      <h2 id="confirm-title">${title}</h2>
      <div class="confirm-body">${children}</div>
      <label for="confirm-reason">Reason${reasonRequired ? '' : ' (optional)'}</label>
      <input id="confirm-reason" type="text" maxlength="200" autocomplete="off" required=${reasonRequired} value=${reason} onInput=${(e) => setReason(e.currentTarget.value)} />
      ${extra}
      <${ErrorNote} error=${error} />
      <div class="confirm-buttons">
        <button type="button" onClick=${() => dialog.current?.close()}>Cancel</button>
        <button type="submit" class="primary" disabled=${busy}>${busy ? 'Working…' : confirmLabel}</button>
      </div>
    </form>
  </dialog>`;
}

/** State for a page's one open dialog: `ask(props)` opens it, `dialog` renders it. */
export function useConfirm() {
  const [props, setProps] = useState(null);
  const dialog = props ? html`<${ConfirmDialog} ...${props} onClose=${(done) => { setProps(null); props.onClose?.(done); }} />` : null;
  return { ask: setProps, dialog };
}
