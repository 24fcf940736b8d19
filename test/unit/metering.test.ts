/**
 * DynamoDB's sizing rules on small items whose sizes are counted by hand here, and its write-unit rules on
 * items of known size. The integration test checks the same functions against DynamoDB Local.
 */

import { describe, expect, it } from 'vitest';
import {
  batchGetReadUnits,
  billedBytes,
  indexEntries,
  indexWriteUnits,
  itemBytes,
  itemReadUnits,
  numberBytes,
  queryReadUnits,
  singleWriteUnits,
  tableIndexWriteUnits,
  transactionWriteUnits,
  valueBytes,
  writeUnitsForBytes,
} from '../support/metering';

/** An item of exactly `bytes`: the key attribute `k` (1 + 1) and a padding string `p` (1 + length). */
function itemOf(bytes: number): Record<string, string> {
  return { k: 'x', p: 'p'.repeat(bytes - 3) };
}

describe('item size', () => {
  it('counts a string as its name plus its UTF-8 bytes', () => {
    expect(itemBytes({ id: 'abc' })).toBe(2 + 3);
    expect(itemBytes({ s: 'é✓' })).toBe(1 + 2 + 3);
  });

  it('counts a Boolean or a null as its name plus 1 byte', () => {
    expect(itemBytes({ b: true, z: null })).toBe(1 + 1 + (1 + 1));
  });

  it('counts binary as its raw bytes', () => {
    expect(itemBytes({ b: new Uint8Array(5) })).toBe(1 + 5);
  });

  it('counts a map as 3 bytes plus, per entry, 1 byte, the entry name and its value', () => {
    // m: 1 | map: 3 | a: 1 + 1 + 2 (the number 1) | b: 1 + 1 + 2 ('xy')
    expect(itemBytes({ m: { a: 1, b: 'xy' } })).toBe(1 + 3 + 4 + 4);
    expect(itemBytes({ m: {} })).toBe(1 + 3);
  });

  it('counts a list as 3 bytes plus, per element, 1 byte and its value', () => {
    // l: 1 | list: 3 | 1: 1 + 2 | 'a': 1 + 1
    expect(itemBytes({ l: [1, 'a'] })).toBe(1 + 3 + 3 + 2);
  });

  it('counts nested documents with their own overheads', () => {
    // m: 1 | outer map: 3 | entry s: 1 + 1 + (inner map 3 + entry a: 1 + 1 + 2)
    expect(itemBytes({ m: { s: { a: 1 } } })).toBe(1 + 3 + (1 + 1 + (3 + 4)));
  });

  it('adds the key attributes like any other', () => {
    expect(itemBytes({ pk: 'TASK#t1', sk: 'SUB#s1', version: 7 })).toBe(2 + 7 + (2 + 6) + (7 + 2));
  });

  it('leaves out undefined map entries, as the document client does', () => {
    expect(itemBytes({ a: 'x', gone: undefined })).toBe(2);
  });

  it('refuses values it has no rule for rather than guessing', () => {
    expect(() => valueBytes(new Set(['a']))).toThrow(TypeError);
    expect(() => valueBytes(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});

describe('number size', () => {
  it.each([
    [0, 1],
    [7, 2],
    [12, 2],
    [123, 3],
    [1_000, 2],
    [12_345, 4],
  ])('gives %d, with leading and trailing zeroes trimmed, %d bytes', (value, bytes) => {
    expect(numberBytes(value)).toBe(bytes);
  });

  it.each([
    [110, 3, '1|10'],
    [101, 3, '1|01'],
    [1.5, 3, '1.|50'],
    [12.5, 3, '12.|50'],
    [0.05, 2, '0.|05'],
    [0.005, 2, '0.00|50'],
    [1_764_386_774.123, 8, '17|64|38|67|74.|12|30'],
  ])('pairs the digits of %d on the decimal point: %d bytes (%s)', (value, bytes) => {
    expect(numberBytes(value)).toBe(bytes);
  });

  it('takes one byte more for a negative number', () => {
    expect(numberBytes(-5)).toBe(numberBytes(5) + 1);
  });

  it('reads the exponent notation the SDK sends for very small numbers', () => {
    expect(numberBytes(1.5e-7)).toBe(numberBytes(0.00000015));
  });

  it('sizes big integers given as bigint', () => {
    expect(numberBytes(10n ** 21n)).toBe(2);
  });
});

describe('write units', () => {
  it('rounds an item up to the next KB, at least one unit', () => {
    expect(writeUnitsForBytes(1)).toBe(1);
    expect(writeUnitsForBytes(1_024)).toBe(1);
    expect(writeUnitsForBytes(1_025)).toBe(2);
    expect(writeUnitsForBytes(3_072)).toBe(3);
  });

  it('bills a put or update on the larger of the item before and after', () => {
    expect(billedBytes({ before: itemOf(2_049), after: itemOf(100) })).toBe(2_049);
    expect(singleWriteUnits({ before: itemOf(2_049), after: itemOf(100) })).toBe(3);
    expect(singleWriteUnits({ before: itemOf(100), after: itemOf(1_500) })).toBe(2);
    expect(singleWriteUnits({ after: itemOf(500) })).toBe(1);
  });

  it('bills a transaction 2 units per KB of each item, each rounded on its own', () => {
    // The developer guide's example: three 500-byte items in one transaction take six write units.
    expect(
      transactionWriteUnits([{ after: itemOf(500) }, { after: itemOf(500) }, { after: itemOf(500) }]),
    ).toBe(6);
    expect(
      transactionWriteUnits([{ after: itemOf(500) }, { before: itemOf(1_025), after: itemOf(900) }]),
    ).toBe(2 + 4);
  });
});

describe('read units', () => {
  it('rounds a consistent read of one item up to the next 4 KB, at least one unit; eventual reads cost half', () => {
    expect(itemReadUnits(1)).toBe(1);
    expect(itemReadUnits(4_096)).toBe(1);
    expect(itemReadUnits(4_097)).toBe(2);
    expect(itemReadUnits(9_000)).toBe(3);
    expect(itemReadUnits(9_000, false)).toBe(1.5);
  });

  it('rounds a Query page as a whole: the items are summed first', () => {
    // 1,000 items of 250 bytes: 250,000 bytes, 61.04 × 4 KB.
    expect(queryReadUnits(Array.from({ length: 1_000 }, () => 250))).toBe(62);
    expect(queryReadUnits([100, 100, 100])).toBe(1);
  });

  it('rounds each item of a BatchGetItem on its own', () => {
    expect(batchGetReadUnits([100, 100, 100])).toBe(3);
    expect(batchGetReadUnits([4_097, 100])).toBe(3);
  });
});

describe('due index writes', () => {
  it('costs one write to enter or leave the sparse index, two to move the key, none otherwise', () => {
    expect(indexWriteUnits(undefined, 'DUE|100')).toBe(1);
    expect(indexWriteUnits('DUE|100', undefined)).toBe(1);
    expect(indexWriteUnits('DUE|100', 'DUE|160')).toBe(2);
    expect(indexWriteUnits('DUE|100', 'DUE|100')).toBe(0);
    expect(indexWriteUnits(undefined, undefined)).toBe(0);
  });
});

describe('tableIndexWriteUnits', () => {
  const task = (extra: Record<string, unknown>) => ({
    pk: 'TASK#t',
    sk: 'TASK',
    list_pk: 'ALL',
    created_at: '2026-01-01T00:00:00.000Z',
    task_state: 'PROGRESS',
    version: 1,
    ...extra,
  });

  it('puts a new task into the due index and the two listing indexes it has keys for', () => {
    expect(tableIndexWriteUnits(undefined, indexEntries(task({ due_pk: 'DUE', due_at: 100 })))).toBe(3);
    expect(tableIndexWriteUnits(undefined, indexEntries(task({ group: 'g' })))).toBe(3);
  });

  it('costs no listing index anything when a fold rewrites counts, versions and times', () => {
    const before = indexEntries(task({ due_pk: 'DUE', due_at: 100 }));
    const after = indexEntries(task({ due_pk: 'DUE', due_at: 100, version: 2, updated_at: 'later' }));
    expect(tableIndexWriteUnits(before, after)).toBe(0);
  });

  it('moves the state entry and rewrites the projected state once, when the task ends', () => {
    const before = indexEntries(task({ group: 'g', due_pk: 'DUE', due_at: 100 }));
    const after = indexEntries(task({ group: 'g', task_state: 'SUCCESS' }));
    // due: leaves (1); tasks: projection rewritten (1); by state: moved (2); by group: projection rewritten (1).
    expect(tableIndexWriteUnits(before, after)).toBe(5);
  });
});
