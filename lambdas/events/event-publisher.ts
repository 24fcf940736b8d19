/**
 * Where the service's events go: EventBridge when deployed, a log file on the local stack. A publish says which
 * events failed and whether retrying them can help, so a caller never republishes what went out and never
 * retries for ever what cannot go out.
 */
import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsCommandOutput,
} from '@aws-sdk/client-eventbridge';
import { ProgressError } from '../core/errors';
import type { ServiceEvent } from '../core/events';
import { EVENTS } from '../service-settings';
import { errorName, isTransient } from '../store/transient-errors';

export interface EventPublisher {
  /**
   * Publishes every event or throws. `EventsNotPublishedError` names the events that failed (the others went
   * out); any other error means none can be assumed published.
   */
  publish(events: readonly ServiceEvent[]): Promise<void>;
}

/** PutEvents takes at most 10 entries a call. */
const PUT_EVENTS_LIMIT = 10;

/** Per-entry codes AWS documents as retryable (PutEventsResultEntry); every other code fails the same way again. */
const RETRYABLE_ENTRY_CODES = new Set(['InternalFailure', 'InternalException', 'ThrottlingException']);

export interface EventFailure {
  readonly event: ServiceEvent;
  readonly errorCode: string;
  readonly errorMessage?: string;
  /** True when the same event will fail the same way again (no permission, invalid entry). */
  readonly permanent: boolean;
}

/** Some events of a publish failed; the others were accepted. */
export class EventsNotPublishedError extends ProgressError {
  readonly code = 'EVENTS_NOT_PUBLISHED';
  readonly permanent: boolean;
  constructor(readonly failures: readonly EventFailure[]) {
    const first = failures[0];
    super(`${failures.length} events not published: ${first?.errorCode} ${first?.errorMessage ?? ''}`.trim());
    this.permanent = failures.every((failure) => failure.permanent);
  }
}

export interface PublishReport {
  readonly published: readonly ServiceEvent[];
  readonly failed: readonly EventFailure[];
}

/** `error` as a failure of each of `events`: permanent unless the call may succeed when made again. */
function failuresOf(events: readonly ServiceEvent[], error: unknown): EventFailure[] {
  const permanent = !isTransient(error);
  const errorMessage = error instanceof Error ? error.message : String(error);
  return events.map((event) => ({ event, errorCode: errorName(error), errorMessage, permanent }));
}

/** Publishes `events` and reports, never throws, which went out and which failed and how. */
export async function publishEvents(
  publisher: EventPublisher,
  events: readonly ServiceEvent[],
): Promise<PublishReport> {
  if (events.length === 0) return { published: [], failed: [] };
  try {
    await publisher.publish(events);
    return { published: events, failed: [] };
  } catch (error) {
    const failed = error instanceof EventsNotPublishedError ? error.failures : failuresOf(events, error);
    const failedIds = new Set(failed.map((failure) => failure.event.detail.event_id));
    return { published: events.filter((event) => !failedIds.has(event.detail.event_id)), failed };
  }
}

export class EventBridgePublisher implements EventPublisher {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly eventBusName: string,
  ) {}

  async publish(events: readonly ServiceEvent[]): Promise<void> {
    const failures: EventFailure[] = [];
    for (let start = 0; start < events.length; start += PUT_EVENTS_LIMIT) {
      failures.push(...(await this.putChunk(events.slice(start, start + PUT_EVENTS_LIMIT))));
    }
    if (failures.length > 0) throw new EventsNotPublishedError(failures);
  }

  /** One PutEvents call; its entries answer in the order sent, each with an event id or an error code. */
  private async putChunk(chunk: readonly ServiceEvent[]): Promise<EventFailure[]> {
    let response: PutEventsCommandOutput;
    try {
      response = await this.client.send(
        new PutEventsCommand({
          Entries: chunk.map((event) => ({
            EventBusName: this.eventBusName,
            Source: EVENTS.source,
            DetailType: event.detailType,
            Detail: JSON.stringify(event.detail),
          })),
        }),
      );
    } catch (error) {
      // The call failed whole (no permission, throttled, network): so did every entry of it. Later chunks
      // are still tried, so that the caller learns each event's fate.
      return failuresOf(chunk, error);
    }
    return chunk.flatMap((event, index): EventFailure[] => {
      const entry = response.Entries?.[index];
      if (entry?.ErrorCode === undefined) return [];
      return [
        {
          event,
          errorCode: entry.ErrorCode,
          ...(entry.ErrorMessage === undefined ? {} : { errorMessage: entry.ErrorMessage }),
          permanent: !RETRYABLE_ENTRY_CODES.has(entry.ErrorCode),
        },
      ];
    });
  }
}
