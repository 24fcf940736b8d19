/** Retry pacing for optimistic-lock conflicts and unprocessed keys. */
export interface RetryPolicy {
  /** Attempts in all, the first one included. */
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 10, baseDelayMs: 10, maxDelayMs: 1_000 };

/**
 * Exponential backoff with full jitter: a uniformly random wait below the exponential cap spreads contending
 * writers apart far better than a fixed schedule, which makes them collide again in lockstep.
 */
export function backoffDelayMs(policy: RetryPolicy, failedAttempts: number, random: () => number): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failedAttempts - 1));
  return Math.floor(random() * cap);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
