import { z } from 'zod';
import { idSchema } from '../core/identifiers';
import type { ShardPosition } from '../store/task-store';

/**
 * The `next_cursor` of a subtask listing: where the next page starts (a write shard and the last subtask id
 * read in it), base64url-encoded JSON. It is not signed: it can only name a position inside the partitions of
 * the task in the URL, which the caller may read anyway, so it is validated strictly instead — any cursor that
 * is not exactly what this API issues, or names a shard the task does not have, is a 400.
 */

const MAX_CURSOR_CHARS = 512;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

const cursorSchema = z.strictObject({
  s: z.int().nonnegative(),
  a: idSchema.optional(),
});

export class InvalidCursorError extends Error {
  constructor() {
    super('cursor is not one this API issued for this listing');
    this.name = 'InvalidCursorError';
  }
}

export function encodeCursor(position: ShardPosition): string {
  const json = JSON.stringify(
    position.after === undefined ? { s: position.shard } : { s: position.shard, a: position.after },
  );
  return Buffer.from(json, 'utf8').toString('base64url');
}

/** The position a cursor names; throws `InvalidCursorError` for anything else, or a shard beyond `writeShards`. */
export function decodeCursor(cursor: string, writeShards: number): ShardPosition {
  if (cursor.length > MAX_CURSOR_CHARS || !BASE64URL.test(cursor)) throw new InvalidCursorError();
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  const parsed = cursorSchema.safeParse(json);
  if (!parsed.success || parsed.data.s >= writeShards) throw new InvalidCursorError();
  // Only a cursor this API would issue: re-encoding it must give it back, so no alternative spelling passes.
  const position =
    parsed.data.a === undefined ? { shard: parsed.data.s } : { shard: parsed.data.s, after: parsed.data.a };
  if (encodeCursor(position) !== cursor) throw new InvalidCursorError();
  return position;
}
