// The rating screen of the annotation queue, built for speed with the keyboard: claim the next item, show the
// run's input and output, 1–5 sets the score (or the focused rubric criterion's), N/Enter submits and claims
// the next one, S skips. Changes are announced in a live region. A claimed item that was not rated is given
// back when the analyst leaves (unmount, or the tab closing: a keepalive request).
import { Anchor, Button, Code, Group, Kbd, Paper, Radio, SimpleGrid, Stack, Text, Textarea, Title } from "@mantine/core";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useState } from "react";
import { Link } from "react-router";
import { api, unwrap, type Schemas } from "../../api/client";
import { ErrorNotice } from "../../components/ErrorNotice";
import { SHORTCUT_LEGEND, shortcutOf } from "./shortcuts";

type Item = Schemas["AnnotationOut"];
export const CRITERIA = ["correctness", "relevance", "clarity", "safety", "format"] as const;
type Criterion = (typeof CRITERIA)[number];
const SCORES = ["1", "2", "3", "4", "5"];
const COUNT_PAGES = 5;
const PAGE = 200;

/** How many items of `queue` wait for a rating (capped: "1000+" beyond five pages of 200). */
async function countPending(queue: string): Promise<{ count: number; more: boolean }> {
  let count = 0;
  let cursor: string | undefined;
  for (let page = 0; page < COUNT_PAGES; page++) {
    const answer = await unwrap(api.GET("/api/v1/annotations", { params: { query: { queue, status: "pending", limit: PAGE, cursor } } }));
    count += answer.items.length;
    if (!answer.nextCursor) return { count, more: false };
    cursor = answer.nextCursor;
  }
  return { count, more: true };
}

export function progressText(rated: number, left: { count: number; more: boolean } | undefined): string {
  if (!left) return `${rated} rated`;
  return `${rated} rated, ${left.count}${left.more ? "+" : ""} left`;
}

/** Give a claim back; keepalive lets the request finish while the page is closing. Never throws. */
/** A run's input as the model saw it: the rendered prompt, chat messages one per paragraph, else the JSON. */
export function inputText(input: Record<string, unknown> | null | undefined): string {
  if (!input) return "(no input recorded)";
  if (typeof input.prompt === "string") return input.prompt;
  if (Array.isArray(input.messages)) {
    return input.messages
      .map((m: { role?: unknown; content?: unknown }) => `${String(m.role ?? "?")}: ${typeof m.content === "string" ? m.content : JSON.stringify(m.content)}`)
      .join("\n\n");
  }
  return JSON.stringify(input, null, 2);
}

function releaseClaim(itemId: string): Promise<unknown> {
  return api.POST("/api/v1/annotations/{item_id}/release", { params: { path: { item_id: itemId } }, keepalive: true }).catch(() => null);
}

function ScoreGroup({
  label,
  value,
  onChange,
  criterion,
}: {
  label: string;
  value: number | undefined;
  onChange: (score: number) => void;
  criterion?: Criterion;
}) {
  return (
    <div data-criterion={criterion} data-score-group={criterion ?? "score"}>
      <Radio.Group label={label} value={value ? String(value) : null} onChange={(v) => onChange(Number(v))}>
        <Group gap="md" mt={4}>
          {SCORES.map((s) => (
            <Radio key={s} value={s} label={s} data-score-radio={criterion ?? "score"} />
          ))}
        </Group>
      </Radio.Group>
    </div>
  );
}

function Subject({ item }: { item: Item }) {
  const subject = item.subject;
  if (!subject) return <Text>The run of this item is no longer available; skip it.</Text>;
  return (
    <Stack gap="xs">
      <Text size="sm">
        {subject.runId ? (
          <Anchor component={Link} to={`/runs/${subject.runId}`} target="_blank" underline="always">
            Run {subject.runId}
          </Anchor>
        ) : (
          subject.id
        )}
        {subject.provider && ` · ${subject.provider}/${subject.model}`}
      </Text>
      <Title order={2} size="h4">
        Input
      </Title>
      <Code block aria-label="Run input" style={{ whiteSpace: "pre-wrap", wordBreak: "break-word" }}>
        {inputText(subject.input)}
      </Code>
      {subject.expected != null && (
        <>
          <Title order={2} size="h4">
            Expected
          </Title>
          <Code block aria-label="Expected output" style={{ whiteSpace: "pre-wrap", wordBreak: "break-word" }}>
            {subject.expected}
          </Code>
        </>
      )}
      <Title order={2} size="h4">
        Output
      </Title>
      <Code block aria-label="Run output" style={{ whiteSpace: "pre-wrap", wordBreak: "break-word" }}>
        {subject.output || "(empty output)"}
      </Code>
    </Stack>
  );
}

