/**
 * Write shards spread a hot task's subtask items over several partition keys, so one task is not held to one
 * partition's 1,000 write units a second. The count and the hash are frozen at initialize: changing either
 * would move subtasks to another shard under a running task.
 */

import { createHash } from 'node:crypto';

/** Subtasks per write shard, at most: one shard's recount stays one bounded query. */
export const SUBTASKS_PER_SHARD = 1_000;

export function writeShardCount(subtasks: number): number {
  return Math.max(1, Math.ceil(subtasks / SUBTASKS_PER_SHARD));
}

/** SHA-256 of the id, first 4 bytes as an unsigned integer, modulo the task's shard count. */
export function shardOf(subtaskId: string, writeShards: number): number {
  return createHash('sha256').update(subtaskId, 'utf8').digest().readUInt32BE(0) % writeShards;
}

/** How many of `subtaskIds` land in each shard. */
export function shardSizes(subtaskIds: readonly string[], writeShards: number): number[] {
  const sizes = new Array<number>(writeShards).fill(0);
  for (const id of subtaskIds) {
    const shard = shardOf(id, writeShards);
    sizes[shard] = (sizes[shard] ?? 0) + 1;
  }
  return sizes;
}
