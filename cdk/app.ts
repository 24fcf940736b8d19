import { App } from 'aws-cdk-lib';
import { defineSubtaskProgressApp } from './subtask-progress-app';

defineSubtaskProgressApp(new App());
