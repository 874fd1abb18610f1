import { describe, expect, it } from 'vitest';
import { netAdminMissing } from './net-admin.js';

const status = (capEff: string): string => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`;

describe('netAdminMissing', () => {
  it('lets a process with CAP_NET_ADMIN (bit 12) through, whatever else it lacks', () => {
    expect(netAdminMissing(status('000001fffeffffff'))).toBeUndefined();
    expect(netAdminMissing(status('0000000000001000'))).toBeUndefined();
  });

  it('names root and CAP_NET_ADMIN in one line when the bit is clear or the line is missing', () => {
    for (const text of [status('0000000000000000'), status('000001ffffffefff'), 'Name:\tnode\n']) {
      const reason = netAdminMissing(text);
      expect(reason).toMatch(/^podtun run needs root or CAP_NET_ADMIN .*$/);
      expect(reason).not.toContain('\n');
    }
  });

});
