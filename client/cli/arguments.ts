/** The command line, checked: anything wrong with it is a `UsageError` (exit code 2), never a runtime failure. */

import { parseArgs } from 'node:util';
import { z } from 'zod';
import { MAX_SUBTASKS } from '../../lambdas/core/contract';
import { groupSchema, idSchema } from '../../lambdas/core/identifiers';
import { createSubtaskStatus, SUBTASK_STATES, type SubtaskStatus } from '../../lambdas/core/subtask-status';
import { LIST_STATES } from '../../lambdas/core/task-listing';
import type { SubtaskQuery } from '../progress-api';
import type { InitializeTaskRequest } from '../task-api';
import type { TaskListQuery } from '../task-list-api';

export const COMMANDS = [
  'init',
  'send',
  'status',
  'list',
  'subtasks',
  'watch',
  'cancel',
  'dashboard',
] as const;
export type CommandName = (typeof COMMANDS)[number];

export type Command =
  | { readonly kind: 'help'; readonly topic?: CommandName }
  | { readonly kind: 'init'; readonly request: InitializeTaskRequest }
  | { readonly kind: 'send'; readonly taskId: string; readonly status: SubtaskStatus }
  | { readonly kind: 'status'; readonly taskId: string; readonly json: boolean }
  | { readonly kind: 'list'; readonly query: TaskListQuery; readonly json: boolean }
  | { readonly kind: 'dashboard'; readonly port: number; readonly canCancel: boolean }
  | {
      readonly kind: 'subtasks';
      readonly taskId: string;
      readonly query: SubtaskQuery;
      /** Follow `next_cursor` to the last page. */
      readonly all: boolean;
      readonly json: boolean;
    }
  | { readonly kind: 'watch'; readonly taskId: string; readonly intervalMs: number }
  | { readonly kind: 'cancel'; readonly taskId: string };

export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: CommandName,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export const DEFAULT_WATCH_INTERVAL_MS = 1_000;

const required = (what: string) => ({
  error: (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : `must be ${what}`),
});
const wholeNumber = z
  .string(required('a whole number'))
  .regex(/^\d+$/, 'must be a whole number')
  .transform(Number)
  .pipe(z.number().max(Number.MAX_SAFE_INTEGER, 'is too large'));
const countOption = wholeNumber.default(0);
const taskId = z.string(required('an id')).pipe(idSchema);

const initSchema = z
  .object({
    task_id: taskId,
    action: z.string(required('a verb')).min(1, 'must not be empty').max(256, 'is too long'),
    group: groupSchema.optional(),
    total: wholeNumber,
    subtasks: z.string().optional(),
    'subtask-count': wholeNumber.pipe(z.number().min(1, 'must be at least 1').max(MAX_SUBTASKS)).optional(),
    prefix: idSchema.optional(),
    'tolerated-failure-percentage': z
      .string()
      .regex(/^\d{1,3}(\.\d{1,2})?$/, 'must be a percentage with at most two decimals')
      .transform(Number)
      .pipe(z.number().max(100, 'must be at most 100'))
      .optional(),
    'subtask-timeout': wholeNumber.pipe(z.number().min(1, 'must be at least 1 (second)')).optional(),
    deadline: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 time with a zone' }).optional(),
    'ttl-days': wholeNumber.pipe(z.number().min(1, 'must be at least 1')).optional(),
  })
  .superRefine((value, context) => {
    if ((value.subtasks === undefined) === (value['subtask-count'] === undefined)) {
      context.addIssue({ code: 'custom', path: [], message: 'give either --subtasks or --subtask-count' });
    }
    if (value.prefix !== undefined && value['subtask-count'] === undefined) {
      context.addIssue({ code: 'custom', path: ['prefix'], message: 'only goes with --subtask-count' });
    }
  });

