/**
 * What a test file needs from the machine (root, a tool, a build): where it is missing, the file
 * is skipped with the reason printed, on a developer's machine. In CI (PODTUN_CI=1, which .ci/run
 * sets) the same miss fails the file instead, so a broken install step can never turn CI green by
 * skipping the suites it broke.
 */
export const CI_FLAG = 'PODTUN_CI';

/** True: skip (the reason was printed). Throws in CI. */
export function skipUnlessMet(file: string, reason: string | undefined): boolean {
  if (reason === undefined) return false;
  if (process.env[CI_FLAG] === '1') {
    throw new Error(`${file}: ${reason} (${CI_FLAG}=1: a missing tool, build or root fails a suite, never skips it)`);
  }
  process.stdout.write(`[skip] ${file}: ${reason}\n`);
  return true;
}
