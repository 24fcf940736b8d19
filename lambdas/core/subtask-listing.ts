/**
 * How a page of a task's subtasks is read, shard by shard, within a read budget (DESIGN §3): the query itself
 * is the store's, passed in, so where a page stops and where its cursor points can be tested without a table.
 */

export interface ShardPosition {
  readonly shard: number;
  /** Continue after this subtask id within the shard. */
  readonly after?: string;
}

export interface ShardQuery {
  readonly shard: number;
  readonly after?: string;
  /** Items the query may read, matching the filter or not (DynamoDB's `Limit`). */
  readonly limit: number;
}

export interface ShardQueryPage<T> {
  /** The items read that match the filter, in id order. */
  readonly items: readonly T[];
  /** Items read, matching or not. */
  readonly scanned: number;
  /** The id of the last item read, when the shard may hold more after it. */
  readonly lastReadId?: string;
}

export interface ListingRequest {
  readonly writeShards: number;
  readonly limit: number;
  /** Items one page may read at most, matching or not: a filtered page may come back short. */
  readonly readBudget: number;
  /** True when the query filters: DynamoDB applies `Limit` before a filter. */
  readonly filtered: boolean;
  readonly from?: ShardPosition;
}

export interface ListingPage<T> {
  readonly items: readonly T[];
  /** Where the next page starts, when more may follow. */
  readonly next?: ShardPosition;
}

/**
 * One page of at most `limit` items. An unfiltered query asks for what is still wanted; a filtered one for the
 * whole remaining budget (asking for what is wanted would read one item a round trip when few match), and its
 * page is cut to `limit` items with the cursor at the last item returned, so the next page starts right after
 * it and never skips or repeats an item.
 */
export async function listPage<T extends { readonly subtask_id: string }>(
  request: ListingRequest,
  query: (shardQuery: ShardQuery) => Promise<ShardQueryPage<T>>,
): Promise<ListingPage<T>> {
  const items: T[] = [];
  let shard = request.from?.shard ?? 0;
  let after = request.from?.after;
  let budget = request.readBudget;
  while (shard < request.writeShards && items.length < request.limit && budget > 0) {
    const wanted = request.limit - items.length;
    const limit = request.filtered ? budget : Math.min(wanted, budget);
    const page = await query({ shard, limit, ...(after === undefined ? {} : { after }) });
    budget -= page.scanned;
    if (page.items.length > wanted) {
      const kept = page.items.slice(0, wanted);
      items.push(...kept);
      return { items, next: { shard, after: (kept[kept.length - 1] as T).subtask_id } };
    }
    items.push(...page.items);
    if (page.lastReadId === undefined) {
      shard += 1;
      after = undefined;
    } else {
      after = page.lastReadId;
    }
  }
  if (shard >= request.writeShards) return { items };
  return { items, next: after === undefined ? { shard } : { shard, after } };
}
