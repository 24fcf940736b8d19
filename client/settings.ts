/**
 * The client's settings: passed explicitly, or read from the environment variables `npm start` prints (and a
 * deployment sets). Checked where they are used, so a producer that only sends never needs the API's URL.
 */

import { z } from 'zod';
import { ClientConfigurationError } from './errors';

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

const SETTINGS = {
  tableName: { variable: 'SUBTASK_PROGRESS_TABLE', schema: z.string().trim().min(1, 'must not be empty') },
  queueUrl: { variable: 'SUBTASK_PROGRESS_QUEUE_URL', schema: httpUrl },
  apiUrl: { variable: 'SUBTASK_PROGRESS_API_URL', schema: httpUrl },
  region: {
    variable: 'AWS_REGION',
    schema: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be a region name'),
  },
} as const;

export type SettingName = keyof typeof SETTINGS;

/** `given` when set, else the setting's environment variable; throws `ClientConfigurationError` otherwise. */
export function setting(
  name: SettingName,
  given: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  const { variable, schema } = SETTINGS[name];
  const value = given ?? env[variable];
  if (value === undefined || value === '') {
    throw new ClientConfigurationError(
      `${variable} is not set (nor the ${name} option): export it; \`npm start\` prints the line for the local stack`,
    );
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const source = given === undefined ? variable : name;
    throw new ClientConfigurationError(
      `${source} '${value}' ${parsed.error.issues[0]?.message ?? 'is invalid'}`,
    );
  }
  return parsed.data;
}
