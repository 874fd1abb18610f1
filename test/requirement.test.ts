import { afterEach, describe, expect, it, vi } from 'vitest';
import { CI_FLAG, skipUnlessMet } from './requirement.js';

describe('skipUnlessMet', () => {
  const saved = process.env[CI_FLAG];
  afterEach(() => {
    if (saved === undefined) delete process.env[CI_FLAG];
    else process.env[CI_FLAG] = saved;
    vi.restoreAllMocks();
  });

  it('runs a file whose needs are met, in CI or not', () => {
    process.env[CI_FLAG] = '1';
    expect(skipUnlessMet('x.test.ts', undefined)).toBe(false);
  });

  it('skips with the reason printed on a developer machine', () => {
    delete process.env[CI_FLAG];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    expect(skipUnlessMet('x.test.ts', 'needs root')).toBe(true);
    expect(write).toHaveBeenCalledWith('[skip] x.test.ts: needs root\n');
  });

  it('fails the file in CI, naming what is missing', () => {
    process.env[CI_FLAG] = '1';
    expect(() => skipUnlessMet('x.test.ts', '`iperf3` is missing')).toThrow(/x\.test\.ts: `iperf3` is missing \(PODTUN_CI=1: .* never skips it\)/);
  });
});
