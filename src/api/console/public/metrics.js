// A checkpoint's metrics judged against its model's thresholds and compared with the live
// checkpoint's: the verdict in words and a mark, never by colour alone.
import { html } from './html.js';
import { fmt } from './ui.js';

export const metricsOf = (c) => c.validationMetrics ?? c.metrics ?? {};

/** One metric against its threshold: the value, the bound, and pass or fail in words. */
export function judged(value, threshold) {
  if (typeof value !== 'number') return { ok: false, text: 'not reported' };
  if (threshold.min !== undefined && value < threshold.min) return { ok: false, text: `below min ${threshold.min}` };
  if (threshold.max !== undefined && value > threshold.max) return { ok: false, text: `above max ${threshold.max}` };
  const bounds = [threshold.min !== undefined ? `min ${threshold.min}` : '', threshold.max !== undefined ? `max ${threshold.max}` : ''].filter(Boolean).join(', ');
  return { ok: true, text: `pass (${bounds})` };
}

/** The metrics the model judges (else every numeric one), each with its verdict and its difference from the live checkpoint. */
export function MetricList({ checkpoint, model, live }) {
  const metrics = metricsOf(checkpoint);
  const names = Object.keys(model.thresholds).length ? Object.keys(model.thresholds) : Object.keys(metrics).filter((k) => typeof metrics[k] === 'number');
  if (!names.length) return html`<span class="muted">no metrics</span>`;
  const liveMetrics = live && live.id !== checkpoint.id ? metricsOf(live) : null;
  return html`<ul class="metrics">${names.map((name) => {
    const value = metrics[name];
    const threshold = model.thresholds[name];
    const verdict = threshold ? judged(value, threshold) : null;
    const other = liveMetrics?.[name];
    const delta = typeof value === 'number' && typeof other === 'number' ? value - other : null;
    return html`<li>
      <span class="metric-name">${name}</span> <strong>${fmt(value)}</strong>
      ${verdict ? html` <span class=${verdict.ok ? 'pass' : 'fail'}>${verdict.ok ? '✓' : '✗'} ${verdict.text}</span>` : null}
      ${delta !== null ? html` <span class="muted">(${delta >= 0 ? '+' : ''}${fmt(delta)} vs live)</span>` : null}
    </li>`;
  })}</ul>`;
}
