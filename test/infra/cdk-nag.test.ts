import { type Acknowledgment, Stack, Validations } from 'aws-cdk-lib';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SubtaskProgressProps } from '../../cdk/subtask-progress';
import { SubtaskProgressStack } from '../../cdk/subtask-progress-stack';
import { testApp } from './synthesize';

/** Unacknowledged AwsSolutions findings in a scope, as `rule at construct path`. */
function findings(scope: IConstruct): string[] {
  const report = new AwsSolutionsChecks().validateScope(scope);
  return report.violations.flatMap((violation) =>
    violation.violatingResources.map(
      (resource) => `${violation.severity} ${violation.ruleName} at ${resource.constructPath}`,
    ),
  );
}

function stackWith(props: SubtaskProgressProps = {}): SubtaskProgressStack {
  return new SubtaskProgressStack(testApp(), 'Nagged', { progress: props });
}

/** Every acknowledgement recorded in the tree: rule id, reason, and where. */
function acknowledgements(scope: IConstruct): { id: string; reason: unknown; path: string }[] {
  return scope.node
    .findAll()
    .flatMap((construct) =>
      construct.node.metadata
        .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((entry) =>
          Object.entries(entry.data ?? {}).map(([id, reason]) => ({ id, reason, path: construct.node.path })),
        ),
    );
}

describe('cdk-nag AwsSolutions', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('finds nothing unacknowledged in the default stack', () => {
    expect(findings(stackWith())).toEqual([]);
  });

  it('finds nothing unacknowledged with a JWT authorizer and an alarm topic', () => {
    const app = testApp();
    const topic = sns.Topic.fromTopicArn(
      new Stack(app, 'Shared'),
      'OnCall',
      'arn:aws:sns:eu-west-1:123456789012:oncall',
    );
    new SubtaskProgressStack(app, 'Nagged', {
      progress: {
        authorizer: new HttpJwtAuthorizer('Jwt', 'https://issuer.example.com', { jwtAudience: ['progress'] }),
        alarmTopic: topic,
      },
    });

    expect(findings(app)).toEqual([]);
  });

  it('finds nothing unacknowledged with an alarm e-mail: the new topic is encrypted and TLS-only', () => {
    const stack = new SubtaskProgressStack(testApp(), 'Nagged', { alarmEmail: 'oncall@example.com' });

    expect(findings(stack)).toEqual([]);
  });

  it('acknowledges exactly these rules: the runtime pin, unscoped tracing actions, the on-failure queue', () => {
    // CDK records an acknowledged rule id under an `Annotation::` prefix.
    const acknowledged = acknowledgements(stackWith()).map(
      ({ id, path }) => `${id.replace(/^Annotation::/, '')} at ${path}`,
    );

    expect(acknowledged.sort()).toEqual(
      [
        'AwsSolutions-IAM5[Resource::*] at Nagged/SubtaskProgress/AggregatorRole',
        'AwsSolutions-IAM5[Resource::*] at Nagged/SubtaskProgress/ApiFunctionRole',
        'AwsSolutions-IAM5[Resource::*] at Nagged/SubtaskProgress/ApplierRole',
        'AwsSolutions-IAM5[Resource::*] at Nagged/SubtaskProgress/SweeperRole',
        'AwsSolutions-L1 at Nagged/SubtaskProgress/Aggregator',
        'AwsSolutions-L1 at Nagged/SubtaskProgress/ApiFunction',
        'AwsSolutions-L1 at Nagged/SubtaskProgress/Applier',
        'AwsSolutions-L1 at Nagged/SubtaskProgress/Sweeper',
        'AwsSolutions-SQS3 at Nagged/SubtaskProgress/AggregatorFailureQueue',
      ].sort(),
    );
  });

  it('gives every acknowledgement a specific reason', () => {
    const acknowledged = acknowledgements(stackWith());

    expect(acknowledged.length).toBeGreaterThan(0);
    for (const { id, reason } of acknowledged) {
      expect(id).toMatch(/AwsSolutions-/);
      expect(typeof reason === 'string' ? reason.trim().length : 0, `reason for ${id}`).toBeGreaterThan(20);
    }
  });

  it('acknowledges only findings that exist: without the acknowledgements, exactly those rules fire', () => {
    const recorded: Acknowledgment[] = [];
    vi.spyOn(Validations.prototype, 'acknowledge').mockImplementation((...rules) => {
      recorded.push(...rules);
    });

    const raised = new AwsSolutionsChecks()
      .validateScope(stackWith())
      .violations.flatMap((violation) => violation.violatingResources.map(() => violation.ruleName));

    expect(raised.sort()).toEqual(recorded.map((rule) => rule.id).sort());
  });

  it('is not vacuous: an unencrypted queue without a TLS policy or DLQ is reported', () => {
    const stack = stackWith();
    new sqs.Queue(stack, 'CarelessQueue', { encryption: sqs.QueueEncryption.UNENCRYPTED });

    expect(findings(stack)).toEqual(
      expect.arrayContaining([
        'error AwsSolutions-SQS2 at Nagged/CarelessQueue/Resource',
        'error AwsSolutions-SQS3 at Nagged/CarelessQueue/Resource',
        'error AwsSolutions-SQS4 at Nagged/CarelessQueue/Resource',
      ]),
    );
  });
});
