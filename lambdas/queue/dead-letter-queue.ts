import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** SendMessageBatch takes at most 10 entries… */
const SQS_BATCH_ENTRIES = 10;
/** …and at most 256 KiB in all; leave room for the attributes. */
const SQS_BATCH_BYTES = 200 * 1024;
const MAX_REASON_CHARS = 1_000;

export interface DeadLetter {
  /** The SQS message id of the original delivery. */
  readonly messageId: string;
  /** The original body, untouched, so the message can be redriven once its cause is fixed. */
  readonly body: string;
  readonly errorCode: string;
  readonly errorMessage: string;
}

export interface UnsentLetter {
  readonly messageId: string;
  readonly reason: string;
}

/** Groups letters into SendMessageBatch calls that respect both the entry and the size limit. */
function batches(letters: readonly DeadLetter[]): DeadLetter[][] {
  const result: DeadLetter[][] = [];
  let batch: DeadLetter[] = [];
  let bytes = 0;
  for (const letter of letters) {
    const size = Buffer.byteLength(letter.body, 'utf8');
    if (batch.length === SQS_BATCH_ENTRIES || (batch.length > 0 && bytes + size > SQS_BATCH_BYTES)) {
      result.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(letter);
    bytes += size;
  }
  if (batch.length > 0) result.push(batch);
  return result;
}

/** The dead-letter queue adapter: parks messages that can never be applied, with the reason attached. */
export class DeadLetterQueue {
  constructor(
    private readonly sqs: SQSClient,
    readonly queueUrl: string,
  ) {}

  /**
   * Sends `letters` with their reasons as message attributes `error_code` and `error_message`. Returns those SQS
   * did not take: the caller must leave them on the source queue, whose own redrive still parks them.
   */
  async send(letters: readonly DeadLetter[]): Promise<UnsentLetter[]> {
    const unsent: UnsentLetter[] = [];
    for (const batch of batches(letters)) {
      try {
        const { Failed } = await this.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: batch.map((letter, index) => ({
              Id: String(index),
              MessageBody: letter.body,
              MessageAttributes: {
                error_code: { DataType: 'String', StringValue: letter.errorCode },
                error_message: {
                  DataType: 'String',
                  StringValue: letter.errorMessage.slice(0, MAX_REASON_CHARS),
                },
                original_message_id: { DataType: 'String', StringValue: letter.messageId },
              },
            })),
          }),
        );
        for (const failure of Failed ?? []) {
          const letter = batch[Number(failure.Id)];
          if (letter !== undefined)
            unsent.push({ messageId: letter.messageId, reason: failure.Message ?? 'rejected' });
        }
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        unsent.push(...batch.map((letter) => ({ messageId: letter.messageId, reason })));
      }
    }
    return unsent;
  }
}
