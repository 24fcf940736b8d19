/** An event publisher for tests: publishes nowhere and remembers everything, repeats included. */

import type { ServiceEvent } from '../../lambdas/core/events';
import type { EventPublisher } from '../../lambdas/events/event-publisher';

export class RecordingPublisher implements EventPublisher {
  readonly published: ServiceEvent[] = [];
  async publish(events: readonly ServiceEvent[]): Promise<void> {
    this.published.push(...events);
  }
}
