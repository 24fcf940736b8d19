/**
 * Handler configuration, read once at cold start from the environment. Required names have no defaults: a
 * function deployed without them fails on its first load, loudly, instead of writing somewhere unexpected.
 */

import { z } from 'zod';
import { ENVIRONMENT } from './service-settings';

const nonEmpty = z.string().trim().min(1);

const applierSchema = z.object({
  [ENVIRONMENT.tableName]: nonEmpty,
  [ENVIRONMENT.deadLetterQueueUrl]: z.url(),
  [ENVIRONMENT.receiveLimit]: z.coerce.number().int().min(1).max(1000),
});

const tableSchema = z.object({ [ENVIRONMENT.tableName]: nonEmpty });

const aggregatorSchema = z.object({
  [ENVIRONMENT.tableName]: nonEmpty,
  [ENVIRONMENT.eventBusName]: nonEmpty,
});

const sweeperSchema = z.object({
  [ENVIRONMENT.tableName]: nonEmpty,
  [ENVIRONMENT.eventBusName]: nonEmpty,
  [ENVIRONMENT.sweepSubtasksPerRun]: z.coerce.number().int().min(1).max(1_000_000).optional(),
});

export interface ApplierConfig {
  readonly tableName: string;
  readonly deadLetterQueueUrl: string;
  readonly receiveLimit: number;
}

/** The API needs only the table. */
export interface TableConfig {
  readonly tableName: string;
}

export interface AggregatorConfig {
  readonly tableName: string;
  readonly eventBusName: string;
}

export interface SweeperConfig {
  readonly tableName: string;
  readonly eventBusName: string;
  /** Subtasks one run ends at most; the sweeper's default when absent. */
  readonly subtasksPerRun?: number;
}

type Environment = Readonly<Record<string, string | undefined>>;

function parse<T extends z.ZodType>(schema: T, env: Environment): z.output<T> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues
      .map((issue) => `${issue.path.join('.')}: ${issue.message}`)
      .join('; ');
    throw new Error(`Invalid configuration: ${problems}`);
  }
  return result.data;
}

export function readApplierConfig(env: Environment): ApplierConfig {
  const values = parse(applierSchema, env);
  return {
    tableName: values[ENVIRONMENT.tableName],
    deadLetterQueueUrl: values[ENVIRONMENT.deadLetterQueueUrl],
    receiveLimit: values[ENVIRONMENT.receiveLimit],
  };
}

export function readTableConfig(env: Environment): TableConfig {
  return { tableName: parse(tableSchema, env)[ENVIRONMENT.tableName] };
}

export function readAggregatorConfig(env: Environment): AggregatorConfig {
  const values = parse(aggregatorSchema, env);
  return { tableName: values[ENVIRONMENT.tableName], eventBusName: values[ENVIRONMENT.eventBusName] };
}

export function readSweeperConfig(env: Environment): SweeperConfig {
  const values = parse(sweeperSchema, env);
  const subtasksPerRun = values[ENVIRONMENT.sweepSubtasksPerRun];
  return {
    tableName: values[ENVIRONMENT.tableName],
    eventBusName: values[ENVIRONMENT.eventBusName],
    ...(subtasksPerRun === undefined ? {} : { subtasksPerRun }),
  };
}
