import { createHash } from 'node:crypto';
import { STATUS_QUEUE } from '../service-settings';
import { InvalidInitializeRequestError } from './errors';
import { GROUP_PATTERN, isValidId } from './identifiers';
import { createSubtaskStatus, type SubtaskStatus } from './subtask-status';
import { shardOf, shardSizes, writeShardCount } from './write-shards';

/** `PROGRESS` while subtasks run; an ended task is `SUCCESS`, `FAILURE` or `CANCELED` and never changes again. */
export const TASK_STATES = ['PROGRESS', 'SUCCESS', 'FAILURE', 'CANCELED'] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** Item counts: `attempted == succeeded + failed`. */
export interface ItemCounts {
  readonly attempted: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
}

export const ZERO_COUNTS: ItemCounts = { attempted: 0, succeeded: 0, failed: 0, skipped: 0 };

/** The reference's `task_output`: item counts summed over ended subtasks. */
export interface TaskOutput extends ItemCounts {
  readonly action_name: string;
  /** Items the whole job covers, as the caller said at initialization. */
  readonly total: number;
  readonly duration_ms: number;
  /** Epoch seconds (float), as in the reference. */
  readonly start_time: number;
}

/** How many subtasks there are and how many have ended each way. */
export interface SubtaskCounters {
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
}

export interface TaskOptions {
  /** Failures tolerated before a finished task ends `FAILURE`, in basis points (1% = 100): compared in integers. */
  readonly tolerated_failure_bp?: number;
  /** A subtask not ended and not heard from for this long ends `FAILURE` (`TIMED_OUT`). */
  readonly subtask_timeout_seconds?: number;
  /** Epoch ms at which every subtask not ended ends `FAILURE` (`TIMED_OUT`). */
  readonly deadline_ms?: number;
}

/** Why a subtask ended without its worker saying so. */
export type EndReason = 'TIMED_OUT' | 'CANCELED';

export interface TaskRecord {
  readonly task_id: string;
  /** What the task belongs to (e.g. a course), when the caller said: listed and filtered on. */
  readonly group?: string;
  /** A fresh random id per task record: subtask items of another generation are never this task's. */
  readonly generation: string;
  /** Fingerprint of the whole initialize request; `subtask_digest` of the subtask set alone. */
  readonly digest: string;
  readonly subtask_digest: string;
  /** False until every subtask and counter item of this generation is written. */
  readonly ready: boolean;
  /** Subtask items an unfinished initialization has written so far, in request order: where a repeat resumes. */
  readonly init_written?: number;
  /** Raised by 1 on every write, so the ETag moves with the counts. */
  readonly version: number;
  readonly task_state: TaskState;
  readonly task_output: TaskOutput;
  /** Latest counts of the subtasks still running: live progress between terminal statuses. */
  readonly in_flight: ItemCounts;
  readonly subtasks: SubtaskCounters;
  /** Subtask items are spread over this many partitions; frozen at initialize. */
  readonly write_shards: number;
  /** Subtasks per write shard, index = shard. */
  readonly shard_sizes: readonly number[];
  /** Sum of the shard counters' `vsum` the totals were computed from: the fold's monotonic guard. */
  readonly counters_vsum: number;
  readonly options: TaskOptions;
  readonly cancel_requested?: boolean;
  /** Why the task ended, when it did not end by its subtasks alone (e.g. `INITIALIZE_INCOMPLETE`). */
  readonly end_reason?: string;
  readonly created_at: string;
  readonly updated_at: string;
  readonly ended_at?: string;
  /** Epoch seconds after which DynamoDB's TTL may delete the task; absent means kept. */
  readonly expires_at?: number;
  /** Set by the ending write: the task's `Task Ended` is not published yet (see `store/pending-events.ts`). */
  readonly event_pending?: boolean;
  /** Events the aggregator could not publish wait as items of the task (`Subtask Timed Out`). */
  readonly outbox_pending?: boolean;
  /** Where the sweeper's unfinished pass ending subtasks resumes. */
  readonly end_cursor?: EndCursor;
  /** The first write shard an unfinished idle recount has still to recount. */
  readonly recount_cursor?: number;
}

/** How far a pass that ends running subtasks (cancel, deadline, timeouts) got: a later run resumes there. */
export interface EndCursor {
  /** What the pass ends them for: a pass for something else starts again from the first shard. */
  readonly reason: 'CANCELED' | 'DEADLINE' | 'TIMEOUT';
  readonly shard: number;
  /** Continue after this subtask id within the shard. */
  readonly after?: string;
}

export interface SubtaskRecord {
  readonly task_id: string;
  readonly subtask_id: string;
  readonly status: SubtaskStatus;
  /** Bumped by exactly 1 on every write of this subtask: the optimistic lock of its own item. */
  readonly version: number;
  readonly generation: string;
  readonly updated_at: string;
  /** Set when the service ended the subtask itself (deadline, cancel) rather than its worker. */
  readonly reason?: EndReason;
  /** The task's TTL, so that DynamoDB removes a task's subtasks with it. */
  readonly expires_at?: number;
}

