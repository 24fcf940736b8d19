/**
 * Write units as DynamoDB bills them, computed from the items written. DynamoDB Local's `ConsumedCapacity` cannot
 * stand in: it reports 2 units for a 3-item transaction, where DynamoDB bills 2 per item per KB. Pure functions
 * only, so the rules can be tested against hand-computed sizes and cross-checked against DynamoDB Local on plain
 * `PutItem` / `UpdateItem`, where it does agree with DynamoDB.
 *
 * Sources (Amazon DynamoDB Developer Guide):
 * - Item sizes: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
 *   "The total size of an item is the sum of the lengths of its attribute names and values": strings are their
 *   UTF-8 bytes; a number is "approximately … (1 byte per two significant digits) + (1 byte)", leading and
 *   trailing zeroes trimmed; binary is its raw bytes; null and Boolean are 1 byte; a List or Map is 3 bytes plus
 *   its elements, and "each List or Map element also requires 1 byte of overhead".
 * - Write units: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
 *   "One write unit represents one write for an item up to 1 KB in size"; sizes are "rounded up to the next 1 KB";
 *   `PutItem` of an existing key and `UpdateItem` bill "the larger of" the item before and after; "Transactional
 *   write requests require 2 write units to perform one write for items up to 1 KB"; and when a condition
 *   "evaluates to false, DynamoDB still consumes write capacity units", sized on the existing item or the new one.
 * - Transactions: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
 *   ("Capacity management for transactions"): "DynamoDB performs two underlying reads or writes of every item in
 *   the transaction: one to prepare the transaction and one to commit the transaction", and that capacity is
 *   consumed even when the transaction does not succeed, so a canceled `TransactWriteItems` is priced here
 *   exactly like a committed one: 2 units per KB of every item it carried.
 */
import { DUE_INDEX, LIST_INDEX_LIST } from '../../lambdas/service-settings';

/** DynamoDB's KB for capacity: 1,024 bytes. */
export const BYTES_PER_WRITE_UNIT = 1_024;

/** The largest item DynamoDB (and DynamoDB Local) stores. */
export const MAX_ITEM_BYTES = 400 * 1_024;

/** Overhead of a List or Map value, whatever its contents. */
const DOCUMENT_OVERHEAD_BYTES = 3;
/** Overhead of each element of a List or Map. */
const ELEMENT_OVERHEAD_BYTES = 1;

const utf8Bytes = (text: string): number => Buffer.byteLength(text, 'utf8');

/**
 * A number's value size. The guide gives "approximately 1 byte per two significant digits, plus 1"; the exact
 * count, which DynamoDB Local reproduces to the byte at the 1 KB boundaries (test/integration/metering.test.ts),
 * pairs the digits on the decimal point, as in a base-100 encoding: 110 is `1|10` (3 bytes, not 2), 1.5 is
 * `1.|50` (3 bytes), 12.5 is `12.|50` (3 bytes). Leading and trailing zero digits are trimmed first, zero is 1
 * byte, and a negative number takes one byte more.
 */
export function numberBytes(value: number | bigint): number {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new RangeError(`DynamoDB cannot store the number ${value}`);
  }
  // The SDK sends `String(n)`, which switches to exponent notation for very large and very small numbers.
  const text = typeof value === 'bigint' ? value.toString() : String(value);
  const negative = text.startsWith('-');
  const [mantissa = '', exponent = '0'] = text.replace(/^-/, '').split(/e/i);
  const [whole = '', fraction = ''] = mantissa.split('.');
  let digits = whole + fraction;
  // Where the decimal point sits, counted in digits from the left of `digits`.
  let point = whole.length + Number(exponent);
  const leadingZeros = digits.length - digits.replace(/^0+/, '').length;
  digits = digits.slice(leadingZeros).replace(/0+$/, '');
  point -= leadingZeros;
  if (digits.length === 0) return 1;
  // Pair digits on the decimal point: an odd count before it borrows a leading zero, an odd tail a trailing one.
  const paired = (point % 2 === 0 ? 0 : 1) + digits.length;
  return 1 + Math.ceil(paired / 2) + (negative ? 1 : 0);
}

function isPlainObject(value: object): boolean {
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * The size of one attribute value, without its name, as the document client marshals it (`removeUndefinedValues`:
 * an undefined map entry is not sent, so it costs nothing). Throws for what our items never hold (sets, class
 * instances), rather than pricing it by guess.
 */
export function valueBytes(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return utf8Bytes(value);
    case 'number':
    case 'bigint':
      return numberBytes(value);
    case 'boolean':
      return 1;
    case 'object': {
      if (value === null) return 1;
      if (value instanceof Uint8Array) return value.byteLength;
      if (Array.isArray(value)) {
        return value.reduce<number>(
          (sum, element) => sum + ELEMENT_OVERHEAD_BYTES + valueBytes(element),
          DOCUMENT_OVERHEAD_BYTES,
        );
      }
      if (isPlainObject(value))
        return DOCUMENT_OVERHEAD_BYTES + attributesBytes(value, ELEMENT_OVERHEAD_BYTES);
      throw new TypeError(`No DynamoDB size rule for a ${value.constructor.name}`);
    }
    default:
      throw new TypeError(`No DynamoDB size rule for a value of type ${typeof value}`);
  }
}

/** Names plus values of a map's entries (top-level attributes carry no per-element overhead). */
function attributesBytes(attributes: object, perEntry: number): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined) continue;
    bytes += perEntry + utf8Bytes(name) + valueBytes(value);
  }
  return bytes;
}

/** The size DynamoDB gives an item: every attribute's name and value, key attributes included. */
export function itemBytes(item: object): number {
  return attributesBytes(item, 0);
}

