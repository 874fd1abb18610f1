import { describe, expect, it } from 'vitest';
import { main } from '../node-bootstrap/cli/cli.js';
import { EXIT_OK, EXIT_USAGE } from '../node-bootstrap/cli/command.js';
import { DEMO_USAGE, demoCommand } from './demo-command.js';

describe('podtun demo (flags)', () => {
  it('refuses an unknown --mode with usage, exit 2', async () => {
    let out = '';
    let err = '';
    const io = { out: (t: string) => void (out += t), err: (t: string) => void (err += t) };
    const code = await main(['demo', '--mode', 'vxlan'], {}, io, { demo: demoCommand });
    expect(code).toBe(EXIT_USAGE);
    expect(err).toMatch(/--mode: "vxlan" is not one of podtun\|kernel-routing/);
    expect(err + out).toContain('Usage:');
  });

  it.each([['--help'], ['-h']])('demo %s prints its usage, exit 0, and builds nothing', async (flag) => {
    let out = '';
    let err = '';
    const io = { out: (t: string) => void (out += t), err: (t: string) => void (err += t) };
    const code = await main(['demo', flag], {}, io, { demo: demoCommand });
    expect(code).toBe(EXIT_OK);
    expect(err).toBe('');
    expect(out).toBe(DEMO_USAGE);
    expect(out).toMatch(/^Usage: podtun demo \[--mode podtun\|kernel-routing\] \[--keep\]/);
    expect(out).toMatch(/--keep {18}leave the cluster running as the lab/);
  });

  it('refuses --keep with --mode kernel-routing (the lab runs podtun), exit 2', async () => {
    let out = '';
    let err = '';
    const io = { out: (t: string) => void (out += t), err: (t: string) => void (err += t) };
    const code = await main(['demo', '--mode', 'kernel-routing', '--keep'], {}, io, { demo: demoCommand });
    expect(code).toBe(EXIT_USAGE);
    expect(err).toMatch(/--keep needs --mode podtun/);
    expect(out).toBe('');
  });
});
