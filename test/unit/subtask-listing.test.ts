import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ListingRequest,
  listPage,
  type ShardPosition,
  type ShardQuery,
  type ShardQueryPage,
} from '../../lambdas/core/subtask-listing';

/** A subtask as the listing sees it: its id, and whether the filter matches it. */
interface Item {
  readonly subtask_id: string;
  readonly matches: boolean;
}

/**
 * Shards of items in id order, queried the way DynamoDB queries a partition: `Limit` items read from after
 * `after`, then the filter; the last key read is returned when the shard may hold more.
 */
function shardTable(shards: readonly (readonly Item[])[]) {
  const queries: ShardQuery[] = [];
  /** Items read by each query, matching or not. */
  const scanned: number[] = [];
  const query = async ({ shard, after, limit }: ShardQuery): Promise<ShardQueryPage<Item>> => {
    queries.push({ shard, limit, ...(after === undefined ? {} : { after }) });
    const items = shards[shard] ?? [];
    const start = after === undefined ? 0 : items.findIndex((item) => item.subtask_id === after) + 1;
    const read = items.slice(start, start + limit);
    const more = start + limit < items.length;
    const last = read[read.length - 1];
    scanned.push(read.length);
    return {
      items: read.filter((item) => item.matches),
      scanned: read.length,
      ...(more && last !== undefined ? { lastReadId: last.subtask_id } : {}),
    };
  };
  return { query, queries, scanned };
}

function shardOf(size: number, matching: (index: number) => boolean, shard = 0): Item[] {
  return Array.from({ length: size }, (_, index) => ({
    subtask_id: `s${shard}-${String(index).padStart(5, '0')}`,
    matches: matching(index),
  }));
}

const filtered = (limit: number, readBudget: number, from?: ShardPosition): ListingRequest => ({
  writeShards: 1,
  limit,
  readBudget,
  filtered: true,
  ...(from === undefined ? {} : { from }),
});

describe('listPage', () => {
  it('asks a filtered query for the whole remaining budget, not for the items still wanted', async () => {
    const table = shardTable([shardOf(1_000, (index) => index === 700)]);

    const page = await listPage(filtered(1, 1_000), table.query);

    expect(page.items.map((item) => item.subtask_id)).toEqual(['s0-00700']);
    expect(table.queries).toEqual([{ shard: 0, limit: 1_000 }]);
  });

  it('cuts a filtered page to its limit with the cursor at the last item returned', async () => {
    const table = shardTable([shardOf(100, (index) => index % 10 === 0)]);

    const first = await listPage(filtered(2, 100), table.query);
    const second = await listPage(filtered(2, 100, first.next), table.query);

    expect(first.items.map((item) => item.subtask_id)).toEqual(['s0-00000', 's0-00010']);
    expect(first.next).toEqual({ shard: 0, after: 's0-00010' });
    expect(second.items.map((item) => item.subtask_id)).toEqual(['s0-00020', 's0-00030']);
    expect(second.next).toEqual({ shard: 0, after: 's0-00030' });
  });

  it('puts the cursor after the last item read when the page fills exactly: the items read beyond never match', async () => {
    const table = shardTable([shardOf(100, (index) => index === 5)]);

    const page = await listPage(filtered(1, 50), table.query);

    expect(page.items.map((item) => item.subtask_id)).toEqual(['s0-00005']);
    expect(page.next).toEqual({ shard: 0, after: 's0-00049' });
  });

  it('asks an unfiltered query for what is still wanted, and moves to the next shard at a shard’s end', async () => {
    const table = shardTable([shardOf(3, () => true, 0), shardOf(10, () => true, 1)]);

    const page = await listPage({ writeShards: 2, limit: 5, readBudget: 100, filtered: false }, table.query);

    expect(page.items.map((item) => item.subtask_id)).toEqual([
      's0-00000',
      's0-00001',
      's0-00002',
      's1-00000',
      's1-00001',
    ]);
    expect(table.queries).toEqual([
      { shard: 0, limit: 5 },
      { shard: 1, limit: 2 },
    ]);
    expect(page.next).toEqual({ shard: 1, after: 's1-00001' });
  });

  it('pages through every matching item once, in order, each page within its limit and read budget', async () => {
    const shardsArb = fc.array(fc.array(fc.boolean(), { maxLength: 40 }), { minLength: 1, maxLength: 4 });
    await fc.assert(
      fc.asyncProperty(
        shardsArb,
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 30 }),
        fc.boolean(),
        async (matches, limit, readBudget, isFiltered) => {
          const shards = matches.map((flags, shard) =>
            shardOf(flags.length, (index) => flags[index] === true, shard),
          );
          const table = shardTable(
            isFiltered ? shards : shards.map((items) => items.map((item) => ({ ...item, matches: true }))),
          );
          const listed: string[] = [];
          let from: ShardPosition | undefined;
          for (let pages = 0; pages < 1_000; pages++) {
            const before = table.queries.length;
            const page = await listPage(
              {
                writeShards: shards.length,
                limit,
                readBudget,
                filtered: isFiltered,
                ...(from === undefined ? {} : { from }),
              },
              table.query,
            );
            const read = table.scanned.slice(before).reduce((sum, items) => sum + items, 0);
            expect(page.items.length).toBeLessThanOrEqual(limit);
            expect(read).toBeLessThanOrEqual(readBudget);
            listed.push(...page.items.map((item) => item.subtask_id));
            from = page.next;
            if (from === undefined) break;
          }
          const expected = shards
            .flat()
            .filter((item) => !isFiltered || item.matches)
            .map((item) => item.subtask_id);
          expect(from).toBeUndefined();
          expect(listed).toEqual(expected);
        },
      ),
    );
  });
});
