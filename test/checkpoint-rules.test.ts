// The pure parts of the checkpoint lifecycle: the transition table and the verdicts. No Redis, no
// Postgres.
import { describe, expect, it } from 'vitest';
import { baselineOf, comparisonAllowsPromotion, judge } from '../src/checkpoints/judge.js';
import {
  allowed,
  assertTransition,
  awaitsVerdict,
  IllegalTransitionError,
  isPast,
  sourcesOf,
  TRANSITIONS,
  type Step,
} from '../src/checkpoints/transitions.js';
import { ConflictError } from '../src/errors.js';
import { CHECKPOINT_STATUSES, type CheckpointStatus } from '../src/registry/checkpoints.js';

const at = (status: CheckpointStatus, prunedAt: string | null = null) => ({ id: 7, status, prunedAt });

describe('the transition table', () => {
  it('holds exactly the steps of the design', () => {
    const steps = Object.entries(TRANSITIONS).flatMap(([from, tos]) => tos.map((to) => `${from} -> ${to}`));
    expect(steps.sort()).toEqual(
      [
        'registered -> validating',
        'validating -> validated',
        'validating -> rejected',
        'validated -> promoted',
        'validated -> rejected',
        'superseded -> rejected',
        'promoted -> superseded',
        'promoted -> rolled_back',
        'superseded -> promoted',
        ...CHECKPOINT_STATUSES.filter((s) => s !== 'promoted').map((s) => `${s} -> pruned`),
      ].sort(),
    );
  });

  it('names every status, and every status can be reached from registered', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...CHECKPOINT_STATUSES].sort());
    for (const s of CHECKPOINT_STATUSES.filter((x) => x !== 'registered')) expect([s, isPast(s, 'registered')]).toEqual([s, true]);
  });

  it('gives the statuses a guarded write accepts', () => {
    expect(sourcesOf('validating')).toEqual(['registered']);
    expect(sourcesOf('validated')).toEqual(['validating']);
    // validated and superseded only when the file changed: a verdict is given from validating alone (lifecycle.decide).
    expect(sourcesOf('rejected').sort()).toEqual(['superseded', 'validated', 'validating']);
    expect(sourcesOf('promoted').sort()).toEqual(['superseded', 'validated']);
    expect(sourcesOf('pruned')).not.toContain('promoted');
    expect(sourcesOf('registered')).toEqual([]);
  });

  it('knows which statuses lie beyond another, and which still await a verdict', () => {
    expect(isPast('promoted', 'validating')).toBe(true);
    expect(isPast('rejected', 'validating')).toBe(true);
    expect(isPast('validating', 'validating')).toBe(false);
    expect(isPast('rejected', 'promoted')).toBe(true); // superseded, then its file changed
    expect(isPast('rejected', 'rolled_back')).toBe(false);
    expect(isPast('promoted', 'superseded')).toBe(true); // the cycle superseded -> promoted -> superseded ends
    expect(CHECKPOINT_STATUSES.filter(awaitsVerdict)).toEqual(['registered', 'validating']);
  });

  it('lets an allowed step pass and refuses any other with a typed conflict', () => {
    expect(() => assertTransition(at('validated'), 'promoted')).not.toThrow();
    expect(() => assertTransition(at('superseded'), 'promoted')).not.toThrow();
    expect(() => assertTransition(at('rejected'), 'pruned')).not.toThrow();
    const refused: [ReturnType<typeof at>, Step, RegExp][] = [
      [at('rejected'), 'promoted', /^checkpoint 7 is rejected; only a validated checkpoint can be promoted$/],
      [at('rolled_back'), 'promoted', /is rolled_back; only a validated/],
      [at('registered'), 'rejected', /^checkpoint 7 is registered; it cannot become rejected$/],
      [at('promoted'), 'rejected', /is promoted; it cannot become rejected/],
      [at('validated'), 'validating', /is validated; it cannot become validating/],
      [at('promoted'), 'pruned', /is promoted; it cannot become pruned/],
      [at('validated', '2026-01-01T00:00:00.000Z'), 'promoted', /^checkpoint 7 was pruned; it cannot be promoted$/],
      [at('superseded', '2026-01-01T00:00:00.000Z'), 'pruned', /was pruned; it cannot become pruned/],
    ];
    for (const [c, to, message] of refused) {
      const err = (() => {
        try {
          assertTransition(c, to);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err, `${c.status} -> ${to}`).toBeInstanceOf(IllegalTransitionError);
      expect(err).toBeInstanceOf(ConflictError);
      expect(err).toMatchObject({ name: 'IllegalTransitionError', checkpointId: 7, from: c.status, to, pruned: c.prunedAt !== null });
      expect((err as Error).message).toMatch(message);
    }
    expect(allowed('validating', 'validated')).toBe(true);
    expect(allowed('registered', 'validated')).toBe(false);
  });
});

