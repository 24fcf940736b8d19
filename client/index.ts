/** The client's public surface: producers initialize and cancel tasks, workers queue statuses, readers follow. */

export { numberedSubtaskIds } from '../lambdas/core/subtask-ids';
export type { TaskState } from '../lambdas/core/task';
export {
  CancelConflictError,
  ClientConfigurationError,
  InitializeConflictError,
  InvalidInitializeRequestError,
  ProgressApiError,
  ProgressApiUnreachableError,
  SubtaskProgressClientError,
  UnexpectedResponseError,
} from './errors';
export {
  createSubtaskStatus,
  incrementSubtaskStatus,
  isTerminalState,
  SEND_RETRY_POLICY,
  type SendFailure,
  type SendOptions,
  type SendResult,
  type StatusCounts,
  SUBTASK_STATES,
  type SubtaskState,
  type SubtaskStatus,
  sendSubtaskStatus,
  sendSubtaskStatuses,
  TERMINAL_STATES,
} from './producer';
export {
  getProgress,
  listSubtasks,
  type Progress,
  type ProgressApiOptions,
  type ProgressResult,
  type SubtaskListing,
  type SubtaskPage,
  type SubtaskQuery,
} from './progress-api';
export {
  cancelTask,
  type InitializedTask,
  type InitializeTaskOptions,
  type InitializeTaskRequest,
  initializeTask,
  TaskEndedError,
} from './task-api';
export {
  LIST_STATES,
  type ListState,
  listTasks,
  type TaskListPage,
  type TaskListQuery,
  type TaskListResult,
  type TaskRow,
} from './task-list-api';
