/**
 * The progress API's HTTP API: one Lambda integration for every route in `ROUTES`, IAM authorization by default,
 * and a default stage with throttling and JSON access logs, which the built-in default stage cannot take.
 * Built in the caller's scope, so its resources keep their logical ids.
 */

import type { RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { ROUTES } from '../lambdas/core/routes';

export interface ProgressHttpApiOptions {
  readonly apiFunction: lambda.IFunction;
  readonly authorizer: apigw.IHttpRouteAuthorizer;
  readonly throttling: { readonly rateLimit: number; readonly burstLimit: number };
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

export interface ProgressHttpApi {
  readonly httpApi: apigw.HttpApi;
  /** Base URL of the default stage, ending in `/`. */
  readonly url: string;
}

export interface ApiRoute {
  readonly method: apigw.HttpMethod;
  readonly path: string;
}

/** Splits an API Gateway route key such as `GET /tasks/{task_id}`. */
export function parseRouteKey(routeKey: string): ApiRoute {
  const [method, path] = routeKey.split(' ');
  const httpMethod = Object.values(apigw.HttpMethod).find((known) => known === method);
  if (httpMethod === undefined || path === undefined || !path.startsWith('/')) {
    throw new Error(`Route key must look like "GET /path", got "${routeKey}"`);
  }
  return { method: httpMethod, path };
}

export function createProgressHttpApi(scope: Construct, options: ProgressHttpApiOptions): ProgressHttpApi {
  const { logRetention, removalPolicy } = options;
  const httpApi = new apigw.HttpApi(scope, 'HttpApi', {
    description: 'Progress of tasks fanned out into subtasks',
    defaultAuthorizer: options.authorizer,
    // The default stage is added below, with throttling and access logs the built-in one cannot take.
    createDefaultStage: false,
  });
  const integration = new HttpLambdaIntegration('ApiIntegration', options.apiFunction);
  for (const { method, path } of Object.values(ROUTES).map(parseRouteKey)) {
    httpApi.addRoutes({ path, methods: [method], integration });
  }
  const accessLogs = new logs.LogGroup(scope, 'ApiAccessLogs', { retention: logRetention, removalPolicy });
  const stage = httpApi.addStage('DefaultStage', {
    stageName: '$default',
    autoDeploy: true,
    throttle: options.throttling,
    accessLogSettings: {
      destination: new apigw.LogGroupLogDestination(accessLogs),
      format: AccessLogFormat.custom(
        JSON.stringify({
          requestId: '$context.requestId',
          requestTime: '$context.requestTime',
          routeKey: '$context.routeKey',
          path: '$context.path',
          status: '$context.status',
          caller: '$context.identity.userArn',
          sourceIp: '$context.identity.sourceIp',
          userAgent: '$context.identity.userAgent',
          responseLatency: '$context.responseLatency',
          integrationError: '$context.integrationErrorMessage',
          authorizerError: '$context.authorizer.error',
        }),
      ),
    },
  });
  return { httpApi, url: stage.url };
}