const sendSchema = z.object({
  task_id: taskId,
  subtask_id: taskId,
  state: z.enum(SUBTASK_STATES, { error: `must be one of ${SUBTASK_STATES.join(', ')}` }),
  succeeded: countOption,
  failed: countOption,
  skipped: countOption,
  'retried-nomax': countOption,
  'retried-withmax': countOption,
});

const limitOption = wholeNumber
  .pipe(z.number().min(1, 'must be at least 1').max(100, 'must be at most 100'))
  .optional();

const statusSchema = z.object({ task_id: taskId, json: z.boolean().default(false) });

const subtasksSchema = z.object({
  task_id: taskId,
  state: z.enum(SUBTASK_STATES, { error: `must be one of ${SUBTASK_STATES.join(', ')}` }).optional(),
  limit: limitOption,
  cursor: z.string().min(1, 'must not be empty').optional(),
  all: z.boolean().default(false),
  json: z.boolean().default(false),
});

const listSchema = z.object({
  state: z.enum(LIST_STATES, { error: `must be one of ${LIST_STATES.join(', ')}` }).optional(),
  group: groupSchema.optional(),
  limit: limitOption,
  cursor: z.string().min(1, 'must not be empty').optional(),
  json: z.boolean().default(false),
});

/** 0 picks a free port. */
const dashboardSchema = z.object({
  port: wholeNumber.pipe(z.number().max(65_535, 'must be at most 65535')).default(0),
  'read-only': z.boolean().default(false),
});

const watchSchema = z.object({
  task_id: taskId,
  interval: wholeNumber
    .pipe(z.number().min(100, 'must be at least 100 (ms)'))
    .default(DEFAULT_WATCH_INTERVAL_MS),
});

const taskOnlySchema = z.object({ task_id: taskId });

const POSITIONALS: Record<CommandName, readonly string[]> = {
  init: ['task_id'],
  send: ['task_id', 'subtask_id'],
  status: ['task_id'],
  list: [],
  subtasks: ['task_id'],
  watch: ['task_id'],
  cancel: ['task_id'],
  dashboard: [],
};

const OPTIONS = {
  init: {
    action: { type: 'string' },
    group: { type: 'string' },
    total: { type: 'string' },
    subtasks: { type: 'string' },
    'subtask-count': { type: 'string' },
    prefix: { type: 'string' },
    'tolerated-failure-percentage': { type: 'string' },
    'subtask-timeout': { type: 'string' },
    deadline: { type: 'string' },
    'ttl-days': { type: 'string' },
  },
  send: {
    state: { type: 'string' },
    succeeded: { type: 'string' },
    failed: { type: 'string' },
    skipped: { type: 'string' },
    'retried-nomax': { type: 'string' },
    'retried-withmax': { type: 'string' },
  },
  status: { json: { type: 'boolean' } },
  list: {
    state: { type: 'string' },
    group: { type: 'string' },
    limit: { type: 'string' },
    cursor: { type: 'string' },
    json: { type: 'boolean' },
  },
  subtasks: {
    state: { type: 'string' },
    limit: { type: 'string' },
    cursor: { type: 'string' },
    all: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  watch: { interval: { type: 'string' } },
  cancel: {},
  dashboard: { port: { type: 'string' }, 'read-only': { type: 'boolean' } },
} as const;

function isCommand(value: string | undefined): value is CommandName {
  return (COMMANDS as readonly (string | undefined)[]).includes(value);
}

/** The command's options and positionals as one object, keyed by option and positional names. */
function readArguments(command: CommandName, args: readonly string[]): Record<string, unknown> | 'help' {
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...args],
      options: { ...OPTIONS[command], help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error), command);
  }
  if (parsed.values.help === true) return 'help';
  const names = POSITIONALS[command];
  if (parsed.positionals.length > names.length) {
    throw new UsageError(`unexpected argument '${parsed.positionals[names.length]}'`, command);
  }
  const positionals = Object.fromEntries(names.map((name, index) => [name, parsed.positionals[index]]));
  return { ...parsed.values, ...positionals };
}

