/**
 * Resolves the CloudFormation intrinsics a synthesized template uses in function environments and role policies
 * (`Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::Sub` and the pseudo parameters) against the
 * resources the local stack made, so the local functions run with the environment and the grants CloudFormation
 * would give them. A reference to something the local stack does not have resolves to an ARN of its own that no
 * local call ever names: a grant on it allows nothing here, as a grant on another resource allows nothing on AWS.
 */

/** What the local stack made for a logical id: `Ref` and each attribute `Fn::GetAtt` may ask for. */
export interface LocalResource {
  readonly ref: string;
  readonly attributes: Readonly<Record<string, string>>;
}

export interface ResolveContext {
  readonly region: string;
  readonly accountId: string;
  readonly resources: Readonly<Record<string, LocalResource>>;
}

export class UnresolvableValueError extends Error {
  constructor(what: string) {
    super(`The local stack cannot resolve ${what}`);
    this.name = 'UnresolvableValueError';
  }
}

function pseudoParameter(name: string, context: ResolveContext): string | undefined {
  switch (name) {
    case 'AWS::Partition':
      return 'aws';
    case 'AWS::Region':
      return context.region;
    case 'AWS::AccountId':
      return context.accountId;
    case 'AWS::URLSuffix':
      return 'amazonaws.com';
    case 'AWS::StackName':
      return 'local';
    default:
      return undefined;
  }
}

function unknownResource(logicalId: string, context: ResolveContext, attribute?: string): string {
  const suffix = attribute === undefined ? '' : `/${attribute}`;
  return `arn:aws:local:${context.region}:${context.accountId}:not-local/${logicalId}${suffix}`;
}

function reference(name: string, context: ResolveContext): string {
  return pseudoParameter(name, context) ?? context.resources[name]?.ref ?? unknownResource(name, context);
}

function attribute(logicalId: string, name: string, context: ResolveContext): string {
  return context.resources[logicalId]?.attributes[name] ?? unknownResource(logicalId, context, name);
}

function asString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new UnresolvableValueError(`${what}: ${JSON.stringify(value)}`);
  return value;
}

function substitute(template: string, variables: Readonly<Record<string, unknown>>, context: ResolveContext) {
  return template.replace(/\$\{([^}!][^}]*)\}/g, (_, name: string) => {
    if (name in variables)
      return asString(resolveValue(variables[name], context), `Fn::Sub variable ${name}`);
    const [logicalId, attributeName] = name.split('.', 2) as [string, string | undefined];
    return attributeName === undefined
      ? reference(logicalId, context)
      : attribute(logicalId, attributeName, context);
  });
}

/** `value` with every intrinsic replaced by its local value; strings, numbers and booleans stay as they are. */
export function resolveValue(value: unknown, context: ResolveContext): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveValue(item, context));
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value);
  const [key, argument] = entries[0] ?? [];
  if (entries.length !== 1 || key === undefined || !(key === 'Ref' || key.startsWith('Fn::'))) {
    return Object.fromEntries(entries.map(([name, item]) => [name, resolveValue(item, context)]));
  }
  const args = resolveValue(argument, context);
  switch (key) {
    case 'Ref':
      return reference(asString(args, 'Ref'), context);
    case 'Fn::GetAtt': {
      const [logicalId, name] = Array.isArray(args) ? args : asString(args, 'Fn::GetAtt').split('.', 2);
      return attribute(asString(logicalId, 'Fn::GetAtt'), asString(name, 'Fn::GetAtt'), context);
    }
    case 'Fn::Join': {
      const [separator, items] = args as [unknown, unknown];
      if (!Array.isArray(items)) throw new UnresolvableValueError(`Fn::Join of ${JSON.stringify(items)}`);
      return items.map((item) => asString(item, 'Fn::Join item')).join(asString(separator, 'Fn::Join'));
    }
    case 'Fn::Select': {
      const [index, items] = args as [unknown, unknown];
      if (!Array.isArray(items)) throw new UnresolvableValueError(`Fn::Select of ${JSON.stringify(items)}`);
      return items[Number(index)];
    }
    case 'Fn::Split': {
      const [separator, text] = args as [unknown, unknown];
      return asString(text, 'Fn::Split').split(asString(separator, 'Fn::Split'));
    }
    case 'Fn::Sub': {
      const [template, variables] = Array.isArray(args) ? args : [args, {}];
      return substitute(asString(template, 'Fn::Sub'), (variables ?? {}) as Record<string, unknown>, context);
    }
    default:
      throw new UnresolvableValueError(key);
  }
}