/** What one write shard holds, recounted from its items. */
export interface ShardCounter {
  readonly task_id: string;
  readonly shard: number;
  readonly generation: string;
  /** Summed over the shard's ended subtasks (the reference's rule). */
  readonly counts: ItemCounts;
  readonly subtasks_succeeded: number;
  readonly subtasks_failed: number;
  /** Subtasks ended, lost ones included. */
  readonly done: number;
  /** Subtasks of the shard with no item (removed while running); counted as failed. */
  readonly lost: number;
  readonly in_flight: ItemCounts;
  /** Epoch ms of the latest subtask change seen. */
  readonly latest_change_ms: number;
  /** Epoch ms of the least recently heard-from running subtask, when one runs: what a timeout is due from. */
  readonly oldest_running_ms?: number;
  /** Sum of the versions of the items counted (and of `LOST_WEIGHT` per lost subtask): grows with every change. */
  readonly vsum: number;
  /** The task's TTL: counters go with their task. */
  readonly expires_at?: number;
}

export interface InitializeRequest {
  readonly taskId: string;
  readonly group?: string;
  readonly actionName: string;
  /** Items the whole job covers (for "… (out of N)"). */
  readonly total: number;
  readonly subtaskIds: readonly string[];
  /** 0 to 100, at most two decimals. */
  readonly toleratedFailurePercentage?: number;
  readonly subtaskTimeoutSeconds?: number;
  /** When every subtask not ended by then ends `TIMED_OUT` (ISO 8601). */
  readonly deadline?: string;
  /** Keep the records this long after initialization, then let TTL remove them. */
  readonly ttlDays?: number;
}

export interface InitializedTask {
  readonly task: TaskRecord;
  readonly counters: readonly ShardCounter[];
  readonly subtasks: readonly SubtaskRecord[];
}

const DAY_SECONDS = 86_400;
const MAX_TIMEOUT_SECONDS = 30 * DAY_SECONDS;
const MAX_TTL_DAYS = 3_650;

/** A plain decimal with at most two decimals, as a number prints: `32.3`, not `32.301` nor `1e-7`. */
const TWO_DECIMALS = /^\d{1,3}(\.\d{1,2})?$/;

/** A tolerance as integer basis points, or undefined when it has more than two decimals or is out of range. */
export function toBasisPoints(percentage: number): number | undefined {
  if (!Number.isFinite(percentage) || percentage < 0 || percentage > 100) return undefined;
  // 32.3 × 100 is 3229.9999…: round the product, after checking the decimal text has no more than two places.
  return TWO_DECIMALS.test(String(percentage)) ? Math.round(percentage * 100) : undefined;
}

const reject = (message: string): never => {
  throw new InvalidInitializeRequestError(message);
};

/** The rules that hold whenever they are checked: ids, names, counts, option formats. */
function validateShape(request: InitializeRequest): void {
  if (!isValidId(request.taskId)) reject(`Bad task id '${request.taskId}'`);
  if (request.group !== undefined && !GROUP_PATTERN.test(request.group))
    reject(`Bad group '${request.group}'`);
  if (request.actionName.length === 0 || request.actionName.length > 256)
    reject('action_name must be 1-256 characters');
  if (!Number.isSafeInteger(request.total) || request.total < 0)
    reject('total must be a non-negative integer');
  const tolerated = request.toleratedFailurePercentage;
  if (tolerated !== undefined && toBasisPoints(tolerated) === undefined) {
    reject('tolerated_failure_percentage must be a number from 0 to 100 with at most two decimals');
  }
  const timeout = request.subtaskTimeoutSeconds;
  if (
    timeout !== undefined &&
    !(Number.isSafeInteger(timeout) && timeout > 0 && timeout <= MAX_TIMEOUT_SECONDS)
  ) {
    reject(`subtask_timeout_seconds must be a whole number from 1 to ${MAX_TIMEOUT_SECONDS}`);
  }
  if (request.deadline !== undefined && !Number.isFinite(Date.parse(request.deadline))) {
    reject('deadline must be an ISO 8601 time in the future');
  }
  const ttlDays = request.ttlDays;
  if (ttlDays !== undefined && !(Number.isSafeInteger(ttlDays) && ttlDays > 0 && ttlDays <= MAX_TTL_DAYS)) {
    reject(`ttl_days must be a whole number from 1 to ${MAX_TTL_DAYS}`);
  }
}

/**
 * The rules that depend on the clock, checked only when a task is created: the same request again after its
 * deadline is the task it created then, and answers as it did.
 */
