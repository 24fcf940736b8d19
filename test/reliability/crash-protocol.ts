/**
 * What the crash tests and the Lambda processes they kill say to each other: per invocation, one JSON line in on
 * stdin and one marker line out on stdout. Kept apart from both sides so that the children's bundles pull in
 * nothing of the test runner.
 */

import type { DynamoDBBatchResponse, DynamoDBStreamEvent, SQSBatchResponse, SQSEvent } from 'aws-lambda';

/** Where the applier can die, in the order a batch reaches them. */
export const APPLIER_KILL_POINTS = [
  /** The task item was read (generation, `ready`); no subtask item read or written. */
  'after-task-read',
  /** The subtask items were read and the statuses judged; nothing written. */
  'after-subtasks-read',
  /** Some, not all, of a task's changed subtask items were written (the others never sent). */
  'mid-batch',
  /**
   * Every write of the batch done and its dead letters sent, before the response reaches SQS. Also where a batch
   * dies that never reached its planned point (no task with two subtask writes, for `mid-batch`).
   */
  'before-response',
] as const;

/** Where the aggregator can die, in the order a stream batch reaches them. */
export const FOLD_KILL_POINTS = [
  /** The task item was read; the shard not yet queried, nothing written. */
  'before-recount',
  /** The shard's counter was written (or dropped as not newer); the task's totals not yet refreshed. */
  'between-writes',
  /** Every fold and event of the batch done, before the response reaches Lambda's event source. */
  'fold-before-response',
] as const;

export type ApplierKillPoint = (typeof APPLIER_KILL_POINTS)[number];
export type FoldKillPoint = (typeof FOLD_KILL_POINTS)[number];
export type KillPoint = ApplierKillPoint | FoldKillPoint;

export interface KillPlan<P extends KillPoint = KillPoint> {
  readonly point: P;
  /** Die at this passage of the point (1 = first); a batch of several tasks or shards passes most points more than once. */
  readonly occurrence: number;
  /** For `mid-batch`: the share of a task's subtask writes that go through before the kill, in (0, 1). */
  readonly share: number;
}

export interface CrashInput<Event, P extends KillPoint> {
  readonly event: Event;
  /** Absent: run the invocation to its end and respond. */
  readonly kill?: KillPlan<P>;
}

export type ApplierInput = CrashInput<SQSEvent, ApplierKillPoint>;
export type FoldInput = CrashInput<DynamoDBStreamEvent, FoldKillPoint>;

export interface KillReport {
  readonly point: KillPoint;
  readonly taskId?: string;
  readonly shard?: number;
  /** `mid-batch`: subtask items written before the kill, of how many the task's batch changed. */
  readonly written?: number;
  readonly of?: number;
  /** `between-writes`: the recount's version sum, and whether its write was taken (false: an equal one was there). */
  readonly vsum?: number;
  readonly counterWritten?: boolean;
}

export const KILL_MARKER = 'KILL-POINT ';
export const RESPONSE_MARKER = 'RESPONSE ';

export type CrashOutcome<Response = SQSBatchResponse | DynamoDBBatchResponse> =
  | { readonly kind: 'killed'; readonly report: KillReport }
  | { readonly kind: 'responded'; readonly response: Response };

/** Prints the kill point and hangs: the process must end by the parent's SIGKILL, as a crash ends it. */
export function freeze(report: KillReport): Promise<never> {
  process.stdout.write(`${KILL_MARKER}${JSON.stringify(report)}\n`);
  setInterval(() => undefined, 60_000);
  return new Promise<never>(() => undefined);
}

/** Counts passages of one planned point; true on the planned one. */
export class KillSwitch<P extends KillPoint> {
  private passages = 0;
  constructor(readonly plan: KillPlan<P> | undefined) {}

  due(point: P): boolean {
    if (this.plan?.point !== point) return false;
    this.passages += 1;
    return this.passages === this.plan.occurrence;
  }
}
