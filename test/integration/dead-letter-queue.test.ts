import type { Message, MessageAttributeValue } from '@aws-sdk/client-sqs';
import type { SQSMessageAttributes } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import {
  type DeadLetter,
  DeadLetterQueue,
  fromLambdaAttributes,
} from '../../lambdas/queue/dead-letter-queue';
import { newStatusQueues, receiveAll } from '../support/aws';

const REASON = { errorCode: 'INVALID_COUNT', errorMessage: 'new_subtask_status.skipped: too small' };

/** A fresh dead-letter queue per test, so that each reads back only its own letters. */
async function freshDeadLetterQueue() {
  const queues = await newStatusQueues();
  return {
    deadLetters: new DeadLetterQueue(queues.client, queues.deadLetterQueueUrl),
    receive: (expected: number) => receiveAll(queues.client, queues.deadLetterQueueUrl, expected),
  };
}

function letter(attributes: Record<string, MessageAttributeValue>, messageId = 'msg-1'): DeadLetter {
  return { messageId, body: `{"entry_id":"task-1","note":"${messageId}"}`, ...REASON, attributes };
}

function stringAttributes(count: number): Record<string, MessageAttributeValue> {
  return Object.fromEntries(
    Array.from({ length: count }, (_, index) => [
      `attr_${index + 1}`,
      { DataType: 'String', StringValue: `value-${index + 1}` },
    ]),
  );
}

function onlyMessage(messages: readonly Message[]): Message {
  expect(messages).toHaveLength(1);
  const [message] = messages;
  if (message === undefined) throw new Error('no dead letter received');
  return message;
}

describe('a dead letter keeps the message attributes of the original', () => {
  it('keeps original String and Binary attributes next to error_code and error_message', async () => {
    const { deadLetters, receive } = await freshDeadLetterQueue();
    const signature = Uint8Array.from([0, 1, 2, 250, 255]);
    const sent = letter({
      trace_id: { DataType: 'String', StringValue: 'Root=1-5759e988-bd862e3fe1be46a994272793' },
      tenant: { DataType: 'Number', StringValue: '42' },
      signature: { DataType: 'Binary', BinaryValue: signature },
    });

    const unsent = await deadLetters.send([sent]);
    const received = onlyMessage(await receive(1));

    expect(unsent).toEqual([]);
    expect(received.Body).toBe(sent.body);
    const attributes = received.MessageAttributes ?? {};
    expect(attributes.trace_id).toMatchObject({
      DataType: 'String',
      StringValue: 'Root=1-5759e988-bd862e3fe1be46a994272793',
    });
    expect(attributes.tenant).toMatchObject({ DataType: 'Number', StringValue: '42' });
    expect(attributes.signature?.DataType).toBe('Binary');
    expect(Uint8Array.from(attributes.signature?.BinaryValue ?? [])).toEqual(signature);
    expect(attributes.error_code).toMatchObject({ DataType: 'String', StringValue: REASON.errorCode });
    expect(attributes.error_message).toMatchObject({ DataType: 'String', StringValue: REASON.errorMessage });
    expect(attributes.original_message_id).toMatchObject({ StringValue: 'msg-1' });
    expect(attributes).not.toHaveProperty('dropped_attributes');
  });

  it('keeps the reason and names the dropped originals when 9 originals do not fit within 10 attributes', async () => {
    const { deadLetters, receive } = await freshDeadLetterQueue();
    const originals = stringAttributes(9);

    const unsent = await deadLetters.send([letter(originals)]);
    const received = onlyMessage(await receive(1));

    expect(unsent).toEqual([]);
    const attributes = received.MessageAttributes ?? {};
    expect(Object.keys(attributes).length).toBeLessThanOrEqual(10);
    expect(attributes.error_code?.StringValue).toBe(REASON.errorCode);
    expect(attributes.error_message?.StringValue).toBe(REASON.errorMessage);
    const dropped = attributes.dropped_attributes?.StringValue?.split(',') ?? [];
    expect(dropped).toEqual(['attr_8', 'attr_9']);
    const keptOriginals = Object.keys(attributes).filter((name) => name.startsWith('attr_'));
    expect([...keptOriginals, ...dropped].sort()).toEqual(Object.keys(originals).sort());
    for (const name of keptOriginals) expect(attributes[name]).toMatchObject(originals[name] ?? {});
  });

  it('gives up original_message_id, not an original, when 8 originals fill the other slots', async () => {
    const { deadLetters, receive } = await freshDeadLetterQueue();
    const originals = stringAttributes(8);

    await deadLetters.send([letter(originals)]);
    const received = onlyMessage(await receive(1));

    const attributes = received.MessageAttributes ?? {};
    expect(Object.keys(attributes).sort()).toEqual(
      [...Object.keys(originals), 'error_code', 'error_message'].sort(),
    );
  });

  it('overwrites an original attribute named like one of ours and names it in dropped_attributes', async () => {
    const { deadLetters, receive } = await freshDeadLetterQueue();
    const sent = letter({
      error_code: { DataType: 'String', StringValue: 'FORGED' },
      trace_id: { DataType: 'String', StringValue: 'trace-1' },
    });

    await deadLetters.send([sent]);
    const received = onlyMessage(await receive(1));

    const attributes = received.MessageAttributes ?? {};
    expect(attributes.error_code?.StringValue).toBe(REASON.errorCode);
    expect(attributes.dropped_attributes?.StringValue).toBe('error_code');
    expect(attributes.trace_id?.StringValue).toBe('trace-1');
    expect(attributes.original_message_id?.StringValue).toBe('msg-1');
  });

  it('counts attribute bytes toward the batch size, so large attributes split the batch instead of failing it', async () => {
    const { deadLetters, receive } = await freshDeadLetterQueue();
    // Ten letters of small bodies but 120 KiB attributes: 1.2 MiB in all, over SQS's (and the emulator's) 1 MiB
    // per batch, which a budget counting only bodies would send as one rejected batch.
    const large = { DataType: 'String', StringValue: 'x'.repeat(120 * 1024) };
    const letters = Array.from({ length: 10 }, (_, index) => letter({ large }, `msg-${index}`));

    const unsent = await deadLetters.send(letters);
    const received = await receive(letters.length);

    expect(unsent).toEqual([]);
    expect(received.map((message) => message.Body).sort()).toEqual(letters.map((sent) => sent.body).sort());
    for (const message of received) {
      expect(message.MessageAttributes?.large?.StringValue).toHaveLength(120 * 1024);
    }
  });
});

