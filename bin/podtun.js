#!/usr/bin/env node
// The `podtun` command: the compiled CLI (npm run build -> dist/), with the lab's `demo` and `lab`
// plugged in (the lab builds namespace clusters on top of the daemon's modules; loaded only when
// asked for).
import { runCli } from '../dist/node-bootstrap/cli/cli.js';

await runCli({
  demo: async (args, env, io) => (await import('../dist/lab/demo-command.js')).demoCommand(args, env, io),
  lab: async (args, env, io) => (await import('../dist/lab/lab-command.js')).labCommand(args, env, io),
});
