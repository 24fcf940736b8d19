/** The conditions of the store's writes, each named with the reason it holds. */
import type { Condition } from './expressions';

// Initialization never overwrites a task record: the first one wins, later ones compare their request with it.
export const ITEM_ABSENT: Condition = { expression: 'attribute_not_exists(#pk)' };

// A subtask or counter item of another generation is a leftover of an earlier task record (removed by TTL or an
// operator before its subtasks): replace it, never count it.
export const absentOrOtherGeneration = (generation: string): Condition => ({
  expression: 'attribute_not_exists(#pk) OR #generation <> :generation',
  values: { ':generation': generation },
});

// Only a writer that read version N may write N+1, and only into the generation it read.
export const subtaskUnchanged = (expected: number, generation: string): Condition => ({
  expression: '#version = :expected AND #generation = :generation',
  values: { ':expected': expected, ':generation': generation },
});

// A fold never creates an item, and writes only into the generation it read.
export const sameGeneration = (generation: string): Condition => ({
  expression: 'attribute_exists(#pk) AND #generation = :generation',
  values: { ':generation': generation },
});

// The newest recount wins: versions only grow, so a recount that saw more changes has a larger sum.
export const newerRecount = (vsum: number): Condition => ({
  expression: '#vsum < :vsum',
  values: { ':vsum': vsum },
});
export const newerTotals = (vsum: number): Condition => ({
  expression: '#counters_vsum < :vsum',
  values: { ':vsum': vsum },
});

// An ended task never changes again.
export const IN_PROGRESS: Condition = {
  expression: '#task_state = :progress',
  values: { ':progress': 'PROGRESS' },
};

// Readying, and giving up on, an initialization happen once: whichever comes first.
export const NOT_READY: Condition = { expression: '#ready = :false', values: { ':false': false } };
// Cancel concerns only a task whose subtasks all exist, so the sweeper can revoke every one of them.
export const READY: Condition = { expression: '#ready = :true', values: { ':true': true } };

// A fold that ends the task requires it not canceled as read, so a concurrent cancel makes it re-read and end
// `CANCELED`.
export const NOT_CANCELED: Condition = { expression: 'attribute_not_exists(#cancel_requested)' };

// How far an initialization got only moves forward: a slower resumer never takes back a faster one's page.
export const notYetWritten = (written: number): Condition => ({
  expression: '(attribute_not_exists(#init_written) OR #init_written < :written)',
  values: { ':written': written },
});

// An initialization that saved a page since the sweeper read it is still advancing: it is not given up.
export const unchangedSince = (updatedAt: string): Condition => ({
  expression: '#updated_at = :read_updated_at',
  values: { ':read_updated_at': updatedAt },
});
