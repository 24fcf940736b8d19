/**
 * The `next_cursor` of `GET /tasks`: the task to continue after (creation time and id), and the filter it was
 * issued for,
 * base64url-encoded JSON. Like the subtask cursor it is not signed (it only names a position in an index the
 * caller may list anyway), so it is validated strictly: a cursor this API would not issue for this very query is
 * a 400, never a read somewhere else.
 */
import { z } from 'zod';
import { groupSchema, idSchema } from '../core/identifiers';
import { LIST_STATES, type ListPosition, type ListState } from '../core/task-listing';
import { InvalidCursorError } from './cursor';

const MAX_CURSOR_CHARS = 1_024;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** `created_at` as `toISOString` writes it. */
const CREATED_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const cursorSchema = z.strictObject({
  c: z.string().regex(CREATED_AT),
  t: idSchema,
  s: z.enum(LIST_STATES).optional(),
  g: groupSchema.optional(),
});

export interface ListFilter {
  readonly state?: ListState | undefined;
  readonly group?: string | undefined;
}

export function encodeListCursor(after: ListPosition, { state, group }: ListFilter): string {
  const json = JSON.stringify({
    c: after.createdAt,
    t: after.taskId,
    ...(state === undefined ? {} : { s: state }),
    ...(group === undefined ? {} : { g: group }),
  });
  return Buffer.from(json, 'utf8').toString('base64url');
}

/** The task a cursor continues after; throws `InvalidCursorError` unless it was issued for `filter`. */
export function decodeListCursor(cursor: string, filter: ListFilter): ListPosition {
  if (cursor.length > MAX_CURSOR_CHARS || !BASE64URL.test(cursor)) throw new InvalidCursorError();
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  const parsed = cursorSchema.safeParse(json);
  if (!parsed.success) throw new InvalidCursorError();
  const { c, t, s, g } = parsed.data;
  if (s !== filter.state || g !== filter.group) throw new InvalidCursorError();
  const position = { createdAt: c, taskId: t };
  // Only a cursor this API would issue: re-encoding it must give it back, so no alternative spelling passes.
  if (encodeListCursor(position, filter) !== cursor) throw new InvalidCursorError();
  return position;
}
