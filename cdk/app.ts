import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SubtaskProgressStack } from './subtask-progress-stack';

const app = new App();

new SubtaskProgressStack(app, 'SubtaskProgress', {
  description: 'Exact progress of jobs fanned out into subtasks (SQS, Lambda, DynamoDB, HTTP API)',
  // Unset without credentials: the template stays environment-agnostic and `cdk synth` works offline.
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});

// Every finding must be fixed or acknowledged next to its resource; an open one fails the synthesis.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
