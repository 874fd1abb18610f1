/** An optional `{ listen: "host:port" }` block (`api`, `dashboard`); absent: no TCP listener. */
import { blockIssues, checkKnownKeys, describe, hostPortAt, isAbsent, isRecord } from '../../../core/config-check.js';
import type { IssueFn } from '../../../core/config-check.js';
import type { ListenSettings } from '../node-config.js';

const KEYS = ['listen'] as const;

export function listenBlockAt(value: unknown, field: string, issue: IssueFn): ListenSettings | undefined {
  if (isAbsent(value)) return { listen: undefined };
  if (!isRecord(value)) return issue(field, `expected a mapping (listen), got ${describe(value)}`);
  const block = blockIssues(issue);
  checkKnownKeys(value, field, KEYS, block.issue);
  const rawListen = value['listen'];
  if (isAbsent(rawListen)) return block.bad() ? undefined : { listen: undefined };
  const listen = hostPortAt(rawListen, `${field}.listen`, issue);
  if (listen === undefined) return undefined;
  return block.bad() ? undefined : { listen };
}
