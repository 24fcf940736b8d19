import { isTerminalState, sameStatus } from '../lambdas/core/subtask-status';
import type { FinalState } from './strategies';
import type { ExpectedProgress } from './workload';

/**
 * Whether a run ended exactly where the ground truth says: every delivered terminal status counted once into the
 * task, every finished subtask holding its terminal status and every other one still running, and one version
 * step per committed write (none lost, none doubled). Returns what differs; empty means exact.
 */
export function exactnessProblems(
  final: FinalState,
  expected: ExpectedProgress,
  committedWrites: number,
): string[] {
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
  compare('task_state', task.task_state, expected.finals.size === expected.subtasks ? 'SUCCESS' : 'PROGRESS');
  compare('version', task.version, 1 + committedWrites);
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
  return problems;
}
