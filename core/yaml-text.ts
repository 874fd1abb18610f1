/**
 * YAML read at the edges (the node config, a kubeconfig, manifests in tests): the only importer
 * of `yaml`. Duplicate keys are errors; each error is the parser's message (its first line says
 * what and where, the rest shows the text around it).
 */
import { parseAllDocuments, parseDocument } from 'yaml';

export interface YamlResult {
  /** The document as plain JSON-like values (undefined when empty or unreadable). */
  readonly value: unknown;
  /** One message per problem; empty when the text is valid YAML. */
  readonly errors: readonly string[];
}

export function parseYaml(text: string): YamlResult {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) return { value: undefined, errors: doc.errors.map((e) => e.message) };
  return { value: doc.toJS() as unknown, errors: [] };
}

/** Every document of a multi-document text (`---` separated), in order. */
export function parseYamlDocuments(text: string): YamlResult[] {
  return parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true }).map((doc) =>
    doc.errors.length > 0
      ? { value: undefined, errors: doc.errors.map((e) => e.message) }
      : { value: doc.toJS() as unknown, errors: [] },
  );
}
