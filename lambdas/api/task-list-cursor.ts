/**
 * The `next_cursor` of `GET /tasks`: the task to continue after (creation time and id), and the filter it was
 * issued for, base64url-encoded JSON. Like the subtask cursor it is not signed (it only names a position in an index the
 * caller may list anyway), so it is validated strictly: a cursor this API would not issue for this very query is
 * a 400, never a read somewhere else.
 */
import { z } from 'zod';
import { groupSchema, idSchema } from '../core/identifiers';
import { LIST_STATES, type ListPosition, type ListState } from '../core/task-listing';
import { decodeCursorJson, encodeCursorJson, InvalidCursorError } from './cursor';

const MAX_CURSOR_CHARS = 1_024;
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
  return encodeCursorJson({
    c: after.createdAt,
    t: after.taskId,
    ...(state === undefined ? {} : { s: state }),
    ...(group === undefined ? {} : { g: group }),
  });
}

/** The task a cursor continues after; throws `InvalidCursorError` unless it was issued for `filter`. */
export function decodeListCursor(cursor: string, filter: ListFilter): ListPosition {
  const { c, t, s, g } = decodeCursorJson(cursor, cursorSchema, MAX_CURSOR_CHARS);
  if (s !== filter.state || g !== filter.group) throw new InvalidCursorError();
  const position = { createdAt: c, taskId: t };
  // Only a cursor this API would issue: re-encoding it must give it back, so no alternative spelling passes.
  if (encodeListCursor(position, filter) !== cursor) throw new InvalidCursorError();
  return position;
}
