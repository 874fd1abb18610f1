import { describe, expect, it } from 'vitest';
import type { ConfigIssue, IssueFn } from '../../../core/config-check.js';
import { DEFAULT_DASHBOARD_SAMPLE_MS } from '../node-config.js';
import { dashboardAt } from './dashboard-block.js';

function check(value: unknown): { result: ReturnType<typeof dashboardAt>; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const issue: IssueFn = (path, reason) => {
    issues.push({ path, reason });
    return undefined;
  };
  return { result: dashboardAt(value, issue), issues };
}

describe('dashboard block', () => {
  it('is off when absent, with the default sample interval', () => {
    expect(check(undefined)).toEqual({
      result: { listen: undefined, peerPort: undefined, sampleIntervalMs: DEFAULT_DASHBOARD_SAMPLE_MS },
      issues: [],
    });
  });

  it('takes listen, peerPort and sampleIntervalMs', () => {
    const { result, issues } = check({ listen: '10.0.0.1:9403', peerPort: 9403, sampleIntervalMs: 500 });
    expect(issues).toEqual([]);
    expect(result?.listen?.text).toBe('10.0.0.1:9403');
    expect(result).toMatchObject({ peerPort: 9403, sampleIntervalMs: 500 });
  });

  it.each([
    [{ listen: 'nowhere' }, 'dashboard.listen'],
    [{ peerPort: 0 }, 'dashboard.peerPort'],
    [{ peerPort: '9403' }, 'dashboard.peerPort'],
    [{ sampleIntervalMs: 10 }, 'dashboard.sampleIntervalMs'],
    [{ peers: ['10.0.0.2'] }, 'dashboard.peers'],
    ['127.0.0.1:9403', 'dashboard'],
  ])('refuses %j at %s', (value, path) => {
    const { result, issues } = check(value);
    expect(result).toBeUndefined();
    expect(issues.map((i) => i.path)).toEqual([path]);
  });
});