/** Write units of one non-transactional write of `bytes`: rounded up to the next KB, at least one. */
export function writeUnitsForBytes(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / BYTES_PER_WRITE_UNIT));
}

/** One item written: what it is after the write and, when the key already held an item, what it was before. */
export interface ItemWrite {
  readonly after: object;
  readonly before?: object;
}

/** The size a write is billed on: the larger of the item before and after (`PutItem` overwrite, `UpdateItem`). */
export function billedBytes(write: ItemWrite): number {
  const after = itemBytes(write.after);
  return write.before === undefined ? after : Math.max(after, itemBytes(write.before));
}

/**
 * Units of a `PutItem` or `UpdateItem`, conditional or not. A write whose condition fails is billed the same:
 * DynamoDB still consumes the units of the larger of the existing item and the one it was asked to write.
 */
export function singleWriteUnits(write: ItemWrite): number {
  return writeUnitsForBytes(billedBytes(write));
}

/**
 * Units of a `TransactWriteItems`: 2 per KB of every item (prepare and commit), each item rounded up on its own.
 * The same whether DynamoDB committed the transaction or canceled it.
 */
export function transactionWriteUnits(writes: readonly ItemWrite[]): number {
  return writes.reduce((sum, write) => sum + 2 * singleWriteUnits(write), 0);
}

// --- Reads -----------------------------------------------------------------------------------------------------

/**
 * DynamoDB's KB for reads (read-write-operations.html): one read unit is one strongly consistent read of an item
 * up to 4 KB, rounded up to the next 4 KB; an eventually consistent read costs half. DynamoDB Local reports reads
 * by the same rules (GetItem, Query and BatchGetItem checked at the 4 KB boundaries).
 */
export const BYTES_PER_READ_UNIT = 4_096;

/** Read units of one item of `bytes` (GetItem, or each item of a BatchGetItem): rounded up to the next 4 KB. */
export function itemReadUnits(bytes: number, consistent = true): number {
  const units = Math.max(1, Math.ceil(bytes / BYTES_PER_READ_UNIT));
  return consistent ? units : units / 2;
}

/** Read units of a Query page: the sizes of all items returned are summed, then rounded up to the next 4 KB. */
export function queryReadUnits(itemSizes: readonly number[], consistent = true): number {
  const total = itemSizes.reduce((sum, bytes) => sum + bytes, 0);
  return itemReadUnits(total, consistent);
}

/** Read units of a BatchGetItem: each item is read as its own GetItem, so each is rounded up to 4 KB on its own. */
export function batchGetReadUnits(itemSizes: readonly number[], consistent = true): number {
  return itemSizes.reduce((sum, bytes) => sum + itemReadUnits(bytes, consistent), 0);
}

// --- Global secondary index writes ------------------------------------------------------------------------------

/**
 * Write units a table write adds to a global secondary index, given the index key as the item held it before and
 * after (undefined: the item was not in the sparse index). From the guide's "Global secondary indexes: writes"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Writes): an item entering the
 * index is one write; "If an update to the table changes the value of an indexed key attribute (from A to B), two
 * writes are required, one to delete the previous item from the index and another write to put the new item into
 * the index"; an item leaving it is one write (a delete); an item in the index neither before nor after costs
 * nothing, and neither does a write that leaves a KEYS_ONLY index entry as it was. Each index write of a KEYS_ONLY
 * entry (the keys and index keys only, well under 1 KB) is one unit.
 */
export function indexWriteUnits(before: string | undefined, after: string | undefined): number {
  if (before === after) return 0;
  if (before === undefined || after === undefined) return 1;
  return 2;
}

/** One item's entry in one global secondary index: its index key, and the non-key attributes projected. */
export interface IndexEntry {
  readonly key: string;
  readonly projected: string;
}

/** The table's indexes, as `local/resources.ts` and the CDK stack create them. */
const TABLE_INDEXES = [
  {
    indexName: DUE_INDEX.indexName,
    partitionKey: DUE_INDEX.partitionKey,
    sortKey: DUE_INDEX.sortKey,
    projected: [],
  },
  ...LIST_INDEX_LIST,
] as const;

/** The item's entry in each index it is in (all of them sparse: an item without the keys is in none). */
export function indexEntries(item: object): ReadonlyMap<string, IndexEntry> {
  const record = item as Record<string, unknown>;
  const entries = new Map<string, IndexEntry>();
  for (const index of TABLE_INDEXES) {
    const pk = record[index.partitionKey];
    const sk = record[index.sortKey];
    if (pk === undefined || sk === undefined) continue;
    const projected: readonly string[] = index.projected;
    entries.set(index.indexName, {
      key: `${String(pk)}|${String(sk)}`,
      projected: JSON.stringify(projected.map((name) => record[name] ?? null)),
    });
  }
  return entries;
}

/**
 * Index write units of a table write, over every index: `indexWriteUnits` of each index key, and one write for an
 * entry whose key stayed but whose projected attributes changed (the guide: an update "that modifies a projected
 * attribute" rewrites the index entry). Entries are keys and a state, well under 1 KB: one unit each.
 */
export function tableIndexWriteUnits(
  before: ReadonlyMap<string, IndexEntry> | undefined,
  after: ReadonlyMap<string, IndexEntry>,
): number {
  let units = 0;
  for (const { indexName } of TABLE_INDEXES) {
    const was = before?.get(indexName);
    const is = after.get(indexName);
    units += indexWriteUnits(was?.key, is?.key);
    if (was !== undefined && is !== undefined && was.key === is.key && was.projected !== is.projected)
      units += 1;
  }
  return units;
}
