import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { ServiceEvent } from '../core/events';
import { EVENTS } from '../service-settings';

/** Where the service's events go: EventBridge when deployed, a log file on the local stack. */
export interface EventPublisher {
  /** Publishes every event or throws; a throw means none can be assumed published, and all come again. */
  publish(events: readonly ServiceEvent[]): Promise<void>;
}

/** PutEvents takes at most 10 entries a call. */
const PUT_EVENTS_LIMIT = 10;

export class EventBridgeUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServiceUnavailable';
  }
}

export class EventBridgePublisher implements EventPublisher {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly eventBusName: string,
  ) {}

  async publish(events: readonly ServiceEvent[]): Promise<void> {
    for (let start = 0; start < events.length; start += PUT_EVENTS_LIMIT) {
      const chunk = events.slice(start, start + PUT_EVENTS_LIMIT);
      const { FailedEntryCount, Entries } = await this.client.send(
        new PutEventsCommand({
          Entries: chunk.map((event) => ({
            EventBusName: this.eventBusName,
            Source: EVENTS.source,
            DetailType: event.detailType,
            Detail: JSON.stringify(event.detail),
          })),
        }),
      );
      if ((FailedEntryCount ?? 0) > 0) {
        const failure = Entries?.find((entry) => entry.ErrorCode !== undefined);
        // Failed entries are throttling or internal errors in practice: retried with the stream batch.
        throw new EventBridgeUnavailableError(
          `${FailedEntryCount} events not published: ${failure?.ErrorCode} ${failure?.ErrorMessage}`,
        );
      }
    }
  }
}