function validate<T extends z.ZodType>(command: CommandName, schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const key = issue?.path[0];
  const label = typeof key !== 'string' ? '' : POSITIONALS[command].includes(key) ? `<${key}> ` : `--${key} `;
  throw new UsageError(`${label}${issue?.message ?? 'invalid arguments'}`, command);
}

function subtaskList(list: string, command: CommandName): string[] {
  const ids = list.split(',').map((id) => id.trim());
  const bad = ids.find((id) => !idSchema.safeParse(id).success);
  if (bad !== undefined) throw new UsageError(`--subtasks: '${bad}' is not a valid subtask id`, command);
  return ids;
}

function initRequest(args: z.output<typeof initSchema>): InitializeTaskRequest {
  const count = args['subtask-count'];
  return {
    taskId: args.task_id,
    actionName: args.action,
    ...(args.group === undefined ? {} : { group: args.group }),
    total: args.total,
    // A count goes to the API as a count, so a fan-out of 100,000 is a few bytes.
    ...(count === undefined
      ? { subtaskIds: subtaskList(args.subtasks ?? '', 'init') }
      : { subtaskCount: count, ...(args.prefix === undefined ? {} : { prefix: args.prefix }) }),
    ...(args['tolerated-failure-percentage'] === undefined
      ? {}
      : { toleratedFailurePercentage: args['tolerated-failure-percentage'] }),
    ...(args['subtask-timeout'] === undefined ? {} : { subtaskTimeoutSeconds: args['subtask-timeout'] }),
    ...(args.deadline === undefined ? {} : { deadline: args.deadline }),
    ...(args['ttl-days'] === undefined ? {} : { ttlDays: args['ttl-days'] }),
  };
}

/** `argv` without the node and script paths. */
export function parseCommandLine(argv: readonly string[]): Command {
  const [first, ...rest] = argv;
  if (first === undefined) throw new UsageError('a command is required');
  if (first === '--help' || first === '-h') return { kind: 'help' };
  if (first === 'help') {
    const topic = rest[0];
    return isCommand(topic) ? { kind: 'help', topic } : { kind: 'help' };
  }
  if (!isCommand(first)) throw new UsageError(`unknown command '${first}'`);
  const input = readArguments(first, rest);
  if (input === 'help') return { kind: 'help', topic: first };

  switch (first) {
    case 'init':
      return { kind: 'init', request: initRequest(validate(first, initSchema, input)) };
    case 'send': {
      const args = validate(first, sendSchema, input);
      return {
        kind: 'send',
        taskId: args.task_id,
        status: createSubtaskStatus(args.subtask_id, {
          state: args.state,
          succeeded: args.succeeded,
          failed: args.failed,
          skipped: args.skipped,
          retried_nomax: args['retried-nomax'],
          retried_withmax: args['retried-withmax'],
        }),
      };
    }
    case 'status': {
      const args = validate(first, statusSchema, input);
      return { kind: 'status', taskId: args.task_id, json: args.json };
    }
    case 'list': {
      const args = validate(first, listSchema, input);
      return {
        kind: 'list',
        query: {
          ...(args.state === undefined ? {} : { state: args.state }),
          ...(args.group === undefined ? {} : { group: args.group }),
          ...(args.limit === undefined ? {} : { limit: args.limit }),
          ...(args.cursor === undefined ? {} : { cursor: args.cursor }),
        },
        json: args.json,
      };
    }
    case 'dashboard': {
      const args = validate(first, dashboardSchema, input);
      return { kind: 'dashboard', port: args.port, canCancel: !args['read-only'] };
    }
    case 'subtasks': {
      const args = validate(first, subtasksSchema, input);
      if (args.all && args.cursor !== undefined) {
        throw new UsageError('--all starts at the first page: leave out --cursor', first);
      }
      return {
        kind: 'subtasks',
        taskId: args.task_id,
        query: {
          ...(args.state === undefined ? {} : { state: args.state }),
          ...(args.limit === undefined ? {} : { limit: args.limit }),
          ...(args.cursor === undefined ? {} : { cursor: args.cursor }),
        },
        all: args.all,
        json: args.json,
      };
    }
    case 'watch': {
      const args = validate(first, watchSchema, input);
      return { kind: 'watch', taskId: args.task_id, intervalMs: args.interval };
    }
    case 'cancel': {
      const args = validate(first, taskOnlySchema, input);
      return { kind: first, taskId: args.task_id };
    }
  }
}

