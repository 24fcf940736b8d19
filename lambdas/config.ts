import { z } from 'zod';
import { ENVIRONMENT } from './service-settings';

/**
 * Handler configuration, read once at cold start from the environment. Required names have no defaults: a
 * function deployed without them fails on its first load, loudly, instead of writing somewhere unexpected.
 */

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

export interface ApplierConfig {
  readonly tableName: string;
  readonly deadLetterQueueUrl: string;
  readonly receiveLimit: number;
}

/** The API and the sweeper need only the table. */
export interface TableConfig {
  readonly tableName: string;
}

export interface AggregatorConfig {
  readonly tableName: string;
  readonly eventBusName: string;
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
