import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { type AlarmNotificationProps, alarmTopicFor } from './alarm-notifications';
import { SubtaskProgress, type SubtaskProgressProps } from './subtask-progress';

export interface SubtaskProgressStackProps extends StackProps, AlarmNotificationProps {
  /**
   * Settings of the service itself. Give the alarm topic here or through `alarmEmail` / `alarmTopicArn`,
   * not both.
   *
   * @default - the defaults of `SubtaskProgressProps`
   */
  readonly progress?: SubtaskProgressProps;
}

/** Deploys one `SubtaskProgress` and prints what producers, workers, readers and operators need to reach it. */
export class SubtaskProgressStack extends Stack {
  readonly progress: SubtaskProgress;

  constructor(scope: Construct, id: string, props: SubtaskProgressStackProps = {}) {
    if (props.progress?.alarmTopic && (props.alarmEmail ?? props.alarmTopicArn) !== undefined) {
      throw new Error('Give the alarm topic either as progress.alarmTopic or as alarmEmail / alarmTopicArn');
    }
    super(scope, id, props);
    const alarmTopic = props.progress?.alarmTopic ?? alarmTopicFor(this, props);
    this.progress = new SubtaskProgress(this, 'SubtaskProgress', { ...props.progress, alarmTopic });

    new CfnOutput(this, 'QueueUrl', {
      description: 'Workers send subtask status messages here',
      value: this.progress.queue.queueUrl,
    });
    new CfnOutput(this, 'DeadLetterQueueUrl', {
      description: 'Status messages that could not be applied, with the reason in their attributes',
      value: this.progress.deadLetterQueue.queueUrl,
    });
    new CfnOutput(this, 'AggregatorFailureQueueUrl', {
      description: "Stream records the aggregator's event source gave up on (shard and sequence numbers)",
      value: this.progress.aggregatorFailureQueue.queueUrl,
    });
    new CfnOutput(this, 'AggregatorFunctionName', {
      description: 'Invoke with {"reconcile": "<task_id>"} to recount every shard of a task',
      value: this.progress.aggregator.functionName,
    });
    new CfnOutput(this, 'ApplierEventSourceMappingId', {
      description: 'aws lambda update-event-source-mapping --uuid <this> --no-enabled pauses the applier',
      value: this.progress.applierEventSourceMappingId,
    });
    new CfnOutput(this, 'AggregatorEventSourceMappingId', {
      description: 'aws lambda update-event-source-mapping --uuid <this> --no-enabled pauses the aggregator',
      value: this.progress.aggregatorEventSourceMappingId,
    });
    new CfnOutput(this, 'ApiUrl', {
      description:
        'Base URL of the progress API (GET tasks/{task_id}, GET tasks/{task_id}/subtasks, ' +
        'PUT tasks/{task_id}, POST tasks/{task_id}/cancel)',
      value: this.progress.apiUrl,
    });
    new CfnOutput(this, 'TableName', {
      description: 'DynamoDB table holding tasks, shard counters and subtask statuses',
      value: this.progress.table.tableName,
    });
    if (alarmTopic) {
      new CfnOutput(this, 'AlarmTopicArn', {
        description: 'Every alarm notifies this topic when it goes off and when it clears',
        value: alarmTopic.topicArn,
      });
    }
  }
}