function validateTiming(request: InitializeRequest, nowMs: number): void {
  const deadlineMs = request.deadline === undefined ? undefined : Date.parse(request.deadline);
  if (deadlineMs !== undefined && deadlineMs <= nowMs)
    reject('deadline must be an ISO 8601 time in the future');
  if (request.ttlDays !== undefined) {
    // Records must outlive every status still queued for them, or a late status would find no subtask.
    const mustOutlive = (deadlineMs ?? nowMs) + (STATUS_QUEUE.retentionDays + 1) * DAY_SECONDS * 1000;
    if (nowMs + request.ttlDays * DAY_SECONDS * 1000 < mustOutlive) {
      reject(
        `ttl_days must keep the task until its deadline plus the queue's ${STATUS_QUEUE.retentionDays}-day ` +
          'retention plus a day',
      );
    }
  }
}

function sha256(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('base64url');
}

/** Ids hashed per this many, so that a million ids never become one string. */
const DIGEST_CHUNK = 10_000;

/** SHA-256 of the ids as one JSON array, hashed a chunk at a time. */
function idsDigest(ids: readonly string[]): string {
  const hash = createHash('sha256').update('[');
  for (let start = 0; start < ids.length; start += DIGEST_CHUNK) {
    const chunk = JSON.stringify(ids.slice(start, start + DIGEST_CHUNK)).slice(1, -1);
    hash.update(start === 0 ? chunk : `,${chunk}`);
  }
  return hash.update(']').digest('base64url');
}

/** `ids` in id order: the array itself when it already is (numbered ids are), else a sorted copy. */
function inIdOrder(ids: readonly string[]): readonly string[] {
  const sorted = ids.every((id, index) => index === 0 || (ids[index - 1] as string) <= id);
  return sorted ? ids : [...ids].sort();
}

/** Same subtask set, whatever the order. */
export function subtaskDigest(subtaskIds: readonly string[]): string {
  return idsDigest(inIdOrder(subtaskIds));
}

/** The options as stored; absent ones are left out, so two requests that omit them compare equal. */
export function taskOptions(request: InitializeRequest): TaskOptions {
  const tolerated = request.toleratedFailurePercentage;
  return {
    ...(tolerated === undefined ? {} : { tolerated_failure_bp: toBasisPoints(tolerated) }),
    ...(request.subtaskTimeoutSeconds === undefined
      ? {}
      : { subtask_timeout_seconds: request.subtaskTimeoutSeconds }),
    ...(request.deadline === undefined ? {} : { deadline_ms: Date.parse(request.deadline) }),
  };
}

/** Same digest = same job: subtask set (order-free), action, item total and options. */
export function initializationDigest(
  request: InitializeRequest,
  subtasks: string = subtaskDigest(request.subtaskIds),
): string {
  const parts = [subtasks, request.actionName, request.total, taskOptions(request), request.ttlDays ?? null];
  // Appended only when given, so the digest of a request without a group is what it was before groups.
  return sha256(request.group === undefined ? parts : [...parts, request.group]);
}

/**
 * A request whose clock-free rules hold, with its subtask ids in id order: the order initialize writes them in,
 * so that a repeat listing the same set in another order resumes alike. Built once per request.
 */
export interface CheckedRequest {
  readonly request: InitializeRequest;
  readonly orderedIds: readonly string[];
  readonly subtaskDigest: string;
  readonly digest: string;
}

/** Checks `request`'s clock-free rules; throws `InvalidInitializeRequestError` naming the first that fails. */
export function checkRequest(request: InitializeRequest): CheckedRequest {
  validateShape(request);
  if (request.subtaskIds.length === 0) reject('A task needs at least one subtask');
  const bad = request.subtaskIds.find((id) => !isValidId(id));
  if (bad !== undefined) reject(`Bad subtask id '${bad}'`);
  // Sorted, duplicates are neighbours: no set of a million ids is needed to find them.
  const orderedIds = inIdOrder(request.subtaskIds);
  if (orderedIds.some((id, index) => index > 0 && orderedIds[index - 1] === id)) {
    reject('Subtask ids must be unique');
  }
  const subtasks = idsDigest(orderedIds);
  return { request, orderedIds, subtaskDigest: subtasks, digest: initializationDigest(request, subtasks) };
}

/** Equal option by option: a map read back from the table may list its keys in another order. */
function sameOptions(stored: TaskOptions, requested: TaskOptions): boolean {
  const names = new Set([...Object.keys(stored), ...Object.keys(requested)]) as Set<keyof TaskOptions>;
  return [...names].every((name) => stored[name] === requested[name]);
}

