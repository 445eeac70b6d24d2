// The search box in the header: "/" or Ctrl+K (⌘K) focuses it from any page, Enter opens the results page.
// On the results page it is that page's query: typing updates the results (debounced) without Enter.
import { Kbd, TextInput } from "@mantine/core";
import { useDebouncedCallback } from "@mantine/hooks";
import { useEffect, useRef, useState, type FormEvent } from "react";
import { useLocation, useNavigate } from "react-router";
import { MAX_QUERY_CHARS, isSearchShortcut, readSearch, searchHref } from "../search";

const TYPING_DEBOUNCE_MS = 300;

export function GlobalSearch() {
  const navigate = useNavigate();
  const location = useLocation();
  const onResults = location.pathname === "/search";
  const urlQuery = onResults ? readSearch(new URLSearchParams(location.search)).q : null;
  const [text, setText] = useState(urlQuery ?? "");
  const input = useRef<HTMLInputElement>(null);

  // Follow the address (back and forward, a link to a search, leaving the results page); text that only
  // differs by spaces still being typed is left alone.
  useEffect(() => {
    setText((typed) => (urlQuery === null ? "" : typed.trim() === urlQuery ? typed : urlQuery));
  }, [urlQuery]);

  useEffect(() => {
    function onKey(event: KeyboardEvent) {
      if (!isSearchShortcut(event)) return;
      event.preventDefault();
      input.current?.focus();
      input.current?.select();
    }
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  // The address as it is when a debounced call runs, not as it was when the key was typed.
  const current = useRef(location);
  current.current = location;

  /** The results page for `q`, keeping the page's mode and filters (a new query starts at page 1). */
  function go(q: string, replace: boolean) {
    const { pathname, search } = current.current;
    const here = pathname === "/search" ? readSearch(new URLSearchParams(search)) : {};
    navigate(searchHref({ ...here, q, page: 1 }), { replace });
  }
  const live = useDebouncedCallback((q: string) => {
    if (current.current.pathname === "/search") go(q, true);
  }, TYPING_DEBOUNCE_MS);

  function submit(event: FormEvent) {
    event.preventDefault();
    live.cancel();
    go(text, onResults);
  }

  return (
    <form role="search" aria-label="Prompt search" onSubmit={submit}>
      <TextInput
        ref={input}
        type="search"
        aria-label="Search prompts"
        aria-keyshortcuts="/ Control+K Meta+K"
        placeholder="Search prompts"
        size="xs"
        w={{ base: 160, md: 280 }}
        maxLength={MAX_QUERY_CHARS}
        value={text}
        onChange={(event) => {
          setText(event.currentTarget.value);
          if (onResults) live(event.currentTarget.value);
        }}
        onKeyDown={(event) => {
          if (event.key === "Escape") event.currentTarget.blur();
        }}
        rightSection={
          <Kbd size="xs" aria-hidden>
            /
          </Kbd>
        }
        rightSectionPointerEvents="none"
      />
    </form>
  );
}
