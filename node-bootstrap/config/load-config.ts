/**
 * Reading the node config at the edge: where it is (flags, then PODTUN_ environment variables),
 * and its text as YAML or JSON (core/yaml-text.ts), handed to validate-config.ts.
 */
import { readFile } from 'node:fs/promises';
import { errorMessage } from '../../core/config-check.js';
import { parseYaml } from '../../core/yaml-text.js';
import { ConfigError, LOG_LEVELS, isLogLevel } from './node-config.js';
import type { ConfigOverrides, NodeConfig } from './node-config.js';
import { validateConfig } from './validate-config.js';

export interface ConfigSources {
  /** Where the config file is. */
  path: string;
  overrides: ConfigOverrides;
}

/**
 * Flags first, then PODTUN_ environment variables: `--config` / PODTUN_CONFIG,
 * `--log-level` / PODTUN_LOG_LEVEL (which wins over the file's logLevel), and NODE_NAME (the
 * node's name when the file has no nodeName: one ConfigMap serves every node of a DaemonSet).
 */
export function resolveConfigSources(
  flags: { config?: string | undefined; logLevel?: string | undefined },
  env: Readonly<Record<string, string | undefined>>,
): ConfigSources {
  const path = nonEmpty(flags.config) ?? nonEmpty(env['PODTUN_CONFIG']);
  if (path === undefined) {
    throw new ConfigError('--config', [{ path: '', reason: 'required (or set PODTUN_CONFIG)' }]);
  }
  const overrides: ConfigOverrides = {};
  const flagLevel = nonEmpty(flags.logLevel);
  const envLevel = nonEmpty(env['PODTUN_LOG_LEVEL']);
  const [level, from] = flagLevel !== undefined ? [flagLevel, '--log-level'] : [envLevel, 'PODTUN_LOG_LEVEL'];
  if (level !== undefined) {
    if (!isLogLevel(level)) throw new ConfigError(from, [{ path: '', reason: `"${level}" is not one of ${LOG_LEVELS.join('|')}` }]);
    overrides.logLevel = level;
  }
  const nodeName = nonEmpty(env['NODE_NAME']);
  if (nodeName !== undefined) overrides.nodeName = nodeName;
  return { path, overrides };
}

/** Reads, parses and validates the file; throws ConfigError naming the file, field and reason. */
export async function loadConfig(path: string, overrides: ConfigOverrides = {}): Promise<NodeConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err: unknown) {
    throw new ConfigError(path, [{ path: '', reason: `cannot read: ${errorMessage(err)}` }], { cause: err });
  }
  return parseConfigText(text, path, overrides);
}

/** YAML (or JSON, which YAML 1.2 reads too; `.json` files go through JSON.parse). */
export function parseConfigText(text: string, source: string, overrides: ConfigOverrides = {}): NodeConfig {
  let raw: unknown;
  if (source.endsWith('.json')) {
    try {
      raw = JSON.parse(text);
    } catch (err: unknown) {
      throw new ConfigError(source, [{ path: '', reason: `not valid JSON: ${errorMessage(err)}` }], { cause: err });
    }
  } else {
    const doc = parseYaml(text);
    if (doc.errors.length > 0) {
      throw new ConfigError(source, doc.errors.map((message) => ({ path: '', reason: `not valid YAML: ${yamlReason(message)}` })));
    }
    raw = doc.value;
  }
  return validateConfig(raw, source, overrides);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function yamlReason(message: string): string {
  const first = message.split('\n')[0] ?? message;
  return /\[[0-9a-fA-F:.]+\]:\d/.test(message) ? `${first} (quote IPv6 endpoints: "[fd00::1]:8285")` : first;
}
