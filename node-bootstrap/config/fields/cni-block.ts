/** The optional `cni` block: present means install the CNI executables and conflist when ready. */
import { blockIssues, checkKnownKeys, describe, filePathAt, isRecord, show } from '../../../core/config-check.js';
import type { IssueFn } from '../../../core/config-check.js';
import { DEFAULT_CNI } from '../node-config.js';
import type { CniSettings } from '../node-config.js';

const KEYS = ['binDir', 'confDir', 'confFileName', 'networkName', 'dataDir', 'bridge'] as const;
const NETWORK_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function cniAt(value: unknown, baseDir: string, report: IssueFn): CniSettings | undefined {
  if (!isRecord(value)) return report('cni', `expected a mapping (${KEYS.join(', ')}; {} for the defaults), got ${describe(value)}`);
  const { issue, bad } = blockIssues(report);
  checkKnownKeys(value, 'cni', KEYS, issue);
  const dir = (key: 'binDir' | 'confDir' | 'dataDir'): string => filePathAt(value[key], `cni.${key}`, baseDir, issue, false) ?? DEFAULT_CNI[key];
  const name = (key: 'confFileName' | 'networkName' | 'bridge', re: RegExp, what: string): string => {
    const v = value[key];
    if (v === undefined) return DEFAULT_CNI[key];
    if (typeof v !== 'string' || !re.test(v)) {
      issue(`cni.${key}`, `${show(v)} is not ${what}`);
      return DEFAULT_CNI[key];
    }
    return v;
  };
  const settings: CniSettings = {
    binDir: dir('binDir'),
    confDir: dir('confDir'),
    dataDir: dir('dataDir'),
    confFileName: name('confFileName', /^[\w.-]+\.conflist$/, 'a file name ending in .conflist'),
    networkName: name('networkName', NETWORK_NAME_RE, 'a CNI network name (letters, digits, "_", ".", "-")'),
    bridge: name('bridge', /^[A-Za-z0-9_.-]{1,15}$/, 'a Linux interface name (1-15 characters)'),
  };
  return bad() ? undefined : settings;
}
