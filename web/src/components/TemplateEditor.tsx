// A CodeMirror 6 editor for the template language (Jinja syntax highlighting) with completion of the
// declared variables after `{{` and `{%`.
import { autocompletion, type CompletionContext, type CompletionResult } from "@codemirror/autocomplete";
import { StreamLanguage } from "@codemirror/language";
import { jinja2 } from "@codemirror/legacy-modes/mode/jinja2";
import { Compartment, EditorState } from "@codemirror/state";
import { EditorView, placeholder as placeholderExt } from "@codemirror/view";
import { basicSetup } from "codemirror";
import { useEffect, useRef } from "react";

const FILTERS = ["default", "lower", "upper", "trim", "join", "length", "replace", "title", "truncate", "tojson"];

function completions(variables: () => string[]) {
  return (context: CompletionContext): CompletionResult | null => {
    const before = context.state.sliceDoc(Math.max(0, context.pos - 200), context.pos);
    const open = Math.max(before.lastIndexOf("{{"), before.lastIndexOf("{%"));
    const close = Math.max(before.lastIndexOf("}}"), before.lastIndexOf("%}"));
    if (open < 0 || close > open) return null;
    const word = context.matchBefore(/[\w.]*/);
    if (!word || (word.from === word.to && !context.explicit)) return null;
    const afterPipe = /\|\s*[\w]*$/.test(before);
    const options = afterPipe
      ? FILTERS.map((label) => ({ label, type: "function" }))
      : variables().map((label) => ({ label, type: "variable", detail: "declared variable" }));
    return { from: word.from, options, validFor: /^[\w.]*$/ };
  };
}

export function TemplateEditor({
  value,
  onChange,
  variables,
  label,
  placeholder,
}: {
  value: string;
  onChange: (value: string) => void;
  variables: string[];
  label: string;
  placeholder?: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const names = useRef(variables);
  const change = useRef(onChange);
  names.current = variables;
  change.current = onChange;
  const labelled = useRef(new Compartment());

  useEffect(() => {
    const editor = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: value,
        extensions: [
          basicSetup,
          StreamLanguage.define(jinja2),
          autocompletion({ override: [completions(() => names.current)] }),
          EditorView.lineWrapping,
          placeholderExt(placeholder ?? ""),
          labelled.current.of(EditorView.contentAttributes.of({ "aria-label": label })),
          EditorView.updateListener.of((update) => {
            if (update.docChanged) change.current(update.state.doc.toString());
          }),
        ],
      }),
    });
    view.current = editor;
    return () => editor.destroy();
    // The editor owns its text after creation; outside changes are synced below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    const editor = view.current;
    if (editor && editor.state.doc.toString() !== value) {
      editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: value } });
    }
  }, [value]);

  return (
    <div
      ref={host}
      style={{ border: "1px solid var(--mantine-color-default-border)", borderRadius: 4, minHeight: 120 }}
    />
  );
}
