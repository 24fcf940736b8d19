import { isTerminalState, sameStatus } from '../lambdas/core/subtask-status';
import type { ExpectedProgress } from '../test/support/workload';
import type { FinalState } from './types';

/**
 * Whether a run ended exactly where the ground truth says: every delivered terminal status counted once into the
 * task, every finished subtask holding its terminal status and every other one still running, the task's live
 * counts (`in_flight`, where the layout has them) summing exactly the running subtasks' latest counts, and one
 * version step per committed write (none lost, none doubled). Returns what differs; empty means exact.
 */
export function exactnessProblems(final: FinalState, expected: ExpectedProgress): string[] {
  const { task } = final;
  if (task === undefined) return ['the task is gone'];
  const problems: string[] = [];
  const compare = (what: string, actual: unknown, wanted: unknown) => {
    if (actual !== wanted) problems.push(`${what} is ${String(actual)}, expected ${String(wanted)}`);
  };
  compare('task_output.attempted', task.task_output.attempted, expected.attempted);
  compare('task_output.succeeded', task.task_output.succeeded, expected.succeeded);
  compare('task_output.failed', task.task_output.failed, expected.failed);
  compare('task_output.skipped', task.task_output.skipped, expected.skipped);
  compare('subtasks.total', task.subtasks.total, expected.subtasks);
  compare('subtasks.succeeded', task.subtasks.succeeded, expected.subtasksSucceeded);
  compare('subtasks.failed', task.subtasks.failed, expected.subtasksFailed);
  // The workload's statuses never fail every subtask nor every item: a finished task ends SUCCESS by either
  // round's ending rule.
  compare('task_state', task.task_state, expected.finals.size === expected.subtasks ? 'SUCCESS' : 'PROGRESS');
  compare('subtasks stored', final.statuses.size, expected.subtasks);
  const wrong = [...final.statuses].filter(([subtaskId, stored]) => {
    const wanted = expected.finals.get(subtaskId);
    return wanted === undefined ? isTerminalState(stored.state) : !sameStatus(stored, wanted);
  });
  if (wrong.length > 0) {
    problems.push(
      `${wrong.length} subtasks do not hold what was delivered to them (first: ${wrong[0]?.[0]})`,
    );
  }
  if (task.in_flight !== undefined) {
    const running = [...final.statuses.values()].filter((status) => !isTerminalState(status.state));
    for (const field of ['attempted', 'succeeded', 'failed', 'skipped'] as const) {
      const sum = running.reduce((total, status) => total + status[field], 0);
      compare(`in_flight.${field}`, task.in_flight[field], sum);
    }
  }
  const versions = final.versions.filter((check) => check.stored !== check.expected);
  if (versions.length > 0) {
    const first = versions[0];
    problems.push(
      `${versions.length} items' versions differ from their applied writes (first: ${first?.item} at ` +
        `${first?.stored}, ${first?.expected} writes)`,
    );
  }
  return problems;
}
