/**
 * Round 1's retry pacing (`lambdas/store/backoff.ts` at b7f12fc), frozen with the row: exponential backoff with
 * full jitter, 10 attempts in all. The backoff itself is the product's, which has not changed since.
 */
import type { RetryPolicy } from '../../lambdas/core/backoff';

export const ROUND1_RETRY_POLICY: RetryPolicy = { maxAttempts: 10, baseDelayMs: 10, maxDelayMs: 1_000 };
