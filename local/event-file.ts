/**
 * Where the local stack's events go instead of EventBridge: one JSON line per event, in the envelope EventBridge
 * would deliver to a rule's target (`id`, `detail-type`, `source`, `time`, `detail`, …), so a consumer written
 * against the file reads deployed events the same way.
 *
 * The aggregator publishes at least once: a replayed or bisected stream batch publishes its events again, with
 * the same `detail.event_id`. The file keeps what a consumer that drops repeats by `event_id` keeps — each event
 * once — and reports every repeat to `onEvent`, so the redelivery stays visible.
 */

import { randomUUID } from 'node:crypto';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ServiceEvent } from '../lambdas/core/events';
import type { EventPublisher } from '../lambdas/events/event-publisher';
import { EVENTS } from '../lambdas/service-settings';

/** An event as EventBridge hands it to a target. */
export interface LocalEvent {
  readonly version: '0';
  /** EventBridge's own id, new for every delivery; `detail.event_id` is the stable one. */
  readonly id: string;
  readonly 'detail-type': string;
  readonly source: string;
  readonly account: string;
  /** ISO 8601, seconds precision, as EventBridge writes it. */
  readonly time: string;
  readonly region: string;
  readonly resources: readonly string[];
  readonly detail: ServiceEvent['detail'];
}

export interface EventFileOptions {
  /** The file to append to; its folder is created if missing. */
  readonly path: string;
  readonly region: string;
  /** Keep what the file holds (and drop repeats of it) instead of starting it empty. @default false */
  readonly append?: boolean;
  /** Every delivery, `repeat` when an event with its `event_id` is already in the file. */
  readonly onEvent?: (event: LocalEvent, repeat: boolean) => void;
  /** @default Date.now */
  readonly now?: () => number;
}

const ACCOUNT_ID = '000000000000';

/** The `event_id`s of the events a file holds; lines that are not events are skipped. */
function eventIdsIn(text: string): Set<string> {
  const ids = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const id: unknown = JSON.parse(line)?.detail?.event_id;
      if (typeof id === 'string') ids.add(id);
    } catch {
      // Someone edited the file by hand, or a line was cut short: it names no event.
    }
  }
  return ids;
}

/** Reads a file of events (one JSON line each), as the local stack writes it. */
export async function readEventFile(path: string): Promise<LocalEvent[]> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return '';
    throw error;
  });
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as LocalEvent);
}

export class FileEventPublisher implements EventPublisher {
  /** Appends one after the other, so concurrent publishes never interleave their lines. */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly options: EventFileOptions,
    private readonly published: Set<string>,
  ) {}

  /** Creates the file (empty, unless `append`) and its folder. */
  static async open(options: EventFileOptions): Promise<FileEventPublisher> {
    await mkdir(dirname(options.path), { recursive: true });
    let published = new Set<string>();
    if (options.append === true) {
      const text = await readFile(options.path, 'utf8').catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return '';
        throw error;
      });
      published = eventIdsIn(text);
    } else {
      await writeFile(options.path, '');
    }
    return new FileEventPublisher(options, published);
  }

  get path(): string {
    return this.options.path;
  }

  publish(events: readonly ServiceEvent[]): Promise<void> {
    const written = this.tail.then(() => this.append(events));
    // A failed append fails this publish (its stream batch comes again), not the ones queued behind it.
    this.tail = written.catch(() => undefined);
    return written;
  }

  private async append(events: readonly ServiceEvent[]): Promise<void> {
    const time = new Date((this.options.now ?? Date.now)()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const fresh: LocalEvent[] = [];
    const repeats: LocalEvent[] = [];
    for (const event of events) {
      const envelope: LocalEvent = {
        version: '0',
        id: randomUUID(),
        'detail-type': event.detailType,
        source: EVENTS.source,
        account: ACCOUNT_ID,
        time,
        region: this.options.region,
        resources: [],
        detail: event.detail,
      };
      const id = event.detail.event_id;
      if (this.published.has(id) || fresh.some((other) => other.detail.event_id === id))
        repeats.push(envelope);
      else fresh.push(envelope);
    }
    if (fresh.length > 0) {
      await appendFile(this.options.path, fresh.map((event) => `${JSON.stringify(event)}\n`).join(''));
      for (const event of fresh) this.published.add(event.detail.event_id);
    }
    for (const event of fresh) this.options.onEvent?.(event, false);
    for (const event of repeats) this.options.onEvent?.(event, true);
  }
}
