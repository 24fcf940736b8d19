import { type MessageAttributeValue, SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSMessageAttribute, SQSMessageAttributes } from 'aws-lambda';

/** SendMessageBatch takes at most 10 entries… */
const SQS_BATCH_ENTRIES = 10;
/**
 * …and at most 256 KiB in all (1 MiB since 2025, but a queue may still be capped lower), counted as SQS counts
 * a message: its body plus each attribute's name, data type and value.
 */
const SQS_BATCH_BYTES = 256 * 1024;
/** SQS takes at most 10 message attributes on a message. */
const SQS_MAX_ATTRIBUTES = 10;
const MAX_REASON_CHARS = 1_000;

/** The attributes we add. An original attribute of the same name is overwritten by ours. */
const ERROR_CODE = 'error_code';
const ERROR_MESSAGE = 'error_message';
const ORIGINAL_MESSAGE_ID = 'original_message_id';
const DROPPED_ATTRIBUTES = 'dropped_attributes';
const OUR_ATTRIBUTES: ReadonlySet<string> = new Set([
  ERROR_CODE,
  ERROR_MESSAGE,
  ORIGINAL_MESSAGE_ID,
  DROPPED_ATTRIBUTES,
]);
/** `error_code` and `error_message`: the reason, which always survives. */
const REASON_ATTRIBUTE_COUNT = 2;

export interface DeadLetter {
  /** The SQS message id of the original delivery. */
  readonly messageId: string;
  /** The original body, untouched, so the message can be redriven once its cause is fixed. */
  readonly body: string;
  readonly errorCode: string;
  readonly errorMessage: string;
  /** The original message's own attributes (a producer's trace id, tenant tag…), kept as SQS's redrive keeps them. */
  readonly attributes?: Readonly<Record<string, MessageAttributeValue>>;
}

export interface UnsentLetter {
  readonly messageId: string;
  readonly reason: string;
}

interface Outgoing {
  readonly letter: DeadLetter;
  readonly attributes: Record<string, MessageAttributeValue>;
}

/** Cuts `text` to at most `max` UTF-16 units without splitting a surrogate pair, which SQS would reject. */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const end = /[\uD800-\uDBFF]/.test(text.charAt(max - 1)) ? max - 1 : max;
  return text.slice(0, end);
}

function stringAttribute(value: string): MessageAttributeValue {
  return { DataType: 'String', StringValue: value };
}

/**
 * The attributes a dead letter carries, at most SQS's 10: the reason (`error_code`, `error_message`) always;
 * then the original attributes in their order; then `original_message_id` only if a slot is left. The original
 * message id goes first because it is also in the structured log line of every dead letter, while a producer's
 * attribute is nowhere else. When originals must go, `dropped_attributes` (one more slot, so two originals go
 * where one would not suffice) names them, comma-separated; an original named like one of ours is overwritten,
 * and named there too.
 */
function deadLetterAttributes(letter: DeadLetter): Record<string, MessageAttributeValue> {
  const originals = Object.entries(letter.attributes ?? {});
  const kept = originals.filter(([name]) => !OUR_ATTRIBUTES.has(name));
  const dropped = originals.filter(([name]) => OUR_ATTRIBUTES.has(name)).map(([name]) => name);
  const room = SQS_MAX_ATTRIBUTES - REASON_ATTRIBUTE_COUNT;
  if (dropped.length > 0 || kept.length > room) {
    dropped.push(...kept.splice(room - 1).map(([name]) => name));
  }
  // Object.fromEntries defines own properties, so even an attribute named `__proto__` stays an attribute.
  const attributes: Record<string, MessageAttributeValue> = Object.fromEntries(kept);
  attributes[ERROR_CODE] = stringAttribute(letter.errorCode);
  // SQS rejects an empty attribute value; an error without a message must not make its letter unsendable.
  attributes[ERROR_MESSAGE] = stringAttribute(truncate(letter.errorMessage, MAX_REASON_CHARS) || '(none)');
  if (dropped.length > 0) attributes[DROPPED_ATTRIBUTES] = stringAttribute(dropped.join(','));
  if (Object.keys(attributes).length < SQS_MAX_ATTRIBUTES) {
    attributes[ORIGINAL_MESSAGE_ID] = stringAttribute(letter.messageId);
  }
  return attributes;
}

