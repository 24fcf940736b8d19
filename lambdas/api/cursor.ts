import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { idSchema } from '../core/identifiers';

/**
 * The `next_cursor` of a subtask listing: opaque to clients, and signed with a key only the API holds, over the
 * task, the state filter and the position it was issued for. A cursor that was altered, forged, or issued for
 * another listing is refused; and since the position is a subtask id read inside the requested task's partition,
 * no cursor can ever make the API read another task.
 */

const MAX_CURSOR_CHARS = 512;
const MAC_CHARS = 22;

const cursorSchema = z.strictObject({ after: idSchema, mac: z.string().length(MAC_CHARS) });

export class InvalidCursorError extends Error {
  constructor() {
    super('cursor is not one this API issued for this listing');
    this.name = 'InvalidCursorError';
  }
}

export class CursorCodec {
  constructor(private readonly key: string) {}

  private mac(taskId: string, state: string | undefined, after: string): string {
    return createHmac('sha256', this.key)
      .update(`${taskId}\n${state ?? ''}\n${after}`)
      .digest('base64url')
      .slice(0, MAC_CHARS);
  }

  encode(taskId: string, state: string | undefined, afterSubtaskId: string): string {
    const json = JSON.stringify({ after: afterSubtaskId, mac: this.mac(taskId, state, afterSubtaskId) });
    return Buffer.from(json, 'utf8').toString('base64url');
  }

  /** The subtask id to continue after; throws `InvalidCursorError` for anything this API did not issue. */
  decode(cursor: string, taskId: string, state: string | undefined): string {
    if (cursor.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new InvalidCursorError();
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    } catch {
      throw new InvalidCursorError();
    }
    const parsed = cursorSchema.safeParse(json);
    if (!parsed.success) throw new InvalidCursorError();
    const expected = Buffer.from(this.mac(taskId, state, parsed.data.after));
    if (!timingSafeEqual(expected, Buffer.from(parsed.data.mac))) throw new InvalidCursorError();
    return parsed.data.after;
  }
}
