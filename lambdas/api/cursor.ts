/**
 * The `next_cursor` of a subtask listing: where the next page starts (a write shard and the last subtask id
 * read in it), base64url-encoded JSON. It is not signed: it can only name a position inside the partitions of
 * the task in the URL, which the caller may read anyway, so it is validated strictly instead — any cursor that
 * is not exactly what this API issues, or names a shard the task does not have, is a 400.
 */

import { z } from 'zod';
import { idSchema } from '../core/identifiers';
import type { ShardPosition } from '../store/task-store';

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

/** `value` as a cursor: its JSON, base64url-encoded. */
export function encodeCursorJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** What a cursor of at most `maxChars` holds, as `schema` reads it; `InvalidCursorError` for anything else. */
export function decodeCursorJson<T>(cursor: string, schema: z.ZodType<T>, maxChars: number): T {
  if (cursor.length > maxChars || !BASE64URL.test(cursor)) throw new InvalidCursorError();
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new InvalidCursorError();
  return parsed.data;
}

export function encodeCursor(position: ShardPosition): string {
  return encodeCursorJson(
    position.after === undefined ? { s: position.shard } : { s: position.shard, a: position.after },
  );
}

/** The position a cursor names; throws `InvalidCursorError` for anything else, or a shard beyond `writeShards`. */
export function decodeCursor(cursor: string, writeShards: number): ShardPosition {
  const { s, a } = decodeCursorJson(cursor, cursorSchema, MAX_CURSOR_CHARS);
  if (s >= writeShards) throw new InvalidCursorError();
  // Only a cursor this API would issue: re-encoding it must give it back, so no alternative spelling passes.
  const position = a === undefined ? { shard: s } : { shard: s, after: a };
  if (encodeCursor(position) !== cursor) throw new InvalidCursorError();
  return position;
}
