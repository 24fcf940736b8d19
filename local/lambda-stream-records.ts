/**
 * Stream records as Lambda hands them to a function: read from the DynamoDB Streams API and put in the shape of
 * Lambda's `DynamoDBRecord` (attribute values on the wire shape, numbers as strings, binaries base64-encoded).
 */

import type { _Record, AttributeValue } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord, AttributeValue as LambdaAttributeValue } from 'aws-lambda';
import { z } from 'zod';
import { withoutUndefined } from './lambda-invocation';

/** The fields of a stream record the event needs, checked rather than assumed. */
const receivedSchema = z.object({
  eventID: z.string().min(1),
  eventName: z.enum(['INSERT', 'MODIFY', 'REMOVE']),
  eventVersion: z.string().default('1.1'),
  dynamodb: z.object({
    SequenceNumber: z.string().min(1),
    ApproximateCreationDateTime: z.date().optional(),
    SizeBytes: z.number().optional(),
    StreamViewType: z.enum(['KEYS_ONLY', 'NEW_IMAGE', 'OLD_IMAGE', 'NEW_AND_OLD_IMAGES']).optional(),
  }),
  userIdentity: z.object({ PrincipalId: z.string().optional(), Type: z.string().optional() }).optional(),
});

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

/** An attribute as Lambda delivers it: the raw wire shape, numbers as strings and binaries base64-encoded. */
function lambdaAttribute(value: AttributeValue): LambdaAttributeValue {
  if (value.S !== undefined) return { S: value.S };
  if (value.N !== undefined) return { N: value.N };
  if (value.B !== undefined) return { B: base64(value.B) };
  if (value.BOOL !== undefined) return { BOOL: value.BOOL };
  if (value.NULL !== undefined) return { NULL: value.NULL };
  if (value.SS !== undefined) return { SS: [...value.SS] };
  if (value.NS !== undefined) return { NS: [...value.NS] };
  if (value.BS !== undefined) return { BS: value.BS.map(base64) };
  if (value.L !== undefined) return { L: value.L.map(lambdaAttribute) };
  if (value.M !== undefined) return { M: lambdaMap(value.M) };
  // DynamoDB Local writes an empty map as a bare `{}` in stream records, where DynamoDB writes `{"M":{}}`.
  if (Object.keys(value).length === 0) return { M: {} };
  throw new Error(`Unknown attribute type ${JSON.stringify(Object.keys(value))} in a stream record`);
}

function lambdaMap(map: Record<string, AttributeValue>): Record<string, LambdaAttributeValue> {
  return Object.fromEntries(Object.entries(map).map(([name, value]) => [name, lambdaAttribute(value)]));
}

function lambdaImage(
  image: Record<string, AttributeValue> | undefined,
): Record<string, LambdaAttributeValue> | undefined {
  return image === undefined ? undefined : lambdaMap(image);
}

export function toRecord(record: _Record, streamArn: string, region: string): DynamoDBRecord {
  const received = receivedSchema.parse(record);
  const created = received.dynamodb.ApproximateCreationDateTime;
  return withoutUndefined({
    eventID: received.eventID,
    eventName: received.eventName,
    eventVersion: received.eventVersion,
    eventSource: 'aws:dynamodb',
    awsRegion: region,
    dynamodb: withoutUndefined({
      // The SDK parses DynamoDB's epoch seconds into a Date; Lambda passes the number on.
      ApproximateCreationDateTime: created === undefined ? undefined : created.getTime() / 1000,
      Keys: lambdaImage(record.dynamodb?.Keys),
      NewImage: lambdaImage(record.dynamodb?.NewImage),
      OldImage: lambdaImage(record.dynamodb?.OldImage),
      SequenceNumber: received.dynamodb.SequenceNumber,
      SizeBytes: received.dynamodb.SizeBytes,
      StreamViewType: received.dynamodb.StreamViewType,
    }),
    // Set on deletions by TTL; Lambda spells its fields in camelCase.
    userIdentity:
      received.userIdentity === undefined
        ? undefined
        : withoutUndefined({
            type: received.userIdentity.Type,
            principalId: received.userIdentity.PrincipalId,
          }),
    eventSourceARN: streamArn,
  });
}

export function sequenceNumber(record: DynamoDBRecord): string {
  // toRecord() checked that every record has one.
  return record.dynamodb?.SequenceNumber ?? '';
}