/** The fields in which `request` differs from the stored task, named as the HTTP API names them. */
export function differingFields(
  task: TaskRecord,
  request: InitializeRequest,
  checked: Pick<CheckedRequest, 'subtaskDigest' | 'digest'> = checkRequest(request),
): string[] {
  if (task.digest === checked.digest) return [];
  const fields: string[] = [];
  if (task.task_output.total !== request.total) fields.push('total');
  if (task.task_output.action_name !== request.actionName) fields.push('action_name');
  if (task.subtask_digest !== checked.subtaskDigest) fields.push('subtask set');
  if (task.group !== request.group) fields.push('group');
  if (!sameOptions(task.options, taskOptions(request))) fields.push('options');
  if (fields.length === 0) fields.push('ttl_days');
  return fields;
}

/**
 * The task record a new task starts with (`initialize_subtask_info`): `PROGRESS`, not ready, zero counts, a
 * fresh `generation` and `writeShards` frozen with it. Throws `InvalidInitializeRequestError` when the clock
 * rules fail now (a deadline past, a TTL too short).
 */
export function newTaskRecord(
  { request, orderedIds, subtaskDigest: subtasks, digest }: CheckedRequest,
  nowMs: number,
  generation: string,
  writeShards: number = writeShardCount(orderedIds.length),
): TaskRecord {
  validateTiming(request, nowMs);
  if (!Number.isInteger(writeShards) || writeShards < 1) {
    throw new RangeError(`A task needs a whole number of write shards, at least 1: ${writeShards}`);
  }
  const now = new Date(nowMs).toISOString();
  return {
    task_id: request.taskId,
    ...(request.group === undefined ? {} : { group: request.group }),
    generation,
    digest,
    subtask_digest: subtasks,
    ready: false,
    version: 1,
    task_state: 'PROGRESS',
    task_output: {
      action_name: request.actionName,
      ...ZERO_COUNTS,
      total: request.total,
      duration_ms: 0,
      start_time: nowMs / 1000,
    },
    in_flight: ZERO_COUNTS,
    subtasks: { total: orderedIds.length, succeeded: 0, failed: 0 },
    write_shards: writeShards,
    shard_sizes: shardSizes(orderedIds, writeShards),
    counters_vsum: 0,
    options: taskOptions(request),
    created_at: now,
    updated_at: now,
    ...(request.ttlDays === undefined
      ? {}
      : { expires_at: Math.floor(nowMs / 1000) + request.ttlDays * DAY_SECONDS }),
  };
}

function ttlOf(task: TaskRecord): { expires_at?: number } {
  return task.expires_at === undefined ? {} : { expires_at: task.expires_at };
}

/** A zero counter per write shard of `task`. */
export const initialCounters = (task: TaskRecord, createdMs: number): ShardCounter[] =>
  task.shard_sizes.map((_, shard) => zeroCounter(task, shard, createdMs));

/** The counter of write shard `shard` of `task` with nothing counted: its generation, vsum 0, changed at `createdMs`. */
export function zeroCounter(task: TaskRecord, shard: number, createdMs: number): ShardCounter {
  return {
    task_id: task.task_id,
    shard,
    generation: task.generation,
    counts: ZERO_COUNTS,
    subtasks_succeeded: 0,
    subtasks_failed: 0,
    done: 0,
    lost: 0,
    in_flight: ZERO_COUNTS,
    latest_change_ms: createdMs,
    vsum: 0,
    ...ttlOf(task),
  };
}

/**
 * One `QUEUING` zero-count record at version 0 per id, stamped with the task's generation, creation time and TTL:
 * the same records whichever request writes them, so a page can be built when it is written.
 */
export function queuedSubtasks(task: TaskRecord, subtaskIds: readonly string[]): SubtaskRecord[] {
  return subtaskIds.map(
    (subtaskId): SubtaskRecord => ({
      task_id: task.task_id,
      subtask_id: subtaskId,
      status: createSubtaskStatus(subtaskId),
      version: 0,
      generation: task.generation,
      updated_at: task.created_at,
      ...ttlOf(task),
    }),
  );
}

/**
 * Every record a new task starts with: the task, a zero counter per write shard, every subtask `QUEUING` in
 * request order. `writeShards` is frozen with the task. Throws `InvalidInitializeRequestError` for a request
 * that can never succeed.
 */
export function initializeTask(
  request: InitializeRequest,
  nowMs: number,
  generation: string,
  writeShards?: number,
): InitializedTask {
  const task = newTaskRecord(checkRequest(request), nowMs, generation, writeShards);
  return {
    task,
    counters: initialCounters(task, nowMs),
    subtasks: queuedSubtasks(task, request.subtaskIds),
  };
}

export function subtaskShard(task: TaskRecord, subtaskId: string): number {
  return shardOf(subtaskId, task.write_shards);
}

export function remainingSubtasks(task: Pick<TaskRecord, 'subtasks'>): number {
  return task.subtasks.total - task.subtasks.succeeded - task.subtasks.failed;
}

export function isTaskEnded(task: TaskRecord): boolean {
  return task.task_state !== 'PROGRESS';
}
