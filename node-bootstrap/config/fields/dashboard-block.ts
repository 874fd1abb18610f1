/**
 * The optional `dashboard` block: where the page is served, how often the link history is
 * sampled, and the port its peers' dashboards answer on (the cluster view; absent: this node
 * alone). Absent block: no dashboard.
 */
import { blockIssues, checkKnownKeys, describe, intAt, isAbsent, isRecord } from '../../../core/config-check.js';
import type { IssueFn } from '../../../core/config-check.js';
import { DEFAULT_DASHBOARD_SAMPLE_MS } from '../node-config.js';
import type { DashboardSettings } from '../node-config.js';
import { listenBlockAt } from './listen-block.js';

const KEYS = ['listen', 'peerPort', 'sampleIntervalMs'] as const;

export function dashboardAt(value: unknown, issue: IssueFn): DashboardSettings | undefined {
  const off: DashboardSettings = { listen: undefined, peerPort: undefined, sampleIntervalMs: DEFAULT_DASHBOARD_SAMPLE_MS };
  if (isAbsent(value)) return off;
  if (!isRecord(value)) return issue('dashboard', `expected a mapping (listen, peerPort, sampleIntervalMs), got ${describe(value)}`);
  const block = blockIssues(issue);
  checkKnownKeys(value, 'dashboard', KEYS, block.issue);
  const { listen } = listenBlockAt({ listen: value['listen'] }, 'dashboard', block.issue) ?? off;
  const peerPort = isAbsent(value['peerPort']) ? undefined : intAt(value['peerPort'], 'dashboard.peerPort', 0, 1, 65535, block.issue);
  const sampleIntervalMs = intAt(value['sampleIntervalMs'], 'dashboard.sampleIntervalMs', DEFAULT_DASHBOARD_SAMPLE_MS, 100, 60_000, block.issue);
  if (block.bad() || sampleIntervalMs === undefined) return undefined;
  return { listen, peerPort, sampleIntervalMs };
}
