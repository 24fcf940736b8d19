/**
 * A `StoreObserver` that keeps what it saw, for audits: every write the store sent (applied or not) and every
 * read's capacity. The store reports its conditional puts and the fold's task writes; its other updates
 * (`markReady`, `setDueAt`, `requestCancel`, `endIncomplete`, initialize's progress mark) are not reported.
 */

import type { ItemKind, StoreObserver } from '../../lambdas/store/task-store';

export interface RecordedWrite {
  readonly kind: ItemKind;
  readonly item: Readonly<Record<string, unknown>>;
  readonly applied: boolean;
}

export interface RecordedRead {
  readonly kind: ItemKind;
  readonly capacityUnits: number;
}

export class StoreRecorder implements StoreObserver {
  readonly writes: RecordedWrite[] = [];
  readonly reads: RecordedRead[] = [];

  write(kind: ItemKind, item: object, applied: boolean): void {
    this.writes.push({ kind, item: item as Record<string, unknown>, applied });
  }

  read(kind: ItemKind, capacityUnits: number): void {
    this.reads.push({ kind, capacityUnits });
  }

  /** Applied writes of one kind for one task. */
  appliedWrites(kind: ItemKind, taskId: string): Record<string, unknown>[] {
    return this.writes
      .filter((write) => write.applied && write.kind === kind && write.item.task_id === taskId)
      .map((write) => write.item);
  }

  /** Per subtask of `taskId`, the versions its applied status writes carried (initialize's version 0 left out). */
  subtaskVersions(taskId: string): Map<string, number[]> {
    const versions = new Map<string, number[]>();
    for (const item of this.appliedWrites('subtask', taskId)) {
      const version = Number(item.version);
      if (version === 0) continue;
      const id = String(item.subtask_id);
      versions.set(id, [...(versions.get(id) ?? []), version]);
    }
    return versions;
  }

  /** Forgets everything seen so far. */
  clear(): void {
    this.writes.length = 0;
    this.reads.length = 0;
  }
}
