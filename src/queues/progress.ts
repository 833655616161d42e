// How far a job is, from the progress its child reported: its own `percent`, else epoch/epochs.
// One rule for the API's ETA, the CLI's bar and the dispatch policy's expected ends.

/** Percent done (0–100 as reported); undefined when the progress says neither. */
export function percentDone(progress: unknown): number | undefined {
  const p = (progress ?? {}) as { percent?: unknown; epoch?: unknown; epochs?: unknown };
  if (typeof p.percent === 'number' && Number.isFinite(p.percent)) return p.percent;
  if (typeof p.epoch === 'number' && typeof p.epochs === 'number' && p.epochs > 0) return (p.epoch / p.epochs) * 100;
  return undefined;
}
