/**
 * Read lag: from a status being handed to an applier until a read of the task (`store.getTask`, what
 * `GET /tasks/{id}` returns) shows its effect. Exact, not inferred from the counts: the fold's own reads are
 * traced, so every task image can be traced back to the subtask versions it counts:
 * - a recount of shard n reads its items and writes a counter whose `vsum` is the sum of their versions; the
 *   tracer keeps what each (shard, vsum) saw, subtask by subtask;
 * - a refresh reads the counters and writes the task with `counters_vsum` = the sum of their `vsum`s; the tracer
 *   keeps which (shard, vsum) each `counters_vsum` stands for.
 * A reader polls `getTask`; a subtask write (id, version v) is visible from the first poll whose
 * `counters_vsum` traces to a recount that saw that subtask at version v or later. Versions only grow and the
 * guards let only newer sums through, so the first mapping recorded for a sum is the one the task shows.
 */

import { recountShard } from '../../lambdas/core/fold';
import type { ShardCounter, SubtaskRecord, TaskRecord } from '../../lambdas/core/task';
import type { FoldStore, TaskStore } from '../../lambdas/store/task-store';

interface PendingWrite {
  readonly version: number;
  readonly handedAt: number;
}

/** How long a write took to show in a read, over the writes a reader watched. */
export interface LagFigures {
  /** Writes whose effect a read showed. */
  readonly samples: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Writes no read ever showed (must be 0 once the fold caught up). */
  readonly unseen: number;
  /** How often the reader polled. */
  readonly pollIntervalMs: number;
}

export interface ReadLagSummary extends LagFigures {
  readonly polls: number;
}

/** Nearest-rank percentile. */
export function percentile(values: readonly number[], fraction: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length)));
  return sorted[rank - 1] ?? 0;
}

export class ReadLagTracer {
  private readonly pending = new Map<string, PendingWrite[]>();
  /** `${shard}:${vsum}` → what that recount saw: subtask id → version. */
  private readonly recounts = new Map<string, ReadonlyMap<string, number>>();
  /** `counters_vsum` → the counters it sums, as `${shard}:${vsum}`. */
  private readonly totals = new Map<number, readonly string[]>();
  /** The union of the recounts each `counters_vsum` stands for, built once. */
  private readonly views = new Map<number, ReadonlyMap<string, number>>();
  private readonly lags: number[] = [];
  private polls = 0;

  constructor(readonly pollIntervalMs: number) {}

  /** An applier wrote `subtaskId` at `version`, for statuses handed to it at `handedAt`. */
  noteWrite(subtaskId: string, version: number, handedAt: number): void {
    const list = this.pending.get(subtaskId) ?? [];
    list.push({ version, handedAt });
    this.pending.set(subtaskId, list);
  }

  noteRecount(task: TaskRecord, shard: number, items: readonly SubtaskRecord[]): void {
    const own = items.filter((item) => item.generation === task.generation);
    // The counter's own sum, exactly as the fold computes it from these items.
    const { vsum } = recountShard(task, shard, items);
    const key = `${shard}:${vsum}`;
    if (!this.recounts.has(key)) {
      this.recounts.set(key, new Map(own.map((item) => [item.subtask_id, item.version])));
    }
  }

  noteCounters(task: TaskRecord, counters: readonly ShardCounter[]): void {
    const own = counters.filter((counter) => counter.generation === task.generation);
    const total = own.reduce((sum, counter) => sum + counter.vsum, 0);
    if (!this.totals.has(total)) {
      this.totals.set(
        total,
        own.map((counter) => `${counter.shard}:${counter.vsum}`),
      );
    }
  }

  private viewOf(countersVsum: number): ReadonlyMap<string, number> | undefined {
    const cached = this.views.get(countersVsum);
    if (cached !== undefined) return cached;
    const parts = this.totals.get(countersVsum);
    if (parts === undefined) return undefined;
    const view = new Map<string, number>();
    for (const part of parts) {
      // A counter written by initialize (vsum 0) saw nothing yet.
      for (const [subtaskId, version] of this.recounts.get(part) ?? []) view.set(subtaskId, version);
    }
    this.views.set(countersVsum, view);
    return view;
  }

  /** A read of the task returned `task` at `at`. */
  observe(task: TaskRecord | undefined, at: number): void {
    this.polls += 1;
    if (task === undefined || task.counters_vsum === 0) return;
    const view = this.viewOf(task.counters_vsum);
    if (view === undefined) return;
    for (const [subtaskId, writes] of this.pending) {
      const seen = view.get(subtaskId);
      if (seen === undefined) continue;
      const still = writes.filter((write) => {
        if (write.version > seen) return true;
        this.lags.push(at - write.handedAt);
        return false;
      });
      if (still.length === 0) this.pending.delete(subtaskId);
      else this.pending.set(subtaskId, still);
    }
  }

  summary(): ReadLagSummary {
    const unseen = [...this.pending.values()].reduce((sum, writes) => sum + writes.length, 0);
    return {
      samples: this.lags.length,
      p50Ms: percentile(this.lags, 0.5),
      p99Ms: percentile(this.lags, 0.99),
      maxMs: this.lags.reduce((max, lag) => Math.max(max, lag), 0),
      unseen,
      pollIntervalMs: this.pollIntervalMs,
      polls: this.polls,
    };
  }
}

/**
 * `store` as the aggregator sees it, telling `tracer` what each recount and refresh read: a wrapper around the
 * fold's narrow interface, so the service's store stays as it is deployed.
 */
export function tracedFoldStore(store: FoldStore, tracer: ReadLagTracer): FoldStore {
  return {
    getTask: store.getTask.bind(store),
    writeCounter: store.writeCounter.bind(store),
    writeFold: store.writeFold.bind(store),
    pendingEvents: store.pendingEvents,
    async readShard(task, shard) {
      const items = await store.readShard(task, shard);
      tracer.noteRecount(task, shard, items);
      return items;
    },
    async getCounters(task) {
      const counters = await store.getCounters(task);
      tracer.noteCounters(task, counters);
      return counters;
    },
  };
}

/** Polls `getTask` every `intervalMs` until stopped, handing each result to the tracer. */
export function startReader(
  store: TaskStore,
  taskId: string,
  tracer: ReadLagTracer,
): { stop(): Promise<void>; pollOnce(): Promise<void> } {
  let stopping = false;
  const pollOnce = async () => {
    const task = await store.getTask(taskId);
    tracer.observe(task, performance.now());
  };
  const loop = (async () => {
    while (!stopping) {
      const started = performance.now();
      await pollOnce();
      const wait = tracer.pollIntervalMs - (performance.now() - started);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
    },
    pollOnce,
  };
}
