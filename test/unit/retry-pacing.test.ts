import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelayMs, DEFAULT_RETRY_POLICY, type RetryPolicy } from '../../lambdas/core/backoff';

/** The largest value `Math.random` can return. */
const ALMOST_ONE = 1 - Number.EPSILON / 2;

const policyArb = fc.record({
  maxAttempts: fc.integer({ min: 1, max: 20 }),
  baseDelayMs: fc.integer({ min: 1, max: 1_000 }),
  maxDelayMs: fc.integer({ min: 1, max: 60_000 }),
});
const randomArb = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

function cap(policy: RetryPolicy, failedAttempts: number): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failedAttempts - 1));
}

describe('backoffDelayMs (exponential backoff, full jitter)', () => {
  it('waits a whole number of ms in [0, min(maxDelay, base·2^(n−1)))', () => {
    fc.assert(
      fc.property(
        policyArb,
        fc.integer({ min: 1, max: 200 }),
        randomArb,
        (policy, failedAttempts, random) => {
          const delay = backoffDelayMs(policy, failedAttempts, () => random);

          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThan(cap(policy, failedAttempts));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('scales with the random draw: no wait at 0, just under the cap near 1', () => {
    fc.assert(
      fc.property(policyArb, fc.integer({ min: 1, max: 60 }), (policy, failedAttempts) => {
        const shortest = backoffDelayMs(policy, failedAttempts, () => 0);
        const longest = backoffDelayMs(policy, failedAttempts, () => ALMOST_ONE);

        expect(shortest).toBe(0);
        expect(longest).toBe(cap(policy, failedAttempts) - 1);
      }),
    );
  });

  it('doubles its cap with every failed attempt until maxDelayMs, then stays there', () => {
    const policy: RetryPolicy = { maxAttempts: 20, baseDelayMs: 10, maxDelayMs: 1_000 };
    const attempts = Array.from({ length: 12 }, (_, index) => index + 1);

    const caps = attempts.map(
      (failedAttempts) => backoffDelayMs(policy, failedAttempts, () => ALMOST_ONE) + 1,
    );

    caps.forEach((current, index) => {
      const previous = caps[index - 1];
      if (previous === undefined) expect(current).toBe(policy.baseDelayMs);
      else expect(current).toBe(Math.min(previous * 2, policy.maxDelayMs));
    });
    expect(caps.at(-1)).toBe(policy.maxDelayMs);
    expect(caps.filter((value) => value === policy.maxDelayMs).length).toBeGreaterThan(1);
  });

  it('keeps the default policy within its one-second ceiling for every attempt it allows', () => {
    const attempts = Array.from({ length: DEFAULT_RETRY_POLICY.maxAttempts }, (_, index) => index + 1);

    const longest = attempts.map((failedAttempts) =>
      backoffDelayMs(DEFAULT_RETRY_POLICY, failedAttempts, () => ALMOST_ONE),
    );

    for (const delay of longest) expect(delay).toBeLessThan(DEFAULT_RETRY_POLICY.maxDelayMs);
  });
});
