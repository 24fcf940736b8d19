import { type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { alarmNotificationsFromContext } from './alarm-notifications';
import { SubtaskProgressStack } from './subtask-progress-stack';

/**
 * Defines what `cdk synth` and `cdk deploy` build (see `cdk/app.ts`), in a function the tests call with an
 * app of their own, context included.
 */
export function defineSubtaskProgressApp(app: App): SubtaskProgressStack {
  // No `env`: the template names no account or region (every ARN is built from AWS::Region and
  // AWS::AccountId), so one synthesized template deploys wherever the deploying credentials point, and
  // `cdk synth` runs offline.
  const stack = new SubtaskProgressStack(app, 'SubtaskProgress', {
    description: 'Exact progress of jobs fanned out into subtasks (SQS, Lambda, DynamoDB streams, HTTP API)',
    // `cdk deploy -c alarmEmail=oncall@example.com` or `-c alarmTopicArn=arn:aws:sns:…`: where alarms notify.
    ...alarmNotificationsFromContext(app.node),
  });

  // Every finding must be fixed or acknowledged next to its resource; an open one fails the synthesis.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}
