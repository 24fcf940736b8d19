import { describe, expect, it } from 'vitest';
import { type ResolveContext, resolveValue } from '../../local/cloudformation-values';

const CONTEXT: ResolveContext = {
  region: 'us-east-1',
  accountId: '000000000000',
  resources: {
    Table: { ref: 'tasks', attributes: { Arn: 'arn:aws:dynamodb:us-east-1:000000000000:table/tasks' } },
  },
};

describe('resolveValue (CloudFormation intrinsics against the local resources)', () => {
  it('resolves Ref and Fn::GetAtt of a local resource', () => {
    expect(resolveValue({ Ref: 'Table' }, CONTEXT)).toBe('tasks');
    expect(resolveValue({ 'Fn::GetAtt': ['Table', 'Arn'] }, CONTEXT)).toBe(
      'arn:aws:dynamodb:us-east-1:000000000000:table/tasks',
    );
  });

  it('joins pseudo parameters as CDK writes an event bus ARN', () => {
    const bus = {
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':events:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          ':event-bus/default',
        ],
      ],
    };

    expect(resolveValue(bus, CONTEXT)).toBe('arn:aws:events:us-east-1:000000000000:event-bus/default');
  });

  it('resolves an index ARN built from the table ARN, and Fn::Sub, Fn::Select and Fn::Split', () => {
    const index = { 'Fn::Join': ['', [{ 'Fn::GetAtt': ['Table', 'Arn'] }, '/index/due']] };
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Fn::Sub's own placeholders, not JavaScript's.
    const sub = { 'Fn::Sub': ['${Name}-${AWS::Region}-${Table}', { Name: 'x' }] };
    const select = { 'Fn::Select': [1, { 'Fn::Split': ['/', 'a/b/c'] }] };

    expect(resolveValue(index, CONTEXT)).toBe(
      'arn:aws:dynamodb:us-east-1:000000000000:table/tasks/index/due',
    );
    expect(resolveValue(sub, CONTEXT)).toBe('x-us-east-1-tasks');
    expect(resolveValue(select, CONTEXT)).toBe('b');
  });

  it('gives a resource the local stack lacks an ARN that names no local resource', () => {
    const resolved = resolveValue({ 'Fn::GetAtt': ['LogGroup', 'Arn'] }, CONTEXT);

    expect(resolved).toBe('arn:aws:local:us-east-1:000000000000:not-local/LogGroup/Arn');
  });

  it('leaves literals and plain maps as they are, resolving inside them', () => {
    expect(resolveValue({ A: 'x', B: [1, { Ref: 'Table' }] }, CONTEXT)).toEqual({ A: 'x', B: [1, 'tasks'] });
  });
});