export function ShortcutLegend() {
  return (
    <Group component="ul" aria-label="Keyboard shortcuts" gap="lg" m={0} p={0} style={{ listStyle: "none" }}>
      {SHORTCUT_LEGEND.map(([keys, what]) => (
        <Text component="li" key={keys} size="sm">
          <Kbd>{keys}</Kbd> {what}
        </Text>
      ))}
    </Group>
  );
}

export function RatingScreen({ queue, withRubric, onExit }: { queue: string; withRubric: boolean; onExit: () => void }) {
  const client = useQueryClient();
  const [item, setItem] = useState<Item | null | undefined>(undefined); // undefined: loading; null: queue empty
  const [score, setScore] = useState<number | undefined>();
  const [rubric, setRubric] = useState<Partial<Record<Criterion, number>>>({});
  const [notes, setNotes] = useState("");
  const [rated, setRated] = useState(0);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [announcement, setAnnouncement] = useState("Claiming the first item…");
  const claimed = useRef<string | null>(null);
  const started = useRef(false);
  const alive = useRef(true);
  const working = useRef(false); // a second key press before the re-render must not send a second request
  const panel = useRef<HTMLDivElement>(null);
  // counted once the first claim is in (a count started before it would include the claimed item)
  const pending = useQuery({
    queryKey: ["annotations", "pending-count", queue],
    queryFn: () => countPending(queue),
    enabled: item !== undefined,
  });
  const left = pending.data && { count: pending.data.count + (item ? 1 : 0), more: pending.data.more };

  const focusScore = useCallback(() => {
    const radios = panel.current?.querySelectorAll<HTMLInputElement>('input[data-score-radio="score"]');
    const target = radios && (Array.from(radios).find((r) => r.checked) ?? radios[0]);
    target?.focus();
  }, []);

  const loadNext = useCallback(
    async (before: string) => {
      const next = await unwrap(api.POST("/api/v1/annotations/next", { body: { queue } }));
      const found = next ?? null;
      if (!alive.current) {
        // the analyst left while the claim was on its way
        if (found) void releaseClaim(found.id);
        return;
      }
      claimed.current = found?.id ?? null;
      setItem(found);
      setScore(undefined);
      setRubric({});
      setNotes("");
      await client.invalidateQueries({ queryKey: ["annotations"] });
      setAnnouncement(found ? `${before}Now rating item ${found.id}.` : `${before}Nothing is left to rate in queue ${queue}.`);
    },
    [client, queue],
  );

  const act = useCallback(
    async (work: () => Promise<void>) => {
      if (working.current) return;
      working.current = true;
      setBusy(true);
      setError(null);
      try {
        await work();
      } catch (caught) {
        setError(caught);
        setAnnouncement("That did not work; see the error above.");
      } finally {
        working.current = false;
        setBusy(false);
      }
    },
    [],
  );

  const submit = useCallback(() => {
    if (!item) return;
    const given = Object.fromEntries(Object.entries(rubric).filter(([, v]) => v !== undefined)) as Record<string, number>;
    if (score === undefined && Object.keys(given).length === 0) {
      setAnnouncement("Choose a score from 1 to 5 first.");
      return;
    }
    void act(async () => {
      await unwrap(
        api.POST("/api/v1/annotations/{item_id}/rate", {
          params: { path: { item_id: item.id } },
          body: { score: score ?? null, rubric: given, notes },
        }),
      );
      claimed.current = null;
      setRated((n) => n + 1);
      await loadNext(`Rated ${score ?? "by rubric"}${notes.trim() ? " with a note" : ""}. `);
    });
  }, [item, rubric, score, notes, act, loadNext]);

  const skip = useCallback(() => {
    if (!item) return;
    void act(async () => {
      await unwrap(api.POST("/api/v1/annotations/{item_id}/skip", { params: { path: { item_id: item.id } }, body: { reason: notes } }));
      claimed.current = null;
      await loadNext("Skipped. ");
    });
  }, [item, notes, act, loadNext]);

  // Claim the first item once (StrictMode runs effects twice; the ref survives that).
  useEffect(() => {
    if (started.current) return;
    started.current = true;
    void act(() => loadNext(""));
  }, [act, loadNext]);

  const resume = useRef(() => {});
  resume.current = () => void act(() => loadNext(""));

  // Give an unrated claim back when leaving the screen or closing the tab. A page the browser keeps in its
  // back/forward cache comes back without that claim: it then claims the next item afresh.
  useEffect(() => {
    const onPageHide = () => {
      if (!claimed.current) return;
      const itemId = claimed.current;
      claimed.current = null;
      void releaseClaim(itemId);
    };
    const onPageShow = (event: PageTransitionEvent) => {
      if (event.persisted && alive.current) resume.current();
    };
    alive.current = true;
    window.addEventListener("pagehide", onPageHide);
    window.addEventListener("pageshow", onPageShow);
    return () => {
      alive.current = false;
      window.removeEventListener("pagehide", onPageHide);
      window.removeEventListener("pageshow", onPageShow);
      if (claimed.current) {
        const itemId = claimed.current;
        claimed.current = null;
        void releaseClaim(itemId).then(() => client.invalidateQueries({ queryKey: ["annotations"] }));
      }
    };
  }, [client]);

  useEffect(() => {
    if (item) focusScore();
  }, [item, focusScore]);

  const handlers = useRef({ submit, skip, setScore, setRubric });
  handlers.current = { submit, skip, setScore, setRubric };
  useEffect(() => {
    function onKey(event: KeyboardEvent) {
      const shortcut = shortcutOf(event);
      if (!shortcut) return;
      event.preventDefault();
      const h = handlers.current;
      if (shortcut.kind === "submit") h.submit();
      else if (shortcut.kind === "skip") h.skip();
      else {
        const holder = event.target instanceof HTMLElement ? event.target.closest<HTMLElement>("[data-criterion]") : null;
        const criterion = holder?.dataset.criterion as Criterion | undefined;
        // focus follows the choice, as with the arrow keys, so Tab leaves the group from the checked radio
        const group = holder ?? panel.current?.querySelector<HTMLElement>('[data-score-group="score"]');
        group?.querySelector<HTMLInputElement>(`input[value="${shortcut.value}"]`)?.focus();
        if (criterion) {
          h.setRubric((r) => ({ ...r, [criterion]: shortcut.value }));
          setAnnouncement(`${criterion} ${shortcut.value}`);
        } else {
          h.setScore(shortcut.value);
          setAnnouncement(`Score ${shortcut.value}`);
        }
      }
    }
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={1} size="h2">
          Rating queue {queue}
        </Title>
        <Group>
          <Text fw={600} data-testid="progress">
            {progressText(rated, left)}
          </Text>
          <Button variant="default" onClick={onExit}>
            Stop rating
          </Button>
        </Group>
      </Group>
      <ShortcutLegend />
      <Text role="status" aria-live="polite" aria-atomic="true" data-testid="announcement" size="sm">
        {announcement}
      </Text>
      <ErrorNotice error={error} />
      {item === null && (
        <Paper withBorder p="md">
          <Text>Queue {queue} has nothing waiting. You rated {rated} item{rated === 1 ? "" : "s"} in this session.</Text>
          <Button variant="default" mt="sm" loading={busy} onClick={() => void act(() => loadNext(""))}>
            Check for new items
          </Button>
        </Paper>
      )}
      {item && (
        <SimpleGrid cols={{ base: 1, md: 2 }} spacing="lg">
          <Subject item={item} />
          <Stack ref={panel} gap="sm" role="group" aria-label="Your rating">
            <ScoreGroup label="Score (1 = poor, 5 = excellent)" value={score} onChange={setScore} />
            <Textarea
              label="Notes"
              description="Optional. Esc leaves the box; Ctrl+Enter submits."
              autosize
              minRows={2}
              maxLength={10000}
              value={notes}
              onChange={(e) => setNotes(e.currentTarget.value)}
              onKeyDown={(e) => {
                if (e.key === "Escape") {
                  e.preventDefault();
                  focusScore();
                } else if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
                  e.preventDefault();
                  submit();
                }
              }}
            />
            {withRubric &&
              CRITERIA.map((criterion) => (
                <ScoreGroup
                  key={criterion}
                  criterion={criterion}
                  label={`${criterion[0].toUpperCase()}${criterion.slice(1)}`}
                  value={rubric[criterion]}
                  onChange={(v) => setRubric((r) => ({ ...r, [criterion]: v }))}
                />
              ))}
            <Group>
              <Button onClick={submit} loading={busy}>
                Submit and next (N)
              </Button>
              <Button variant="default" onClick={skip} disabled={busy}>
                Skip (S)
              </Button>
            </Group>
          </Stack>
        </SimpleGrid>
      )}
      {item === undefined && !error && <Text>Claiming an item…</Text>}
    </Stack>
  );
}
