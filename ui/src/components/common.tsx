// Pieces every page shares: loading data with cancellation, and the loading, error and
// empty states.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

export interface Async<T> {
  loading: boolean;
  error: Error | null;
  data: T | null;
}

/** Runs `load` whenever `deps` change, aborting the previous run; `null` deps load nothing. */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[] | null): Async<T> {
  const [state, setState] = useState<Async<T>>({ loading: deps !== null, error: null, data: null });
  useEffect(
    () => {
      if (deps === null) {
        setState({ loading: false, error: null, data: null });
        return;
      }
      const controller = new AbortController();
      setState((previous) => ({ loading: true, error: null, data: previous.data }));
      load(controller.signal).then(
        (data) => !controller.signal.aborted && setState({ loading: false, error: null, data }),
        (error: Error) => !controller.signal.aborted && setState({ loading: false, error, data: null }),
      );
      return () => controller.abort();
    },
    deps ?? [null],
  );
  return state;
}

export function Loading({ what }: { what: string }) {
  return (
    <div class="state loading" role="status">
      <span class="spinner" aria-hidden="true" /> Loading {what}…
    </div>
  );
}

export function ErrorBox({ error, title }: { error: Error; title: string }) {
  return (
    <div class="state error" role="alert">
      <strong>{title}</strong>
      <div class="mono">{error.message}</div>
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="state empty">{children}</div>;
}

export function CopyButton({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState(false);
  const copy = () => {
    navigator.clipboard?.writeText(text).then(
      () => {
        setCopied(true);
        setTimeout(() => setCopied(false), 1200);
      },
      () => setCopied(false),
    );
  };
  return (
    <button type="button" class="copy" title={`Copy ${label}`} aria-label={`Copy ${label}`} onClick={copy}>
      {copied ? 'Copied' : 'Copy'}
    </button>
  );
}
