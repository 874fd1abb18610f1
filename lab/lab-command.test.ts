import { describe, expect, it } from 'vitest';
import { main } from '../node-bootstrap/cli/cli.js';
import { EXIT_OK, EXIT_USAGE, USAGE } from '../node-bootstrap/cli/command.js';
import { LAB_USAGE, labCommand, labSubcommandUsage } from './lab-command.js';

async function lab(argv: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io = { out: (t: string) => void (out += t), err: (t: string) => void (err += t) };
  const code = await main(['lab', ...argv], {}, io, { lab: labCommand });
  return { code, out, err };
}

describe('podtun lab (arguments; builds and reads nothing)', () => {
  it.each([[['--help']], [['-h']], [['help']]])('lab %j prints the lab usage, exit 0', async (argv) => {
    const r = await lab(argv);
    expect(r).toEqual({ code: EXIT_OK, out: LAB_USAGE, err: '' });
    expect(r.out).toMatch(/^Usage: podtun lab up\|down\|status/);
    for (const sub of ['up', 'status', 'down']) expect(r.out).toContain(`podtun lab ${sub}\n`);
  });

  it.each([
    ['up', '--help'],
    ['down', '-h'],
    ['status', '--help'],
  ] as const)('lab %s %s prints that subcommand usage, exit 0', async (sub, flag) => {
    const r = await lab([sub, flag]);
    expect(r).toEqual({ code: EXIT_OK, out: labSubcommandUsage(sub), err: '' });
    expect(r.out).toMatch(new RegExp(`^Usage: podtun lab ${sub}\n\n`));
  });

  it.each([
    [[], /missing subcommand: up, down or status/],
    [['start'], /unknown subcommand "start" \(up, down or status\)/],
    [['up', '--nodes', '5'], /up: Unknown option '--nodes'/],
    [['down', 'now'], /down: Unexpected argument 'now'/],
    [['status', '--json'], /status: Unknown option '--json'/],
  ])('lab %j is a usage error, exit 2, with the lab usage', async (argv, reason) => {
    const r = await lab(argv);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.out).toBe('');
    expect(r.err).toMatch(reason);
    expect(r.err).toContain(LAB_USAGE);
  });

  it('is listed in the CLI usage', () => {
    expect(USAGE).toContain('podtun lab up|down|status');
    expect(USAGE).toContain('podtun demo [--mode podtun|kernel-routing] [--keep]');
  });
});
