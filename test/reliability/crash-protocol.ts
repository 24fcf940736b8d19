import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';

/**
 * What the crash test and the applier process it kills say to each other: per batch, one JSON line in on stdin
 * and one marker line out on stdout. Kept apart from both so that the child's bundle pulls in nothing of the
 * test runner.
 */

/** Where the applier can die, in the order a batch reaches them. */
export const KILL_POINTS = [
  /** Before reading the task item: nothing of this task was read or written. */
  'before-task-read',
  /** Between the reads and the commit: the new state was computed but not sent. */
  'before-commit',
  /** With the transaction on the wire: DynamoDB may or may not commit it. */
  'during-commit',
  /** After DynamoDB confirmed the commit: applied, yet SQS never hears of it. */
  'after-commit',
  /**
   * With the whole batch done and its dead letters sent, before the response reaches SQS. Also where a batch
   * dies that never reached its planned point (a commit point, with nothing to commit).
   */
  'before-response',
] as const;

export type KillPoint = (typeof KILL_POINTS)[number];

export interface KillPlan {
  readonly point: KillPoint;
  /** Die at this passage of the point (1 = first); a batch of several tasks passes most points once per task. */
  readonly occurrence: number;
  /** For `during-commit`: how long after sending the transaction to die, so the kill lands before or after it commits. */
  readonly delayMs: number;
}

export interface CrashInput {
  readonly event: SQSEvent;
  /** Absent: run the batch to the end and respond. */
  readonly kill?: KillPlan;
}

export interface KillReport {
  readonly point: KillPoint;
  readonly taskId?: string;
  /** The version the interrupted commit would give the task, when it was a commit. */
  readonly version?: number;
}

export const KILL_MARKER = 'KILL-POINT ';
export const RESPONSE_MARKER = 'RESPONSE ';

export type CrashOutcome =
  | { readonly kind: 'killed'; readonly report: KillReport }
  | { readonly kind: 'responded'; readonly response: SQSBatchResponse };