describe('fromLambdaAttributes', () => {
  it("turns Lambda's attribute map into the SDK's MessageAttributeValue shape", () => {
    const bytes = Uint8Array.from([0, 1, 2, 250, 255]);
    const lambdaShaped: SQSMessageAttributes = {
      trace_id: { dataType: 'String', stringValue: 'trace-1', stringListValues: [], binaryListValues: [] },
      tenant: { dataType: 'Number', stringValue: '42', stringListValues: [], binaryListValues: [] },
      signature: {
        dataType: 'Binary',
        binaryValue: Buffer.from(bytes).toString('base64'),
        stringListValues: [],
        binaryListValues: [],
      },
      payload: { dataType: 'String.json', stringValue: '{"a":1}' },
    };

    const converted = fromLambdaAttributes(lambdaShaped);

    expect(converted).toStrictEqual({
      trace_id: { DataType: 'String', StringValue: 'trace-1' },
      tenant: { DataType: 'Number', StringValue: '42' },
      signature: { DataType: 'Binary', BinaryValue: bytes },
      payload: { DataType: 'String.json', StringValue: '{"a":1}' },
    });
  });

  it('converts non-empty list values, decoding binary ones', () => {
    const lambdaShaped: SQSMessageAttributes = {
      tags: { dataType: 'String', stringListValues: ['a', 'b'], binaryListValues: [] },
      blobs: { dataType: 'Binary', binaryListValues: [Buffer.from([7, 8]).toString('base64')] },
    };

    const converted = fromLambdaAttributes(lambdaShaped);

    expect(converted).toStrictEqual({
      tags: { DataType: 'String', StringListValues: ['a', 'b'] },
      blobs: { DataType: 'Binary', BinaryListValues: [Uint8Array.from([7, 8])] },
    });
  });

  it('gives an empty map for a record without attributes', () => {
    expect(fromLambdaAttributes({})).toStrictEqual({});
  });
});
