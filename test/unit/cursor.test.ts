import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, InvalidCursorError } from '../../lambdas/api/cursor';

/** The cursor `text` spells, base64url-encoded as the API would, without asking whether the API would. */
function spelled(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function rejection(cursor: string, writeShards = 4): unknown {
  try {
    decodeCursor(cursor, writeShards);
  } catch (error) {
    return error;
  }
  throw new Error(`expected cursor '${cursor}' to be rejected`);
}

const positionArb = fc.record(
  {
    shard: fc.integer({ min: 0, max: 99 }),
    after: fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/),
  },
  { requiredKeys: ['shard'] },
);

describe('encodeCursor / decodeCursor', () => {
  it('gives back the position it encoded, for any shard the task has and any subtask id', () => {
    fc.assert(
      fc.property(positionArb, (position) => {
        const cursor = encodeCursor(position);

        const decoded = decodeCursor(cursor, 100);

        expect(decoded).toEqual(position);
      }),
    );
  });

  it('encodes a position as unpadded base64url JSON', () => {
    const cursors = [encodeCursor({ shard: 0 }), encodeCursor({ shard: 1, after: 'sub-00042' })];

    expect(cursors).toEqual([spelled('{"s":0}'), spelled('{"s":1,"a":"sub-00042"}')]);
    for (const cursor of cursors) expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it('accepts the last shard of the task', () => {
    const position = decodeCursor(encodeCursor({ shard: 3, after: 'x' }), 4);

    expect(position).toEqual({ shard: 3, after: 'x' });
  });
});

describe('decodeCursor rejects anything this API did not issue for the task', () => {
  it.each<[string, string]>([
    ['an empty cursor', ''],
    ['a cursor with a non-ASCII character', `${spelled('{"s":0}')}é`],
    ['a non-ASCII cursor', 'é'],
    ['a cursor over 512 characters', spelled(`{"s":0,"a":"${'x'.repeat(400)}"}`)],
    ['padded base64', Buffer.from('{"s":0}').toString('base64')],
    ["standard base64's + character", `${spelled('{"s":0}')}+`],
    ["standard base64's / character", `${spelled('{"s":0}')}/`],
    ['other trailing bits of the same bytes', `${spelled('{"s":0}').slice(0, -1)}R`],
    ['JSON with whitespace', spelled('{ "s": 0 }')],
    ['its keys in another order', spelled('{"a":"sub-1","s":0}')],
    ['an escaped key', spelled('{"\\u0073":0}')],
    ['a shard written as a decimal', spelled('{"s":0.0}')],
    ['a shard written with an exponent', spelled('{"s":1e0}')],
    ['a shard as a string', spelled('{"s":"0"}')],
    ['a negative shard', spelled('{"s":-1}')],
    ['a fractional shard', spelled('{"s":0.5}')],
    ['no shard', spelled('{"a":"sub-1"}')],
    ['an extra key', spelled('{"s":0,"x":1}')],
    ['an empty subtask id', spelled('{"s":0,"a":""}')],
    ['a subtask id with a slash', spelled('{"s":0,"a":"b/c"}')],
    ['a subtask id with a #', spelled('{"s":0,"a":"b#c"}')],
    ['a subtask id over 128 characters', spelled(`{"s":0,"a":"${'x'.repeat(129)}"}`)],
    ['a numeric subtask id', spelled('{"s":0,"a":5}')],
    ['a null subtask id', spelled('{"s":0,"a":null}')],
    ['JSON that is not an object', spelled('[0]')],
    ['JSON null', spelled('null')],
    ['bytes that are not JSON', spelled('hello')],
    ['bytes that are not UTF-8 JSON', Buffer.from([0xff, 0xfe, 0x7b]).toString('base64url')],
  ])('%s', (_, cursor) => {
    const error = rejection(cursor);

    expect(error).toBeInstanceOf(InvalidCursorError);
  });

  it('rejects a shard the task does not have', () => {
    const cursor = encodeCursor({ shard: 4 });

    const error = rejection(cursor, 4);

    expect(error).toBeInstanceOf(InvalidCursorError);
  });

  it('says nothing of the cursor in its message', () => {
    const error = rejection(spelled('{"s":0,"a":"secret/id"}'));

    expect(error).toMatchObject({ name: 'InvalidCursorError' });
    expect(String((error as Error).message)).not.toContain('secret');
  });

  it('never throws anything but InvalidCursorError, and returns only what re-encodes to the cursor', () => {
    const cursorArb = fc.oneof(
      fc.string({ maxLength: 600 }),
      fc.string({ unit: 'binary', maxLength: 100 }),
      fc.base64String({ maxLength: 200 }),
      fc.json().map(spelled),
      fc
        .record(
          { s: fc.oneof(fc.integer({ min: -2, max: 9 }), fc.double()), a: fc.string() },
          { requiredKeys: [] },
        )
        .map((value) => spelled(JSON.stringify(value))),
    );
    fc.assert(
      fc.property(cursorArb, fc.integer({ min: 1, max: 8 }), (cursor, writeShards) => {
        let outcome: unknown;
        try {
          outcome = decodeCursor(cursor, writeShards);
        } catch (error) {
          outcome = error;
        }

        if (outcome instanceof Error) expect(outcome).toBeInstanceOf(InvalidCursorError);
        else expect(encodeCursor(outcome as Parameters<typeof encodeCursor>[0])).toBe(cursor);
      }),
      { numRuns: 500 },
    );
  });
});
