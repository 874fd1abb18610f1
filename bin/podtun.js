#!/usr/bin/env node
// The `podtun` command: the compiled CLI (npm run build -> dist/).
import { runCli } from '../dist/node-bootstrap/cli.js';

await runCli();