/** A message's size as SQS counts it against its limits: body, and each attribute's name, type and value. */
function messageBytes(body: string, attributes: Readonly<Record<string, MessageAttributeValue>>): number {
  let bytes = Buffer.byteLength(body, 'utf8');
  for (const [name, value] of Object.entries(attributes)) {
    bytes += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(value.DataType ?? '', 'utf8');
    bytes += Buffer.byteLength(value.StringValue ?? '', 'utf8') + (value.BinaryValue?.byteLength ?? 0);
    for (const item of value.StringListValues ?? []) bytes += Buffer.byteLength(item, 'utf8');
    for (const item of value.BinaryListValues ?? []) bytes += item.byteLength;
  }
  return bytes;
}

/** Groups letters into SendMessageBatch calls that respect both the entry and the size limit. */
function batches(letters: readonly DeadLetter[]): Outgoing[][] {
  const result: Outgoing[][] = [];
  let batch: Outgoing[] = [];
  let bytes = 0;
  for (const letter of letters) {
    const attributes = deadLetterAttributes(letter);
    const size = messageBytes(letter.body, attributes);
    if (batch.length === SQS_BATCH_ENTRIES || (batch.length > 0 && bytes + size > SQS_BATCH_BYTES)) {
      result.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push({ letter, attributes });
    bytes += size;
  }
  if (batch.length > 0) result.push(batch);
  return result;
}

function fromBase64(value: string): Uint8Array {
  return Uint8Array.from(Buffer.from(value, 'base64'));
}

function fromLambdaAttribute(attribute: SQSMessageAttribute): MessageAttributeValue {
  const { dataType, stringValue, binaryValue, stringListValues, binaryListValues } = attribute;
  return {
    DataType: dataType,
    ...(typeof stringValue === 'string' ? { StringValue: stringValue } : {}),
    ...(typeof binaryValue === 'string' ? { BinaryValue: fromBase64(binaryValue) } : {}),
    ...(stringListValues !== undefined && stringListValues.length > 0
      ? { StringListValues: [...stringListValues] }
      : {}),
    ...(binaryListValues !== undefined && binaryListValues.length > 0
      ? { BinaryListValues: binaryListValues.map(fromBase64) }
      : {}),
  };
}

/**
 * Message attributes as Lambda's SQS event spells them (camelCase, binaries base64-encoded) in the SDK's shape,
 * ready to send again. Lambda always includes the list fields, empty, as SQS has not implemented list values;
 * they are left out, since SQS may refuse them on a send.
 */
export function fromLambdaAttributes(
  attributes: Readonly<SQSMessageAttributes>,
): Record<string, MessageAttributeValue> {
  return Object.fromEntries(
    Object.entries(attributes).map(([name, attribute]) => [name, fromLambdaAttribute(attribute)]),
  );
}

/** The dead-letter queue adapter: parks messages that can never be applied, with the reason attached. */
export class DeadLetterQueue {
  constructor(
    private readonly sqs: SQSClient,
    readonly queueUrl: string,
  ) {}

  /**
   * Sends `letters` with their own message attributes plus their reasons as `error_code` and `error_message`
   * (and `original_message_id`, `dropped_attributes` as room allows: see `deadLetterAttributes`). Returns those
   * SQS did not take: the caller must leave them on the source queue, whose own redrive still parks them.
   */
  async send(letters: readonly DeadLetter[]): Promise<UnsentLetter[]> {
    const unsent: UnsentLetter[] = [];
    for (const batch of batches(letters)) {
      try {
        const { Failed } = await this.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: batch.map(({ letter, attributes }, index) => ({
              Id: String(index),
              MessageBody: letter.body,
              MessageAttributes: attributes,
            })),
          }),
        );
        for (const failure of Failed ?? []) {
          const letter = batch[Number(failure.Id)]?.letter;
          if (letter !== undefined)
            unsent.push({ messageId: letter.messageId, reason: failure.Message ?? 'rejected' });
        }
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        unsent.push(...batch.map(({ letter }) => ({ messageId: letter.messageId, reason })));
      }
    }
    return unsent;
  }
}
