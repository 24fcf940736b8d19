/**
 * The API's routes, in API Gateway's route-key form. The CDK stack declares them and the local HTTP
 * server matches requests against them, so both expose the same API.
 */

export const ROUTES = {
  list: 'GET /tasks',
  task: 'GET /tasks/{task_id}',
  subtasks: 'GET /tasks/{task_id}/subtasks',
  initialize: 'PUT /tasks/{task_id}',
  cancel: 'POST /tasks/{task_id}/cancel',
} as const;

export type RouteKey = (typeof ROUTES)[keyof typeof ROUTES];

export interface RouteMatch {
  readonly routeKey: RouteKey;
  readonly pathParameters: Record<string, string>;
}

function split(path: string): string[] {
  return path.split('/').filter((segment) => segment.length > 0);
}

/**
 * Matches a request the way API Gateway does: literal segments exactly, `{name}` one whole segment, URL-decoded.
 * Returns undefined for an unknown path or a method the path does not take.
 */
export function matchRoute(method: string, path: string): RouteMatch | undefined {
  const segments = split(path);
  for (const routeKey of Object.values(ROUTES)) {
    const [routeMethod, routePath = ''] = routeKey.split(' ');
    const pattern = split(routePath);
    if (routeMethod !== method.toUpperCase() || pattern.length !== segments.length) continue;
    const pathParameters: Record<string, string> = {};
    const matches = pattern.every((part, index) => {
      const segment = segments[index] ?? '';
      if (part.startsWith('{') && part.endsWith('}')) {
        try {
          pathParameters[part.slice(1, -1)] = decodeURIComponent(segment);
          return true;
        } catch {
          return false;
        }
      }
      return part === segment;
    });
    if (matches) return { routeKey, pathParameters };
  }
  return undefined;
}
