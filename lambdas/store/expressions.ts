/**
 * DynamoDB expressions built from data: each `#placeholder` an expression uses is looked up in `ATTRIBUTES`, the
 * one place the store's attribute names are declared, and each condition carries the values it compares with,
 * so a call's `ExpressionAttributeNames` and `ExpressionAttributeValues` follow from its expressions.
 */
import { DUE_INDEX, TABLE_KEYS } from '../service-settings';

/** Every attribute the store's expressions name, by placeholder (without its `#`). */
const ATTRIBUTES: Readonly<Record<string, string>> = {
  pk: TABLE_KEYS.partitionKey,
  sk: TABLE_KEYS.sortKey,
  due_pk: DUE_INDEX.partitionKey,
  due_at: DUE_INDEX.sortKey,
  expires_at: TABLE_KEYS.timeToLiveAttribute,
  ...Object.fromEntries(
    [
      ...['generation', 'version', 'vsum', 'counters_vsum', 'ready', 'task_state', 'updated_at', 'ended_at'],
      ...['end_reason', 'init_written', 'cancel_requested', 'event_pending', 'task_output', 'in_flight'],
      ...['subtasks', 'end_cursor', 'recount_cursor', 'status', 'state', 'outbox_pending'],
      ...['detail_type', 'detail', 'published_at'],
    ].map((name) => [name, name]),
  ),
};

export type Values = Readonly<Record<string, unknown>>;

/** A condition and the values it compares with. */
export interface Condition {
  readonly expression: string;
  readonly values?: Values;
}

/** Every one of `conditions`. */
export function all(...conditions: readonly Condition[]): Condition {
  return {
    expression: conditions.map((condition) => condition.expression).join(' AND '),
    values: Object.assign({}, ...conditions.map((condition) => condition.values ?? {})),
  };
}

/** The names map of `expressions`: each placeholder they use, resolved in `ATTRIBUTES`. */
export function attributeNames(...expressions: readonly string[]): Record<string, string> {
  const names: Record<string, string> = {};
  for (const [placeholder, name] of expressions.join(' ').matchAll(/#(\w+)/g)) {
    const attribute = ATTRIBUTES[name as string];
    if (attribute === undefined) throw new Error(`No attribute declared for ${placeholder}`);
    names[placeholder] = attribute;
  }
  return names;
}

/** `values` as an `ExpressionAttributeValues` field: absent when there are none, as DynamoDB requires. */
export function attributeValues(values: Values): { ExpressionAttributeValues?: Record<string, unknown> } {
  return Object.keys(values).length === 0 ? {} : { ExpressionAttributeValues: { ...values } };
}

/** A conditional write's expression fields. */
export function conditionExpression(when: Condition) {
  return {
    ConditionExpression: when.expression,
    ExpressionAttributeNames: attributeNames(when.expression),
    ...attributeValues(when.values ?? {}),
  };
}

export interface Update {
  /** Assignments such as `#updated_at = :now`. */
  readonly set: readonly string[];
  readonly remove?: readonly string[];
  /** The values `set` assigns. */
  readonly values?: Values;
  readonly when: Condition;
}

/** A conditional update's expression fields. */
export function updateExpression({ set, remove = [], values = {}, when }: Update) {
  const update = `SET ${set.join(', ')}${remove.length > 0 ? ` REMOVE ${remove.join(', ')}` : ''}`;
  return {
    UpdateExpression: update,
    ConditionExpression: when.expression,
    ExpressionAttributeNames: attributeNames(update, when.expression),
    ...attributeValues({ ...values, ...when.values }),
  };
}
