/**
 * Prices every write and read the streamed path sends, through the store's `StoreObserver`, by DynamoDB's rules
 * (`test/support/metering.ts`):
 * - a write (PutItem of a subtask or counter, UpdateItem of the task) bills 1 unit per KB of the larger of the
 *   item before and after; a write whose condition failed bills the same, sized on the stored item and the one
 *   it tried to write. "Before" is the item as the last applied write (or initialize) left it, which this class
 *   keeps per key, so the task item is priced whole, as DynamoDB prices an UpdateItem;
 * - a task write that moves a sparse index's key (the due index's; the state index's when the task ends) or
 *   rewrites its projection adds that index's writes (`tableIndexWriteUnits`);
 * - reads are counted as DynamoDB Local reports them (`ReturnConsumedCapacity`), which follows DynamoDB's read
 *   rules for GetItem, Query and BatchGetItem (checked by `checkReadUnits` in `metering-check.ts`).
 */

import { TABLE_KEYS } from '../../lambdas/service-settings';
import type { ItemKind, StoreObserver } from '../../lambdas/store/task-store';
import {
  type IndexEntry,
  indexEntries,
  itemBytes,
  tableIndexWriteUnits,
  writeUnitsForBytes,
} from '../../test/support/metering';

export type Role = 'applier' | 'fold';

export interface WriteCount {
  attempts: number;
  /** Attempts whose condition failed: billed all the same. */
  failed: number;
  units: number;
  failedUnits: number;
}

export interface ReadCount {
  requests: number;
  units: number;
}

const ITEM_KINDS: readonly ItemKind[] = ['task', 'counter', 'subtask'];

const zeroWrites = (): WriteCount => ({ attempts: 0, failed: 0, units: 0, failedUnits: 0 });
const zeroReads = (): Record<ItemKind, ReadCount> =>
  Object.fromEntries(ITEM_KINDS.map((kind) => [kind, { requests: 0, units: 0 }])) as Record<
    ItemKind,
    ReadCount
  >;

interface Image {
  readonly rank: number;
  readonly bytes: number;
  readonly indexes: ReadonlyMap<string, IndexEntry>;
}

function keyOf(item: object): string {
  const record = item as Record<string, unknown>;
  return `${String(record[TABLE_KEYS.partitionKey])}|${String(record[TABLE_KEYS.sortKey])}`;
}

/**
 * What orders two images of one item: a subtask's version, a counter's `vsum`, the task's `counters_vsum`
 * (then its version). Concurrent writers report in any order; the stored image is always the highest.
 */
function rankOf(kind: ItemKind, item: object): number {
  const record = item as Record<string, unknown>;
  const number = (name: string) => (typeof record[name] === 'number' ? (record[name] as number) : 0);
  if (kind === 'subtask') return number('version');
  if (kind === 'counter') return number('vsum');
  return number('counters_vsum') * 1e6 + number('version');
}

export type WriteListener = (kind: ItemKind, item: object, applied: boolean) => void;

export class StreamMeter {
  readonly writes: Record<ItemKind, WriteCount> = {
    task: zeroWrites(),
    counter: zeroWrites(),
    subtask: zeroWrites(),
  };
  /** Write units of the due index (one per index write: its KEYS_ONLY entries are far below 1 KB). */
  indexUnits = 0;
  readonly reads: Record<Role, Record<ItemKind, ReadCount>> = { applier: zeroReads(), fold: zeroReads() };
  readonly largestItemBytes: Record<ItemKind, number> = { task: 0, counter: 0, subtask: 0 };
  /** Applied writes per subtask id: each must have raised that subtask's version by exactly one. */
  readonly appliedSubtaskWrites = new Map<string, number>();
  private readonly images = new Map<string, Image>();

  /** Records an item as stored without billing it: initialize's writes, and the items read back after it. */
  seed(kind: ItemKind, item: object): void {
    this.remember(kind, item);
  }

  /** An observer that seeds (initialize) rather than bills. */
  seeding(): StoreObserver {
    return {
      write: (kind, item, applied) => {
        if (applied) this.seed(kind, item);
      },
      read: () => undefined,
    };
  }

  /** An observer that bills every write and read of `role`, and tells `listener` of each write. */
  observer(role: Role, listener?: WriteListener): StoreObserver {
    return {
      write: (kind, item, applied) => {
        this.bill(kind, item, applied);
        listener?.(kind, item, applied);
      },
      read: (kind, capacityUnits) => {
        const count = this.reads[role][kind];
        count.requests += 1;
        count.units += capacityUnits;
      },
    };
  }

  private remember(kind: ItemKind, item: object): Image | undefined {
    const key = keyOf(item);
    const before = this.images.get(key);
    const image: Image = { rank: rankOf(kind, item), bytes: itemBytes(item), indexes: indexEntries(item) };
    if (before === undefined || image.rank >= before.rank) this.images.set(key, image);
    return before;
  }

  private bill(kind: ItemKind, item: object, applied: boolean): void {
    const bytes = itemBytes(item);
    const stored = this.images.get(keyOf(item));
    const units = writeUnitsForBytes(Math.max(bytes, stored?.bytes ?? 0));
    const count = this.writes[kind];
    count.attempts += 1;
    count.units += units;
    this.largestItemBytes[kind] = Math.max(this.largestItemBytes[kind], bytes, stored?.bytes ?? 0);
    if (!applied) {
      count.failed += 1;
      count.failedUnits += units;
      return;
    }
    const before = this.remember(kind, item);
    if (kind === 'task') {
      this.indexUnits += tableIndexWriteUnits(before?.indexes, indexEntries(item));
    }
    if (kind === 'subtask') {
      const subtaskId = String((item as Record<string, unknown>).subtask_id);
      this.appliedSubtaskWrites.set(subtaskId, (this.appliedSubtaskWrites.get(subtaskId) ?? 0) + 1);
    }
  }

  /** Every write unit billed: table writes, refused ones included, and index writes. */
  get billedUnits(): number {
    return ITEM_KINDS.reduce((sum, kind) => sum + this.writes[kind].units, 0) + this.indexUnits;
  }

  readUnits(role: Role): number {
    return ITEM_KINDS.reduce((sum, kind) => sum + this.reads[role][kind].units, 0);
  }
}
