/**
 * IAM's identity-policy evaluation, as far as a function role's statements in our template need it: an
 * explicit `Deny` wins, otherwise some `Allow` must match both the action and the resource, otherwise the call is
 * denied. Actions match case-insensitively, resources case-sensitively, both with IAM's `*` and `?` wildcards.
 *
 * Conditions are not evaluated: a statement with a `Condition` is taken to grant nothing (and to deny
 * everything it names), so a grant that holds only under a condition never passes locally by accident. The
 * CDK grants of this service carry no conditions; `docs/operations.md` says what else the local check cannot
 * see (resource policies, SCPs, permission boundaries, KMS key policies).
 */

import { z } from 'zod';

const oneOrMany = z.union([z.string(), z.array(z.string())]).transform((value) => [value].flat());

/** A statement whose intrinsics are resolved: every action and resource is a plain string. */
export const policyStatementSchema = z.object({
  Sid: z.string().optional(),
  Effect: z.enum(['Allow', 'Deny']),
  Action: oneOrMany,
  Resource: oneOrMany,
  Condition: z.record(z.string(), z.unknown()).optional(),
});

export type PolicyStatement = z.output<typeof policyStatementSchema>;

export interface Decision {
  readonly allowed: boolean;
  /** The phrase AWS ends its `AccessDeniedException` message with. */
  readonly reason?: string;
}

function wildcardPattern(pattern: string, flags: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, flags);
}

const matchesAny = (patterns: readonly string[], value: string, flags: string) =>
  patterns.some((pattern) => wildcardPattern(pattern, flags).test(value));

function applies(statement: PolicyStatement, action: string, resource: string): boolean {
  return matchesAny(statement.Action, action, 'i') && matchesAny(statement.Resource, resource, '');
}

/** Whether `statements` let their principal call `action` (e.g. `dynamodb:PutItem`) on `resource` (an ARN). */
export function evaluate(statements: readonly PolicyStatement[], action: string, resource: string): Decision {
  const matching = statements.filter((statement) => applies(statement, action, resource));
  if (matching.some((statement) => statement.Effect === 'Deny')) {
    return { allowed: false, reason: `with an explicit deny in an identity-based policy` };
  }
  if (matching.some((statement) => statement.Effect === 'Allow' && statement.Condition === undefined)) {
    return { allowed: true };
  }
  return { allowed: false, reason: `because no identity-based policy allows the ${action} action` };
}
