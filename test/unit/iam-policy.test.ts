import { describe, expect, it } from 'vitest';
import { evaluate, type PolicyStatement, policyStatementSchema } from '../../local/iam-policy';

const TABLE = 'arn:aws:dynamodb:us-east-1:000000000000:table/tasks';

const statement = (input: Record<string, unknown>): PolicyStatement =>
  policyStatementSchema.parse({ Effect: 'Allow', ...input });

describe('evaluate (identity-policy rules)', () => {
  it('allows an action granted on exactly that resource', () => {
    const statements = [statement({ Action: ['dynamodb:GetItem', 'dynamodb:PutItem'], Resource: TABLE })];

    expect(evaluate(statements, 'dynamodb:PutItem', TABLE)).toEqual({ allowed: true });
  });

  it('denies an action no statement grants, naming the action as AWS does', () => {
    const statements = [statement({ Action: 'dynamodb:GetItem', Resource: TABLE })];

    expect(evaluate(statements, 'dynamodb:PutItem', TABLE)).toEqual({
      allowed: false,
      reason: 'because no identity-based policy allows the dynamodb:PutItem action',
    });
  });

  it('denies a granted action on another resource: a table grant does not cover its indexes', () => {
    const statements = [statement({ Action: 'dynamodb:Query', Resource: TABLE })];

    expect(evaluate(statements, 'dynamodb:Query', `${TABLE}/index/due`).allowed).toBe(false);
  });

  it('matches wildcards in actions (case-insensitively) and in resources', () => {
    const statements = [statement({ Action: 'DynamoDB:Get*', Resource: `${TABLE}/index/*` })];

    expect(evaluate(statements, 'dynamodb:GetItem', `${TABLE}/index/due`).allowed).toBe(true);
    expect(evaluate(statements, 'dynamodb:GetItem', TABLE).allowed).toBe(false);
  });

  it('lets an explicit deny win over any allow', () => {
    const statements = [
      statement({ Action: 'dynamodb:*', Resource: '*' }),
      statement({ Effect: 'Deny', Action: 'dynamodb:DeleteItem', Resource: TABLE }),
    ];

    expect(evaluate(statements, 'dynamodb:DeleteItem', TABLE).allowed).toBe(false);
    expect(evaluate(statements, 'dynamodb:PutItem', TABLE).allowed).toBe(true);
  });

  it('takes a conditional allow to grant nothing, since conditions are not evaluated locally', () => {
    const statements = [
      statement({
        Action: 'sqs:SendMessage',
        Resource: '*',
        Condition: { Bool: { 'aws:SecureTransport': 'true' } },
      }),
    ];

    expect(evaluate(statements, 'sqs:SendMessage', 'arn:aws:sqs:us-east-1:000000000000:q').allowed).toBe(
      false,
    );
  });

  it('reads `?` as one character and escapes everything else of an ARN', () => {
    const statements = [statement({ Action: 'sqs:SendMessage', Resource: 'arn:aws:sqs:*:*:queue-?' })];

    expect(evaluate(statements, 'sqs:SendMessage', 'arn:aws:sqs:us-east-1:1:queue-a').allowed).toBe(true);
    expect(evaluate(statements, 'sqs:SendMessage', 'arn:aws:sqs:us-east-1:1:queue-ab').allowed).toBe(false);
    expect(evaluate(statements, 'sqs:SendMessage', 'arn:aws:sqs:us-east-1:1:queue.a').allowed).toBe(false);
  });
});
