/**
 * The one table as every part of the store uses it: conditional puts and updates that answer false when their
 * condition failed, queries and batch reads, each reported to the observer when there is one.
 */
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { backoffDelayMs, DEFAULT_RETRY_POLICY, sleep } from '../core/backoff';
import { StoreUnavailableError } from '../core/errors';
import { type Condition, conditionExpression, type Update, updateExpression } from './expressions';
import type { ItemKey } from './task-items';

/** BatchGetItem takes at most 100 keys a call. */
const BATCH_GET_LIMIT = 100;

/** The kinds of item the store reads and writes, as the bench meters them. */
export type ItemKind = 'task' | 'counter' | 'subtask';

/** Sees every write attempt and read, for metering; the service itself runs without one. */
export interface StoreObserver {
  /** A write sent: `applied` false when its condition failed (it is billed all the same). */
  write(kind: ItemKind, item: object, applied: boolean): void;
  /** Read units DynamoDB reported for a read. */
  read(kind: ItemKind, capacityUnits: number): void;
}

export interface ReadOptions {
  /**
   * False for an eventually consistent read: half the read units, possibly missing the latest writes, for a
   * caller whose conditional write catches what the read missed. @default true
   */
  readonly consistent?: boolean;
}

/** A write the observer sees as this kind of item with this content. */
export interface Metered {
  readonly kind: ItemKind;
  readonly item: object;
}

export function isConditionFailure(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException;
}

export class Table {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly tableName: string,
    private readonly observer?: StoreObserver,
    private readonly random: () => number = Math.random,
  ) {}

  private get capacity() {
    return this.observer === undefined ? {} : { ReturnConsumedCapacity: 'TOTAL' as const };
  }

  /** A conditional put; false when its condition failed. */
  async put(kind: ItemKind, item: object, when: Condition): Promise<boolean> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item as Record<string, unknown>,
          ...conditionExpression(when),
        }),
      );
      this.observer?.write(kind, item, true);
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      this.observer?.write(kind, item, false);
      return false;
    }
  }

  /**
   * Puts `items` in one transaction, each under `when`; false when it was canceled (an item's condition failed,
   * or a conflict or throttling), in which case nothing was written.
   */
  async putAll(kind: ItemKind, items: readonly object[], when: Condition): Promise<boolean> {
    const condition = conditionExpression(when);
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: items.map((item) => ({
            Put: { TableName: this.tableName, Item: item as Record<string, unknown>, ...condition },
          })),
        }),
      );
      for (const item of items) this.observer?.write(kind, item, true);
      return true;
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      return false;
    }
  }

  /** A conditional update; false when its condition failed. `metered` is what the observer sees written. */
  async update(key: ItemKey, update: Update, metered?: Metered): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({ TableName: this.tableName, Key: key, ...updateExpression(update) }),
      );
      if (metered !== undefined) this.observer?.write(metered.kind, metered.item, true);
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      if (metered !== undefined) this.observer?.write(metered.kind, metered.item, false);
      return false;
    }
  }

  async get(kind: ItemKind, key: ItemKey, { consistent = true }: ReadOptions = {}) {
    const { Item, ConsumedCapacity } = await this.db.send(
      new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: consistent, ...this.capacity }),
    );
    this.observer?.read(kind, ConsumedCapacity?.CapacityUnits ?? 0);
    return Item;
  }

  async query(kind: ItemKind, input: Omit<QueryCommandInput, 'TableName'>) {
    const page = await this.db.send(
      new QueryCommand({ TableName: this.tableName, ...input, ...this.capacity }),
    );
    this.observer?.read(kind, page.ConsumedCapacity?.CapacityUnits ?? 0);
    return page;
  }

  /** Whole items, unless `attributes` asks for a projection; consistent unless asked otherwise. */
  async batchGet(
    kind: ItemKind,
    keys: readonly ItemKey[],
    {
      consistent = true,
      attributes,
    }: { readonly consistent?: boolean; readonly attributes?: readonly string[] } = {},
  ): Promise<Record<string, unknown>[]> {
    const read = {
      ConsistentRead: consistent,
      ...(attributes === undefined
        ? {}
        : {
            ProjectionExpression: attributes.map((_, index) => `#a${index}`).join(', '),
            ExpressionAttributeNames: Object.fromEntries(
              attributes.map((name, index) => [`#a${index}`, name]),
            ),
          }),
    };
    const found: Record<string, unknown>[] = [];
    for (let start = 0; start < keys.length; start += BATCH_GET_LIMIT) {
      let pending = keys.slice(start, start + BATCH_GET_LIMIT);
      for (let attempt = 1; pending.length > 0; attempt++) {
        if (attempt > DEFAULT_RETRY_POLICY.maxAttempts) {
          throw new StoreUnavailableError(`${pending.length} reads stayed unprocessed`);
        }
        if (attempt > 1) await sleep(backoffDelayMs(DEFAULT_RETRY_POLICY, attempt - 1, this.random));
        const { Responses, UnprocessedKeys, ConsumedCapacity } = await this.db.send(
          new BatchGetCommand({
            RequestItems: { [this.tableName]: { Keys: pending, ...read } },
            ...this.capacity,
          }),
        );
        this.observer?.read(kind, ConsumedCapacity?.[0]?.CapacityUnits ?? 0);
        found.push(...(Responses?.[this.tableName] ?? []));
        pending = (UnprocessedKeys?.[this.tableName]?.Keys ?? []) as ItemKey[];
      }
    }
    return found;
  }
}

/**
 * Runs `work` over `items` in order with at most `parallelism` in flight, starting each only while `more()`
 * holds; returns how many ran, always the first ones.
 */
export async function inParallel<T>(
  items: readonly T[],
  parallelism: number,
  work: (item: T) => Promise<unknown>,
  more: () => boolean = () => true,
): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && more()) {
      await work(items[next++] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallelism, items.length) }, worker));
  return next;
}
