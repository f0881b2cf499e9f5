// The TraceQL editor: a textarea over a highlighted copy of its text, suggestions for
// attribute names and intrinsics at the cursor, and the server's parse error shown inline
// (underlined at its position, with the message below) as one types.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type ParseCheck } from '../api';
import { useAsync } from './common';
import { charIndex, suggestions, tokenize, valueContext, valueSuggestions, wordAt } from './traceql';

interface Props {
  value: string;
  onInput: (value: string) => void;
  onSubmit: () => void;
  tags: Record<string, string[] | null>;
}

export function TraceQLEditor({ value, onInput, onSubmit, tags }: Props) {
  const textarea = useRef<HTMLTextAreaElement>(null);
  const [check, setCheck] = useState<ParseCheck>({ valid: true });
  const [cursor, setCursor] = useState(0);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);

  useEffect(() => {
    if (!value.trim()) {
      setCheck({ valid: true });
      return;
    }
    const controller = new AbortController();
    const timer = setTimeout(() => {
      api.parse(value, controller.signal).then(setCheck, () => undefined);
    }, 200);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [value]);

  // After `attribute =` the known values are offered, else attribute names and intrinsics.
  const context = valueContext(value, cursor);
  const valueKey = context && !context.intrinsic ? `${context.scope ?? ''}|${context.key}` : null;
  const values = useAsync(
    (signal) => api.tagValues(context!.key, context!.scope, signal),
    open && valueKey ? [valueKey] : null,
  );
  const word = wordAt(value, cursor);
  const start = context ? context.start : word.start;
  const options = !open
    ? []
    : context
      ? valueSuggestions(context, values.data?.values ?? [])
      : suggestions(word.word, tags);
  const accept = (option: string) => {
    const next = value.slice(0, start) + option + value.slice(cursor);
    onInput(next);
    setOpen(false);
    const position = start + option.length;
    requestAnimationFrame(() => {
      textarea.current?.setSelectionRange(position, position);
      setCursor(position);
    });
  };

  const onKeyDown = (event: KeyboardEvent) => {
    if (options.length > 0) {
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        const step = event.key === 'ArrowDown' ? 1 : -1;
        setActive((active + step + options.length) % options.length);
        return;
      }
      if (event.key === 'Tab' || (event.key === 'Enter' && !event.ctrlKey && !event.metaKey)) {
        event.preventDefault();
        accept(options[Math.min(active, options.length - 1)]);
        return;
      }
      if (event.key === 'Escape') {
        setOpen(false);
        return;
      }
    }
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      onSubmit();
    }
  };

  const errorAt = check.valid || check.error?.offset === undefined ? -1 : charIndex(value, check.error.offset);
  return (
    <div class="traceql">
      <div class="traceql-box">
        <pre class="traceql-highlight" aria-hidden="true">
          {highlighted(value, errorAt)}
          {'\n'}
        </pre>
        <textarea
          ref={textarea}
          class="traceql-input"
          aria-label="TraceQL query"
          spellcheck={false}
          rows={2}
          value={value}
          placeholder='{ resource.service.name = "checkout" && duration > 100ms }'
          onInput={(e) => {
            const target = e.currentTarget;
            onInput(target.value);
            setCursor(target.selectionStart);
            setOpen(true);
            setActive(0);
          }}
          onKeyDown={onKeyDown}
          onClick={(e) => setCursor(e.currentTarget.selectionStart)}
          onKeyUp={(e) => setCursor(e.currentTarget.selectionStart)}
          onBlur={() => setTimeout(() => setOpen(false), 150)}
        />
        {options.length > 0 && (
          <ul class="suggestions" role="listbox" aria-label="Suggestions">
            {options.map((option, i) => (
              <li
                key={option}
                role="option"
                aria-selected={i === active}
                class={i === active ? 'active' : ''}
                onMouseDown={(e) => {
                  e.preventDefault();
                  accept(option);
                }}
              >
                {option}
              </li>
            ))}
          </ul>
        )}
      </div>
      {!check.valid && check.error && (
        <div class="traceql-error" role="alert">
          {check.error.line !== undefined && `line ${check.error.line}, column ${check.error.column}: `}
          {check.error.message}
        </div>
      )}
    </div>
  );
}

function highlighted(query: string, errorAt: number) {
  const parts = tokenize(query).map((token) => {
    const inError = errorAt >= token.start && errorAt < token.start + token.text.length;
    return (
      <span key={token.start} class={`tq-${token.kind}${inError ? ' tq-error' : ''}`}>
        {token.text}
      </span>
    );
  });
  if (errorAt >= query.length && errorAt >= 0)
    parts.push(
      <span key="end" class="tq-error tq-eof">
        {' '}
      </span>,
    );
  return parts;
}
