/** The client's public surface: producers initialize tasks and queue statuses; readers follow progress. */

export {
  ClientConfigurationError,
  ProgressApiError,
  ProgressApiUnreachableError,
  SubtaskProgressClientError,
  UnexpectedResponseError,
} from './errors';
export {
  createSubtaskStatus,
  InitializeConflictError,
  type InitializeOptions,
  type InitializeRequest,
  InvalidInitializeRequestError,
  incrementSubtaskStatus,
  initializeTask,
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
  type TaskRecord,
  type TaskState,
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
export { numberedSubtaskIds } from '../lambdas/core/subtask-ids';
