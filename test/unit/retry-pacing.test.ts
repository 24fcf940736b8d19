import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StatusUpdate } from '../../lambdas/core/apply-statuses';
import { chunkBySubtasks } from '../../lambdas/store/apply-to-task';
import { backoffDelayMs, DEFAULT_RETRY_POLICY, type RetryPolicy } from '../../lambdas/store/backoff';
import { status } from '../support/factories';

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

describe('chunkBySubtasks (transactions of at most `limit` subtasks)', () => {
  const updatesArb = fc
    .array(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'), { maxLength: 60 })
    .map((ids) =>
      ids.map((id, index): StatusUpdate => ({ subtaskId: id, status: status(id, { succeeded: index }) })),
    );
  const limitArb = fc.integer({ min: 1, max: 9 });
  const distinct = (chunk: readonly StatusUpdate[]) => new Set(chunk.map((update) => update.subtaskId));

  it('keeps every update, in order', () => {
    fc.assert(
      fc.property(updatesArb, limitArb, (updates, limit) => {
        const chunks = chunkBySubtasks(updates, limit);

        expect(chunks.flat()).toEqual(updates);
        for (const [index, update] of chunks.flat().entries()) expect(update).toBe(updates[index]);
      }),
    );
  });

  it('never puts more than `limit` distinct subtasks in a chunk, nor makes an empty chunk', () => {
    fc.assert(
      fc.property(updatesArb, limitArb, (updates, limit) => {
        const chunks = chunkBySubtasks(updates, limit);

        for (const chunk of chunks) {
          expect(chunk.length).toBeGreaterThan(0);
          expect(distinct(chunk).size).toBeLessThanOrEqual(limit);
        }
      }),
    );
  });

  it('closes a chunk only when it is full and the next update is of another subtask', () => {
    fc.assert(
      fc.property(updatesArb, limitArb, (updates, limit) => {
        const chunks = chunkBySubtasks(updates, limit);

        chunks.slice(0, -1).forEach((chunk, index) => {
          const next = chunks[index + 1]?.[0];
          expect(distinct(chunk).size).toBe(limit);
          expect(next !== undefined && distinct(chunk).has(next.subtaskId)).toBe(false);
        });
      }),
    );
  });

  it('keeps repeated updates of one subtask together when they fit in one chunk', () => {
    const updates = ['a', 'b', 'a', 'c', 'a', 'b', 'd', 'c'].map(
      (id, index): StatusUpdate => ({ subtaskId: id, status: status(id, { succeeded: index }) }),
    );

    const chunks = chunkBySubtasks(updates, 3);

    expect(chunks.map((chunk) => chunk.map((update) => update.subtaskId))).toEqual([
      ['a', 'b', 'a', 'c', 'a', 'b'],
      ['d', 'c'],
    ]);
  });

  it('makes one chunk when the updates touch no more than `limit` subtasks', () => {
    fc.assert(
      fc.property(updatesArb, (updates) => {
        const limit = Math.max(distinct(updates).size, 1);

        const chunks = chunkBySubtasks(updates, limit);

        expect(chunks).toHaveLength(updates.length === 0 ? 0 : 1);
      }),
    );
  });
});
