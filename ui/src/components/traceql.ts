// TraceQL for the editor: a tokenizer for highlighting (it never fails: unknown text is its
// own token, the server's parser reports errors), and what to suggest at the cursor.

export type TokenKind = 'brace' | 'operator' | 'string' | 'number' | 'keyword' | 'attribute' | 'intrinsic' | 'text';

export interface Token {
  kind: TokenKind;
  text: string;
  start: number;
}

const INTRINSICS = [
  'name',
  'status',
  'statusMessage',
  'duration',
  'kind',
  'rootName',
  'rootServiceName',
  'traceDuration',
  'span:name',
  'span:status',
  'span:duration',
  'span:kind',
  'span:id',
  'span:parentID',
  'trace:duration',
  'trace:rootName',
  'trace:rootService',
  'trace:id',
  'event:name',
  'link:traceID',
];
const KEYWORDS = new Set([
  'true',
  'false',
  'nil',
  'error',
  'ok',
  'unset',
  'server',
  'client',
  'producer',
  'consumer',
  'internal',
  'unspecified',
  'by',
  'select',
  'count',
  'avg',
  'min',
  'max',
  'sum',
  'coalesce',
  'rate',
  'count_over_time',
  'quantile_over_time',
  'histogram_over_time',
  'compare',
]);
const OPERATORS = ['&&', '||', '>>', '<<', '!=', '=~', '!~', '>=', '<=', '!>>', '!<<', '~', '=', '>', '<', '!', '|'];

export function tokenize(query: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const push = (kind: TokenKind, end: number) => {
    tokens.push({ kind, text: query.slice(i, end), start: i });
    i = end;
  };
  while (i < query.length) {
    const c = query[i];
    if (c === '{' || c === '}' || c === '(' || c === ')') push('brace', i + 1);
    else if (c === '"' || c === '`') {
      let end = i + 1;
      while (end < query.length && query[end] !== c) end += query[end] === '\\' ? 2 : 1;
      push('string', Math.min(end + 1, query.length));
    } else if (/[0-9]/.test(c))
      push('number', i + (/^[0-9.]+(ns|us|µs|ms|s|m|h)?/.exec(query.slice(i))?.[0].length ?? 1));
    else if (c === '.' || /[A-Za-z_]/.test(c)) {
      const word = /^[.A-Za-z_][\w.:\-/]*/.exec(query.slice(i))![0];
      const kind: TokenKind = KEYWORDS.has(word)
        ? 'keyword'
        : INTRINSICS.includes(word)
          ? 'intrinsic'
          : word.startsWith('.') || /^(span|resource|event|link|instrumentation)\./.test(word)
            ? 'attribute'
            : 'text';
      push(kind, i + word.length);
    } else {
      const op = OPERATORS.find((o) => query.startsWith(o, i));
      push(op ? 'operator' : 'text', i + (op?.length ?? 1));
    }
  }
  return tokens;
}

/** The attribute-like word ending at `cursor`, with where it starts. */
export function wordAt(query: string, cursor: number): { word: string; start: number } {
  let start = cursor;
  while (start > 0 && /[\w.:\-/]/.test(query[start - 1])) start--;
  return { word: query.slice(start, cursor), start };
}

/** Suggestions for `word` from the intrinsics and the known attribute keys by scope. */
export function suggestions(word: string, tags: Record<string, string[] | null>): string[] {
  if (!word || /^[0-9]/.test(word)) return [];
  const candidates = new Set<string>(INTRINSICS);
  for (const key of tags.span ?? []) {
    candidates.add(`.${key}`);
    candidates.add(`span.${key}`);
  }
  for (const key of tags.resource ?? []) {
    candidates.add(`.${key}`);
    candidates.add(`resource.${key}`);
  }
  const lower = word.toLowerCase();
  return [...candidates].filter((c) => c.toLowerCase().startsWith(lower) && c !== word).slice(0, 12);
}

/** A UTF-8 byte offset (the server's) as a string index. */
export function charIndex(query: string, byteOffset: number): number {
  const encoder = new TextEncoder();
  let bytes = 0;
  for (let i = 0; i < query.length; i++) {
    if (bytes >= byteOffset) return i;
    bytes += encoder.encode(query[i]).length;
  }
  return query.length;
}

/** Where a value is being typed: after `attribute =` (or `!=`, `=~`, `!~`), at the cursor. */
export interface ValueContext {
  /** The attribute's key without its scope, or the intrinsic's name. */
  key: string;
  scope?: 'span' | 'resource';
  intrinsic: boolean;
  /** Where the value (with its opening quote) starts. */
  start: number;
  typed: string;
}

export function valueContext(query: string, cursor: number): ValueContext | null {
  const match = /([.A-Za-z_][\w.:\-/]*)\s*(?:=|!=|=~|!~)\s*("?)([^"\s]*)$/.exec(query.slice(0, cursor));
  if (!match) return null;
  const [, attribute, quote, typed] = match;
  const start = cursor - typed.length - quote.length;
  const scoped = /^(span|resource)\.(.+)$/.exec(attribute);
  if (scoped) return { key: scoped[2], scope: scoped[1] as 'span' | 'resource', intrinsic: false, start, typed };
  if (attribute.startsWith('.')) return { key: attribute.slice(1), intrinsic: false, start, typed };
  return { key: attribute, intrinsic: true, start, typed };
}

const INTRINSIC_VALUES: Record<string, string[]> = {
  status: ['error', 'ok', 'unset'],
  'span:status': ['error', 'ok', 'unset'],
  kind: ['server', 'client', 'producer', 'consumer', 'internal', 'unspecified'],
  'span:kind': ['server', 'client', 'producer', 'consumer', 'internal', 'unspecified'],
};

/** Value suggestions: the intrinsic's keywords, or the attribute's known values quoted. */
export function valueSuggestions(context: ValueContext, values: string[]): string[] {
  const candidates = context.intrinsic ? (INTRINSIC_VALUES[context.key] ?? []) : values.map((v) => JSON.stringify(v));
  const typed = context.typed.toLowerCase();
  return candidates.filter((c) => c.replace(/^"/, '').toLowerCase().startsWith(typed)).slice(0, 12);
}
