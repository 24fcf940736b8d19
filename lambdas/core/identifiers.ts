import { z } from 'zod';

/** Task and subtask ids: safe inside DynamoDB keys (`TASK#…`, `SUB#…`), URLs and log lines as they are. */
export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export const idSchema = z.string().regex(ID_PATTERN, 'must be 1-128 characters of A-Z a-z 0-9 . _ : -');

export function isValidId(value: string): boolean {
  return ID_PATTERN.test(value);
}

/** A task's group (for Open edX, a course id): the id alphabet, longer, since it often names a whole course. */
export const GROUP_PATTERN = /^[A-Za-z0-9._:-]{1,200}$/;

export const groupSchema = z.string().regex(GROUP_PATTERN, 'must be 1-200 characters of A-Z a-z 0-9 . _ : -');
