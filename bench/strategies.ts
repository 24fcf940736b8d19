import { streamedStrategy } from './streamed/strategy';
import { coalescedStrategy } from './transactional/strategy';
import type { Strategy, StrategyContext, StrategyName } from './types';

/**
 * The ways of applying the same deliveries that the bench compares:
 * - `streamed` (round 2, the service as it is): each applier writes only the changed subtasks' own items; the
 *   aggregator folds the table's stream into shard counters and the task (`streamed/`);
 * - `coalesced` (round 1, frozen in `transactional/`): each batch commits the task's totals and its subtasks in
 *   one version-conditioned transaction.
 */
export function createStrategy(name: StrategyName, context: StrategyContext): Strategy {
  switch (name) {
    case 'streamed':
      return streamedStrategy(context);
    case 'coalesced':
      return coalescedStrategy(context);
  }
}