const COMMAND_USAGE: Record<CommandName, string> = {
  init: `init <task_id> --action VERB --total N (--subtasks a,b,c | --subtask-count N [--prefix sub])
       [--group G] [--tolerated-failure-percentage P] [--subtask-timeout SECONDS] [--deadline ISO-8601] [--ttl-days N]
      Create a task whose subtasks all start QUEUING (PUT /tasks/<task_id>). VERB names what happens to an
      item ("emailed"), N items in all; --subtask-count N makes ids <prefix>-0 … <prefix>-(N-1). Running it
      again with the same arguments changes nothing; a large fan-out takes several requests, made for you.
      --group names what the task belongs to (a course id), for \`list --group\`.`,
  send: `send <task_id> <subtask_id> --state STATE [--succeeded N] [--failed N] [--skipped N]
       [--retried-nomax N] [--retried-withmax N]
      Queue one cumulative status of a subtask (attempted = succeeded + failed). STATE is one of
      ${SUBTASK_STATES.join(', ')}.`,
  status: `status <task_id> [--json]
      Show a task's progress, and why it ended when its subtasks alone did not end it; --json prints the
      API's answer as it is.`,
  list: `list [--state STATE] [--group G] [--limit N] [--cursor C] [--json]
      List tasks, newest first, one page (GET /tasks). STATE is one of ${LIST_STATES.join(', ')}; a
      filtered page may be short, even empty, with a cursor to follow.`,
  subtasks: `subtasks <task_id> [--state STATE] [--limit N] [--cursor C | --all] [--json]
      List a task's subtasks, one page (--all: every page), with why the service ended one itself
      (TIMED_OUT, CANCELED). A page filtered by --state may be short, even empty, with a cursor to follow.`,
  watch: `watch <task_id> [--interval MS]
      Follow a task with a live progress bar of its items (those of running subtasks included) until it ends
      SUCCESS, FAILURE or CANCELED (polls every MS ms, default ${DEFAULT_WATCH_INTERVAL_MS}).`,
  cancel: `cancel <task_id>
      Cancel a task (POST /tasks/<task_id>/cancel): every subtask not yet ended becomes REVOKED (reason
      CANCELED) and the task ends CANCELED; statuses that come later change nothing.`,
  dashboard: `dashboard [--port N] [--read-only]
      Serve the web dashboard on 127.0.0.1 and forward its reads (and cancel, unless --read-only) to the
      API at SUBTASK_PROGRESS_API_URL, signed with your AWS credentials; never initialize. Open the URL it
      prints: it carries a token made for this run. Needs grantReadProgress (and grantCancel to cancel).`,
};

export function usage(topic?: CommandName): string {
  const commands = topic === undefined ? COMMANDS : [topic];
  return `Usage: subtask-progress <command> [options]

${commands.map((command) => `  ${COMMAND_USAGE[command]}`).join('\n\n')}

Settings come from the environment, as \`npm start\` prints them:
  SUBTASK_PROGRESS_API_URL (init, status, list, subtasks, watch, cancel, dashboard), SUBTASK_PROGRESS_QUEUE_URL (send),
  and AWS_REGION, AWS_ENDPOINT_URL_SQS and credentials as for any AWS SDK. Requests to an API that is not on loopback are signed with SigV4 (the
  deployed API uses IAM auth), and only ever sent over https.

Exit codes: 0 done, 1 failed (unreachable service, unknown task, conflict, ...), 2 bad arguments.`;
}