describe('the verdict on a validation', () => {
  const model = { thresholds: { acc: { min: 0.5 }, loss: { max: 2 }, band: { min: 1, max: 3 } }, maxRegression: 0.1 };
  const clean = { acc: 0.6, loss: 1, band: 2 };

  it('passes metrics on the thresholds themselves, and ignores metrics without a threshold', () => {
    expect(judge(model, { acc: 0.5, loss: 2, band: 1, extra: -99 })).toEqual({ passed: true, reasons: [] });
    expect(judge(model, { ...clean, band: 3 })).toEqual({ passed: true, reasons: [] });
  });

  it('names each threshold missed, on either side', () => {
    expect(judge(model, { acc: 0.49, loss: 2.5, band: 0.5 }).reasons).toEqual([
      'acc 0.49 is below the minimum 0.5',
      'loss 2.5 is above the maximum 2',
      'band 0.5 is below the minimum 1',
    ]);
    expect(judge(model, { ...clean, band: 3.5 }).reasons).toEqual(['band 3.5 is above the maximum 3']);
  });

  it('counts a metric that is missing, not a number or not finite as not reported', () => {
    const v = judge(model, { acc: '0.9', loss: Number.NaN, band: Number.POSITIVE_INFINITY });
    expect(v).toEqual({
      passed: false,
      reasons: ['acc was not reported', 'loss was not reported', 'band was not reported'],
    });
    expect(judge(model, {}).reasons).toHaveLength(3);
  });

  it('allows the margin against the promoted checkpoint and no more, in the metric\'s own direction', () => {
    const promoted = { acc: 0.8, loss: 1, band: 2 };
    // acc: higher is better, margin 0.08; loss: only a maximum, so lower is better, margin 0.1.
    expect(judge(model, { acc: 0.73, loss: 1.09, band: 2 }, promoted)).toEqual({ passed: true, reasons: [] });
    expect(judge(model, { acc: 0.71, loss: 1.11, band: 1.7 }, promoted).reasons).toEqual([
      "acc 0.71 is worse than the promoted checkpoint's 0.8 by more than 10%",
      "loss 1.11 is worse than the promoted checkpoint's 1 by more than 10%",
      "band 1.7 is worse than the promoted checkpoint's 2 by more than 10%",
    ]);
    // Better than the promoted one is never a reason.
    expect(judge(model, { acc: 0.99, loss: 0.1, band: 2.9 }, promoted).passed).toBe(true);
  });

  it('compares only the metrics the promoted checkpoint reported, and with no margin demands not worse', () => {
    expect(judge(model, clean, { acc: 'n/a' }).passed).toBe(true);
    expect(judge(model, clean, {}).passed).toBe(true);
    const strict = { ...model, maxRegression: 0 };
    expect(judge(strict, clean, { acc: 0.6 }).passed).toBe(true);
    expect(judge(strict, { ...clean, acc: 0.59 }, { acc: 0.6 }).reasons).toEqual([
      "acc 0.59 is worse than the promoted checkpoint's 0.6 by more than 0%",
    ]);
  });

  it('holds a candidate against the promoted checkpoint as validated, never against itself', () => {
    const promoted = { id: 3, metrics: { acc: 0.7 }, validationMetrics: { acc: 0.75 } };
    expect(baselineOf(4, promoted)).toEqual({ acc: 0.75 });
    expect(baselineOf(4, { ...promoted, validationMetrics: null })).toEqual({ acc: 0.7 });
    expect(baselineOf(3, promoted)).toBeUndefined();
    expect(baselineOf(4, undefined)).toBeUndefined();
  });

  it('lets a comparison promote when the candidate is not worse, or there was nothing to compare', () => {
    expect(comparisonAllowsPromotion({ sharpeDelta: 0.2 })).toBe(true);
    expect(comparisonAllowsPromotion({ sharpeDelta: 0 })).toBe(true);
    expect(comparisonAllowsPromotion({ sharpeDelta: null })).toBe(true);
    expect(comparisonAllowsPromotion({ sharpeDelta: -0.01 })).toBe(false);
  });
});
