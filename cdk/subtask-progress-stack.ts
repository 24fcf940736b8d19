import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { SubtaskProgress, type SubtaskProgressProps } from './subtask-progress';

export interface SubtaskProgressStackProps extends StackProps {
  /**
   * Settings of the service itself.
   *
   * @default - the defaults of `SubtaskProgressProps`
   */
  readonly progress?: SubtaskProgressProps;
}

/** Deploys one `SubtaskProgress` and prints what producers, workers and readers need to reach it. */
export class SubtaskProgressStack extends Stack {
  readonly progress: SubtaskProgress;

  constructor(scope: Construct, id: string, props: SubtaskProgressStackProps = {}) {
    super(scope, id, props);
    this.progress = new SubtaskProgress(this, 'SubtaskProgress', props.progress);

    new CfnOutput(this, 'QueueUrl', {
      description: 'Workers send subtask status messages here',
      value: this.progress.queue.queueUrl,
    });
    new CfnOutput(this, 'DeadLetterQueueUrl', {
      description: 'Status messages that could not be applied, with the reason in their attributes',
      value: this.progress.deadLetterQueue.queueUrl,
    });
    new CfnOutput(this, 'ApiUrl', {
      description: 'Base URL of the progress API (GET tasks/{task_id}, GET tasks/{task_id}/subtasks)',
      value: this.progress.apiUrl,
    });
    new CfnOutput(this, 'TableName', {
      description: 'DynamoDB table holding tasks and subtask statuses',
      value: this.progress.table.tableName,
    });
  }
}
