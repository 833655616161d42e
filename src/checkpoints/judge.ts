// The verdicts of the checkpoint lifecycle. Whether a candidate's metrics pass: each threshold of
// the model must be met, and no threshold metric may be worse than the promoted checkpoint's by
// more than the allowed margin. Whether a comparison backtest lets it be promoted. Pure, so every
// rule is easy to test and to read.
import type { ModelConfig } from '../config/fleet-schema.js';
import type { Checkpoint } from '../registry/checkpoints.js';

export interface Verdict {
  passed: boolean;
  reasons: string[];
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export function judge(
  model: Pick<ModelConfig, 'thresholds' | 'maxRegression'>,
  metrics: Record<string, unknown>,
  promoted?: Record<string, unknown>,
): Verdict {
  const reasons: string[] = [];
  for (const [name, t] of Object.entries(model.thresholds)) {
    const value = num(metrics[name]);
    if (value === undefined) {
      reasons.push(`${name} was not reported`);
      continue;
    }
    if (t.min !== undefined && value < t.min) reasons.push(`${name} ${value} is below the minimum ${t.min}`);
    if (t.max !== undefined && value > t.max) reasons.push(`${name} ${value} is above the maximum ${t.max}`);
    const live = promoted ? num(promoted[name]) : undefined;
    if (live === undefined) continue;
    // Higher is better for a metric with a minimum, lower is better for one with only a maximum.
    const higherIsBetter = t.min !== undefined || t.max === undefined;
    const margin = Math.abs(live) * model.maxRegression;
    if (higherIsBetter && value < live - margin) {
      reasons.push(`${name} ${value} is worse than the promoted checkpoint's ${live} by more than ${model.maxRegression * 100}%`);
    }
    if (!higherIsBetter && value > live + margin) {
      reasons.push(`${name} ${value} is worse than the promoted checkpoint's ${live} by more than ${model.maxRegression * 100}%`);
    }
  }
  return { passed: reasons.length === 0, reasons };
}

/** What a candidate is held against: the promoted checkpoint's metrics (as validated), unless it is the candidate. */
export function baselineOf(
  candidateId: number,
  promoted: Pick<Checkpoint, 'id' | 'metrics' | 'validationMetrics'> | undefined,
): Record<string, unknown> | undefined {
  return promoted && promoted.id !== candidateId ? (promoted.validationMetrics ?? promoted.metrics) : undefined;
}

/** A comparison lets the candidate be promoted when its overall sharpe ratio is not worse (or there was none to compare). */
export const comparisonAllowsPromotion = (overall: { sharpeDelta: number | null }): boolean =>
  overall.sharpeDelta === null || overall.sharpeDelta >= 0;
