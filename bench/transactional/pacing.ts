/**
 * Round 1's retry pacing (`lambdas/store/backoff.ts` at b7f12fc), frozen with the row: exponential backoff with
 * full jitter, 10 attempts in all.
 */

export const RETRY_POLICY = { maxAttempts: 10, baseDelayMs: 10, maxDelayMs: 1_000 } as const;

export function backoffDelayMs(failedAttempts: number, random: () => number): number {
  const cap = Math.min(RETRY_POLICY.maxDelayMs, RETRY_POLICY.baseDelayMs * 2 ** (failedAttempts - 1));
  return Math.floor(random() * cap);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
