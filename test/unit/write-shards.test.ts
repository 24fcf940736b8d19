import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SUBTASKS_PER_SHARD, shardOf, shardSizes, writeShardCount } from '../../lambdas/core/write-shards';
import { subtaskIds } from '../support/factories';

/**
 * The shard count and the hash are frozen at initialize: a running task's subtasks must stay where they are.
 * The values below were computed once (SHA-256 of the id, first 4 bytes big-endian, modulo the shard count, and
 * checked against `sha256sum`); a change of hash or byte order breaks them.
 */
describe('shardOf', () => {
  it.each([
    ['sub-00000', 7, 6],
    ['sub-00001', 7, 1],
    ['sub-00003', 7, 5],
    ['a', 7, 2],
    ['task-1', 7, 0],
    ['sub-00000', 3, 1],
    ['a', 3, 2],
    ['task-1', 3, 2],
    ['sub-00000', 2, 1],
    ['sub-00001', 2, 0],
  ])("puts '%s' in shard %i of %i… frozen", (id, shards, expected) => {
    const shard = shardOf(id, shards);

    expect(shard).toBe(expected);
  });

  it('uses the first four bytes of the hash as an unsigned integer', () => {
    // sha256('sub-00000') starts bb3d1f5b: as a signed integer it would be negative.
    const shard = shardOf('sub-00000', 2 ** 32 - 1);

    expect(shard).toBe(0xbb3d1f5b);
  });

  it('puts every id in shard 0 of 1', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 128 }), (id) => {
        expect(shardOf(id, 1)).toBe(0);
      }),
    );
  });

  it('always gives a whole shard number within [0, writeShards)', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 128 }),
        fc.integer({ min: 1, max: 1_000 }),
        (id, shards) => {
          const shard = shardOf(id, shards);

          expect(Number.isInteger(shard)).toBe(true);
          expect(shard).toBeGreaterThanOrEqual(0);
          expect(shard).toBeLessThan(shards);
        },
      ),
    );
  });
});

describe('writeShardCount', () => {
  it.each([
    [1, 1],
    [999, 1],
    [1_000, 1],
    [1_001, 2],
    [2_000, 2],
    [2_001, 3],
    [100_000, 100],
  ])('gives %i subtasks %i write shard(s)', (subtasks, expected) => {
    expect(writeShardCount(subtasks)).toBe(expected);
  });

  it('gives at least one shard, even for no subtasks', () => {
    expect(writeShardCount(0)).toBe(1);
  });

  it(`gives the fewest shards that hold at most ${SUBTASKS_PER_SHARD} subtasks each on average`, () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000_000 }), (subtasks) => {
        const shards = writeShardCount(subtasks);

        expect(subtasks).toBeLessThanOrEqual(shards * SUBTASKS_PER_SHARD);
        expect(subtasks).toBeGreaterThan((shards - 1) * SUBTASKS_PER_SHARD);
      }),
    );
  });
});

describe('shardSizes', () => {
  it('counts how many ids land in each shard, as shardOf places them (frozen)', () => {
    const sizes = [shardSizes(subtaskIds(2_500), 3), shardSizes(subtaskIds(1_001), 2)];

    expect(sizes).toEqual([
      [810, 844, 846],
      [505, 496],
    ]);
  });

  it('gives one size per shard, summing to the number of ids', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_500 }), fc.integer({ min: 1, max: 8 }), (count, shards) => {
        const sizes = shardSizes(subtaskIds(count), shards);

        expect(sizes).toHaveLength(shards);
        expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(count);
      }),
      { numRuns: 20 },
    );
  });

  it('spreads numbered ids evenly enough that no shard holds twice its share', () => {
    const sizes = shardSizes(subtaskIds(10_000), 10);

    for (const size of sizes) expect(size).toBeLessThan(2 * 1_000);
    for (const size of sizes) expect(size).toBeGreaterThan(1_000 / 2);
  });
});
