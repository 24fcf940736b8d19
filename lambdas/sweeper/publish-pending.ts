/**
 * The sweeper's share of "events are never dropped": a task's `Task Ended` still marked unpublished, and the
 * events the aggregator deferred, are published again (same `event_id`) until EventBridge accepts them. An event
 * that fails for good stays marked on its task, is counted (an alarmed metric) and is tried again every
 * `SWEEPER.permanentEventRetryMinutes`, so that it goes out once its cause (a grant, a bus policy) is fixed.
 */
import { type ServiceEvent, taskEndedEvent } from '../core/events';
import type { TaskRecord } from '../core/task';
import { type EventPublisher, publishEvents } from '../events/event-publisher';
import type { Log } from '../log';
import { SWEEPER } from '../service-settings';
import type { TaskStore } from '../store/task-store';

export interface PendingResult {
  readonly published: number;
  /** Events that failed for good on this try. */
  readonly undeliverable: number;
  /** When the task must be looked at again for its events (epoch seconds); absent when none wait. */
  readonly retryAt?: number;
}

const NOTHING: PendingResult = { published: 0, undeliverable: 0 };

export async function publishPending(
  deps: { readonly store: TaskStore; readonly events: EventPublisher; readonly log: Log },
  task: TaskRecord,
  nowMs: number,
): Promise<PendingResult> {
  const { pendingEvents } = deps.store;
  const ended = task.task_state !== 'PROGRESS' && task.event_pending === true;
  let deferred: ServiceEvent[] = [];
  let more = false;
  if (task.outbox_pending === true) {
    // Cleared before the entries are read: an entry deferred after the read sets the mark again.
    await pendingEvents.clearOutboxMark(task);
    ({ events: deferred, more } = await pendingEvents.deferred(task.task_id, SWEEPER.eventsPerTaskRun));
  }
  if (!ended && deferred.length === 0) return NOTHING;

  const endedEvent = ended ? taskEndedEvent(task) : undefined;
  const report = await publishEvents(
    deps.events,
    endedEvent === undefined ? deferred : [endedEvent, ...deferred],
  );
  await Promise.all(
    report.published.map((event) =>
      event === endedEvent
        ? pendingEvents.clearTaskEnded(task)
        : pendingEvents.published(task.task_id, event, nowMs),
    ),
  );
  const undeliverable = report.failed.filter((failure) => failure.permanent).length;
  for (const failure of report.failed) {
    const attributes = {
      taskId: task.task_id,
      eventId: failure.event.detail.event_id,
      errorCode: failure.errorCode,
      errorMessage: failure.errorMessage,
    };
    if (failure.permanent) deps.log.error('Event not accepted; it stays marked on its task', attributes);
    else deps.log.warn('Event not published yet; the next run tries again', attributes);
  }
  if (more || report.failed.some((failure) => failure.event !== endedEvent))
    await pendingEvents.markOutbox(task);
  if (report.failed.length === 0 && !more) return { published: report.published.length, undeliverable };
  const nowSeconds = Math.floor(nowMs / 1000);
  const retryAt =
    report.failed.length > 0 && undeliverable === report.failed.length
      ? nowSeconds + SWEEPER.permanentEventRetryMinutes * 60
      : nowSeconds;
  return { published: report.published.length, undeliverable, retryAt };
}
