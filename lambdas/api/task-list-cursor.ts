/**
 * The `next_cursor` of `GET /tasks`: the listing sort key to continue after, and the filter it was issued for,
 * base64url-encoded JSON. Like the subtask cursor it is not signed (it only names a position in an index the
 * caller may list anyway), so it is validated strictly: a cursor this API would not issue for this very query is
 * a 400, never a read somewhere else.
 */
import { z } from 'zod';
import { groupSchema, idSchema } from '../core/identifiers';
import { LIST_STATES, type ListState } from '../core/task-listing';
import { InvalidCursorError } from './cursor';

const MAX_CURSOR_CHARS = 1_024;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** `created_at#task_id`, with `created_at` as `toISOString` writes it. */
const LIST_KEY = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z#(.+)$/;

const cursorSchema = z.strictObject({
  k: z.string().regex(LIST_KEY),
  s: z.enum(LIST_STATES).optional(),
  g: groupSchema.optional(),
});

export interface ListFilter {
  readonly state?: ListState | undefined;
  readonly group?: string | undefined;
}

export function encodeListCursor(after: string, { state, group }: ListFilter): string {
  const json = JSON.stringify({
    k: after,
    ...(state === undefined ? {} : { s: state }),
    ...(group === undefined ? {} : { g: group }),
  });
  return Buffer.from(json, 'utf8').toString('base64url');
}

/** The sort key a cursor continues after; throws `InvalidCursorError` unless it was issued for `filter`. */
export function decodeListCursor(cursor: string, filter: ListFilter): string {
  if (cursor.length > MAX_CURSOR_CHARS || !BASE64URL.test(cursor)) throw new InvalidCursorError();
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  const parsed = cursorSchema.safeParse(json);
  if (!parsed.success) throw new InvalidCursorError();
  const { k, s, g } = parsed.data;
  const taskId = LIST_KEY.exec(k)?.[1];
  if (!idSchema.safeParse(taskId).success || s !== filter.state || g !== filter.group) {
    throw new InvalidCursorError();
  }
  // Only a cursor this API would issue: re-encoding it must give it back, so no alternative spelling passes.
  if (encodeListCursor(k, filter) !== cursor) throw new InvalidCursorError();
  return k;
}
