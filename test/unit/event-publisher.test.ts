/**
 * How a publish reports each event's fate. EventBridge answers per entry, and its documented codes say which
 * failures are worth retrying; these faults are mocked, since no emulator here produces them.
 */

import {
  AccessDeniedException,
  EventBridgeClient,
  InternalException,
  PutEventsCommand,
} from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServiceEvent } from '../../lambdas/core/events';
import {
  EventBridgePublisher,
  type EventPublisher,
  EventsNotPublishedError,
  publishEvents,
} from '../../lambdas/events/event-publisher';

const eventBridge = mockClient(EventBridgeClient);
afterEach(() => eventBridge.reset());

function events(count: number): ServiceEvent[] {
  return Array.from({ length: count }, (_, n) => ({
    detailType: 'Task Ended',
    detail: { event_id: `task-${n}:gen:SUCCESS`, task_id: `task-${n}` },
  }));
}

const publisher = () => new EventBridgePublisher(new EventBridgeClient({ region: 'us-east-1' }), 'bus');

describe('EventBridgePublisher', () => {
  it('reports only the entries that failed, a permanent code as permanent and throttling as retryable', async () => {
    eventBridge.on(PutEventsCommand).resolves({
      FailedEntryCount: 2,
      Entries: [
        { EventId: 'a' },
        { ErrorCode: 'NotAuthorizedForSourceException', ErrorMessage: 'not authorized' },
        { ErrorCode: 'ThrottlingException', ErrorMessage: 'slow down' },
      ],
    });

    const report = await publishEvents(publisher(), events(3));

    expect(report.published.map((event) => event.detail.event_id)).toEqual(['task-0:gen:SUCCESS']);
    expect(
      report.failed.map((failure) => [failure.event.detail.event_id, failure.errorCode, failure.permanent]),
    ).toEqual([
      ['task-1:gen:SUCCESS', 'NotAuthorizedForSourceException', true],
      ['task-2:gen:SUCCESS', 'ThrottlingException', false],
    ]);
  });

  it.each([
    ['AccessDeniedException', true],
    ['InvalidArgument', true],
    ['MalformedDetail', true],
    ['InternalFailure', false],
  ])('classifies a per-entry %s as permanent: %s', async (code, permanent) => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: code }] });

    const report = await publishEvents(publisher(), events(1));

    expect(report.failed.map((failure) => failure.permanent)).toEqual([permanent]);
  });

  it('classifies a failed call like any AWS error, for every entry of it, and still tries the later chunks', async () => {
    eventBridge
      .on(PutEventsCommand)
      .rejectsOnce(new AccessDeniedException({ message: 'no grant', $metadata: { httpStatusCode: 400 } }))
      .rejectsOnce(new InternalException({ message: 'oops', $metadata: { httpStatusCode: 500 } }))
      .resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'x' }] });

    const report = await publishEvents(publisher(), events(21));

    expect(eventBridge.commandCalls(PutEventsCommand)).toHaveLength(3);
    expect(report.failed.filter((failure) => failure.permanent)).toHaveLength(10);
    expect(report.failed.filter((failure) => !failure.permanent)).toHaveLength(10);
    expect(report.published.map((event) => event.detail.event_id)).toEqual(['task-20:gen:SUCCESS']);
  });

  it('throws EventsNotPublishedError, which is permanent only when every failure is', async () => {
    eventBridge.on(PutEventsCommand).resolves({
      FailedEntryCount: 1,
      Entries: [{ ErrorCode: 'MalformedDetail' }, { EventId: 'b' }],
    });

    const error = await publisher()
      .publish(events(2))
      .catch((thrown: unknown) => thrown);

    expect(error).toBeInstanceOf(EventsNotPublishedError);
    expect(error).toMatchObject({ permanent: true, failures: [{ errorCode: 'MalformedDetail' }] });
  });
});

describe('publishEvents', () => {
  it('takes any other publisher error as a failure of every event, transient when the error is', async () => {
    const failing: EventPublisher = {
      publish: async () => {
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      },
    };

    const report = await publishEvents(failing, events(2));

    expect(report.published).toEqual([]);
    expect(report.failed.map((failure) => [failure.errorCode, failure.permanent])).toEqual([
      ['ECONNRESET', false],
      ['ECONNRESET', false],
    ]);
  });
});
